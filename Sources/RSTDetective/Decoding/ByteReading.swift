extension RawSpan {
    // Unchecked big-endian loads for the header views. Every caller first checks that
    // `offset + size <= byteCount`; the comment at each call site names that check.

    /// The byte at `offset`; the caller has checked `offset < byteCount`.
    @inline(__always)
    func uncheckedUInt8(at offset: Int) -> UInt8 {
        unsafe unsafeLoad(fromUncheckedByteOffset: offset, as: UInt8.self)
    }

    /// The network-order 16-bit value at `offset`; the caller has checked `offset + 2 <= byteCount`.
    @inline(__always)
    func uncheckedUInt16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: unsafe unsafeLoadUnaligned(fromUncheckedByteOffset: offset, as: UInt16.self))
    }

    /// The network-order 32-bit value at `offset`; the caller has checked `offset + 4 <= byteCount`.
    @inline(__always)
    func uncheckedUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: unsafe unsafeLoadUnaligned(fromUncheckedByteOffset: offset, as: UInt32.self))
    }

    /// The network-order 64-bit value at `offset`; the caller has checked `offset + 8 <= byteCount`.
    @inline(__always)
    func uncheckedUInt64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: unsafe unsafeLoadUnaligned(fromUncheckedByteOffset: offset, as: UInt64.self))
    }

    /// The little-endian 16-bit value at `offset` (radiotap, PPI); the caller has checked
    /// `offset + 2 <= byteCount`.
    @inline(__always)
    func uncheckedLittleEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(littleEndian: unsafe unsafeLoadUnaligned(fromUncheckedByteOffset: offset, as: UInt16.self))
    }

    /// The little-endian 32-bit value at `offset` (radiotap, PPI); the caller has checked
    /// `offset + 4 <= byteCount`.
    @inline(__always)
    func uncheckedLittleEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(littleEndian: unsafe unsafeLoadUnaligned(fromUncheckedByteOffset: offset, as: UInt32.self))
    }

    /// The 16-bit value at `offset` in this machine's byte order, which libpcap gives the NFLOG TLV fields
    /// whatever the writer's; the caller has checked `offset + 2 <= byteCount`.
    @inline(__always)
    func uncheckedHostUInt16(at offset: Int) -> UInt16 {
        unsafe unsafeLoadUnaligned(fromUncheckedByteOffset: offset, as: UInt16.self)
    }
}
