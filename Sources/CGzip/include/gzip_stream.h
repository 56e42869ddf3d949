#ifndef RSTD_GZIP_STREAM_H
#define RSTD_GZIP_STREAM_H

#include <stddef.h>
#include <stdio.h>

/// What a stream decompresses.
enum rstd_compression { RSTD_PLAIN = 0, RSTD_GZIP = 1, RSTD_ZSTD = 2 };

/// The compression whose magic number starts `bytes` (gzip 1f 8b, zstd 28 b5 2f fd), or RSTD_PLAIN.
int rstd_compression_of(const unsigned char *bytes, size_t count);

/// Opens a read-only stdio stream over `fd` that decompresses gzip or zstd data and passes anything else through.
///
/// The first bytes decide (`rstd_compression_of`): gzip selects zlib's inflate (concatenated members included),
/// zstd libzstd's streaming decoder (ZSTD_decompressStream, concatenated frames included), anything else is passed
/// through unchanged; `*compression` tells which. Reads return as soon as some bytes are there, so a pipe from
/// `tcpdump -U -w -` is analysed as it arrives. The stream takes ownership of `fd`. Corrupt compressed data, or an
/// input that ends inside a gzip member or a zstd frame, fails the read with EBADMSG once the bytes decompressed
/// before it have been delivered. Returns NULL with errno set when the stream cannot be made.
FILE *rstd_stream_fdopen(int fd, int *compression);

/// Makes every such stream end its input at its next read, and wakes a read blocked on a quiet pipe, so
/// that a stop requested from a signal handler takes effect at once. Async-signal-safe.
void rstd_stream_stop(void);

#endif
