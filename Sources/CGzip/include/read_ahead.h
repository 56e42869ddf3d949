#ifndef RSTD_READ_AHEAD_H
#define RSTD_READ_AHEAD_H

#include <stddef.h>
#include <stdio.h>

/// The most read-ahead streams open at once; `rstd_read_ahead` refuses more, so that a run given many
/// captures that overlap in time keeps a bounded number of threads and buffers.
enum { RSTD_READ_AHEAD_STREAMS = 4 };

/// Wraps `inner` in a read-only stdio stream whose bytes a thread of its own reads ahead from `inner` (with
/// `fread`, so through any decompression `inner` does), into a ring of 16 blocks of `block_size` bytes. Neither
/// side is woken through the kernel: a side with nothing to do yields, then naps 50 us at a time.
///
/// The reading (the kernel's copy out of the page cache, and any decompression) then runs beside the thread
/// that parses the records, which only copies bytes out of memory (into the stream's buffer, then into
/// libpcap's). A failed read of `inner` fails a read of
/// the new stream with the same errno once the bytes before it have been delivered. Closing the new stream
/// stops and joins the thread and closes `inner`.
///
/// Returns NULL, with `inner` untouched and still the caller's, when `RSTD_READ_AHEAD_STREAMS` are open
/// already or the thread or memory cannot be had.
FILE *rstd_read_ahead(FILE *inner, size_t block_size);

#endif
