// A stdio stream over zlib's gzread, so that libpcap's pcap_fopen_offline reads compressed captures
// directly: no temporary file and no helper process. fopencookie is a glibc extension, which Swift's
// Glibc module does not expose, hence this small C target.
#define _GNU_SOURCE
#include "gzip_stream.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>
#include <zlib.h>

static ssize_t gzip_read(void *cookie, char *buffer, size_t size) {
    unsigned int chunk = size > INT_MAX ? INT_MAX : (unsigned int)size;
    int count = gzread((gzFile)cookie, buffer, chunk);
    if (count < 0) {
        errno = EIO;
        return -1;
    }
    return count;
}

static int gzip_close(void *cookie) {
    return gzclose_r((gzFile)cookie) == Z_OK ? 0 : EOF;
}

FILE *rstd_gzip_fdopen(int fd) {
    gzFile gz = gzdopen(fd, "rb");
    if (gz == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    gzbuffer(gz, 256 * 1024);
    cookie_io_functions_t functions = {
        .read = gzip_read,
        .write = NULL,
        .seek = NULL,
        .close = gzip_close,
    };
    FILE *stream = fopencookie(gz, "r", functions);
    if (stream == NULL) {
        gzclose_r(gz);
    }
    return stream;
}
