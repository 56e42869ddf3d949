#ifndef RSTD_GZIP_STREAM_H
#define RSTD_GZIP_STREAM_H

#include <stdio.h>

/// Opens a read-only stdio stream over `fd` that inflates gzip data and passes anything else through.
///
/// The first bytes decide: the gzip magic number (1f 8b) selects zlib's inflate (concatenated members
/// included), anything else is passed through unchanged. Reads return as soon as some bytes are there, so
/// a pipe from `tcpdump -U -w -` is analysed as it arrives. The stream takes ownership of `fd`. Corrupt
/// compressed data, or an input that ends inside a gzip member, fails the read with EBADMSG once the bytes
/// inflated before it have been delivered. Returns NULL with errno set when the stream cannot be made.
FILE *rstd_stream_fdopen(int fd);

/// Makes every such stream end its input at its next read, and wakes a read blocked on a quiet pipe, so
/// that a stop requested from a signal handler takes effect at once. Async-signal-safe.
void rstd_stream_stop(void);

#endif
