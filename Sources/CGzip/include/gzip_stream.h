#ifndef RSTD_GZIP_STREAM_H
#define RSTD_GZIP_STREAM_H

#include <stdio.h>

/// Opens a read-only stdio stream that inflates the gzip data read from `fd`.
///
/// The stream takes ownership of `fd`: `fclose` on the stream closes it. Data that is not gzip is passed
/// through unchanged (zlib's transparent mode). A corrupt or truncated gzip member ends the stream with a
/// read error, which `ferror` reports. Returns NULL (with errno set) when the stream cannot be created.
FILE *rstd_gzip_fdopen(int fd);

#endif
