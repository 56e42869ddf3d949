// A stdio stream over a file descriptor that decompresses gzip (zlib) or zstd (libzstd's streaming API) on the
// fly, so that libpcap's pcap_fopen_offline reads compressed captures and pipes directly: no temporary file, no
// helper process, and memory bounded by the decoders' windows whatever the capture's size.
// fopencookie is a glibc extension that Swift's Glibc module does not expose, hence this small C target.
#define _GNU_SOURCE
#include "gzip_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

enum { INPUT_SIZE = 256 * 1024 };

struct stream {
    int fd;
    int compression;
    int at_end_of_input;
    // Inside a gzip member or a zstd frame: the input must not end here.
    int inflating;
    // Corrupt data was met; it is reported after the bytes inflated before it have been delivered.
    int failed;
    z_stream z;
    ZSTD_DStream *zstd;
    ZSTD_inBuffer zstd_input;
    // Bytes read before the format was known (plain mode), served first.
    size_t pending_offset;
    size_t pending_length;
    unsigned char input[INPUT_SIZE];
};

// A stop request sets the flag and writes a byte to a self-pipe, which every blocked read polls beside its
// input: a signal that lands before the read starts is then seen as well as one that lands during it.
static volatile sig_atomic_t stop_requested;
static int stop_pipe[2] = {-1, -1};

void rstd_stream_stop(void) {
    stop_requested = 1;
    if (stop_pipe[1] >= 0) {
        char byte = 1;
        ssize_t ignored = write(stop_pipe[1], &byte, 1);
        (void)ignored;
    }
}

static ssize_t read_some(int fd, void *buffer, size_t size) {
    for (;;) {
        if (stop_requested) {
            return 0;
        }
        struct pollfd polled[2] = {{.fd = fd, .events = POLLIN}, {.fd = stop_pipe[0], .events = POLLIN}};
        int ready = poll(polled, stop_pipe[0] >= 0 ? 2 : 1, -1);
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (stop_pipe[0] >= 0 && polled[1].revents != 0) {
            return 0;
        }
        ssize_t count = read(fd, buffer, size);
        if (count >= 0 || errno != EINTR) {
            return count;
        }
    }
}

static ssize_t plain_read(struct stream *s, char *buffer, size_t size) {
    if (s->pending_length > 0) {
        size_t count = size < s->pending_length ? size : s->pending_length;
        memcpy(buffer, s->input + s->pending_offset, count);
        s->pending_offset += count;
        s->pending_length -= count;
        return (ssize_t)count;
    }
    return read_some(s->fd, buffer, size);
}

/// Reads more compressed input into `s->input`. Returns the count, -1 on an error, or 0 at the end of the
/// input, which is then marked; the input ending inside a gzip member or a zstd frame means the file was
/// cut short, even when the data so far ends on a record boundary, and it is reported once the bytes
/// before it are delivered.
static ssize_t refill(struct stream *s) {
    ssize_t count = read_some(s->fd, s->input, INPUT_SIZE);
    if (count == 0) {
        s->at_end_of_input = 1;
        s->failed = s->inflating;
    }
    return count;
}

static ssize_t gzip_read(struct stream *s, char *buffer, size_t size) {
    if (s->failed) {
        errno = EBADMSG;
        return -1;
    }
    uInt capacity = size > (1u << 30) ? (1u << 30) : (uInt)size;
    s->z.next_out = (Bytef *)buffer;
    s->z.avail_out = capacity;
    while (s->z.avail_out == capacity) {
        if (s->z.avail_in == 0) {
            if (s->at_end_of_input) {
                break;
            }
            ssize_t count = refill(s);
            if (count < 0) {
                return -1;
            }
            if (count == 0) {
                break;
            }
            s->z.next_in = s->input;
            s->z.avail_in = (uInt)count;
        }
        if (!s->inflating) {
            // The start of a further member of a concatenated gzip file.
            inflateReset(&s->z);
            s->inflating = 1;
        }
        int status = inflate(&s->z, Z_NO_FLUSH);
        if (status == Z_STREAM_END) {
            s->inflating = 0;
        } else if (status != Z_OK && status != Z_BUF_ERROR) {
            s->failed = 1;
            break;
        }
    }
    if (s->failed && s->z.avail_out == capacity) {
        errno = EBADMSG;
        return -1;
    }
    return (ssize_t)(capacity - s->z.avail_out);
}

static ssize_t zstd_read(struct stream *s, char *buffer, size_t size) {
    if (s->failed) {
        errno = EBADMSG;
        return -1;
    }
    ZSTD_outBuffer output = {.dst = buffer, .size = size, .pos = 0};
    while (output.pos == 0) {
        // The decoder may hold output from input it has taken already, so it is asked before more is read.
        if (s->inflating || s->zstd_input.pos < s->zstd_input.size) {
            size_t status = ZSTD_decompressStream(s->zstd, &output, &s->zstd_input);
            if (ZSTD_isError(status)) {
                s->failed = 1;
                break;
            }
            // 0: a frame ended and all of it was delivered; a further frame may follow (cat a.zst b.zst).
            s->inflating = status != 0;
            if (output.pos > 0 || s->zstd_input.pos < s->zstd_input.size) {
                continue;
            }
        }
        if (s->at_end_of_input) {
            break;
        }
        ssize_t count = refill(s);
        if (count < 0) {
            return -1;
        }
        if (count == 0) {
            break;
        }
        s->zstd_input = (ZSTD_inBuffer){.src = s->input, .size = (size_t)count, .pos = 0};
        s->inflating = 1;
    }
    if (s->failed && output.pos == 0) {
        errno = EBADMSG;
        return -1;
    }
    return (ssize_t)output.pos;
}

static ssize_t stream_read(void *cookie, char *buffer, size_t size) {
    struct stream *s = cookie;
    switch (s->compression) {
    case RSTD_GZIP:
        return gzip_read(s, buffer, size);
    case RSTD_ZSTD:
        return zstd_read(s, buffer, size);
    default:
        return plain_read(s, buffer, size);
    }
}

static void end_decoder(struct stream *s) {
    if (s->compression == RSTD_GZIP) {
        inflateEnd(&s->z);
    } else if (s->compression == RSTD_ZSTD) {
        ZSTD_freeDStream(s->zstd);
    }
}

static int stream_close(void *cookie) {
    struct stream *s = cookie;
    end_decoder(s);
    int status = close(s->fd);
    free(s);
    return status;
}

int rstd_compression_of(const unsigned char *bytes, size_t count) {
    if (count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
        return RSTD_GZIP;
    }
    // ZSTD_MAGICNUMBER (0xFD2FB528) as a frame stores it, little-endian.
    if (count >= 4 && bytes[0] == 0x28 && bytes[1] == 0xb5 && bytes[2] == 0x2f && bytes[3] == 0xfd) {
        return RSTD_ZSTD;
    }
    return RSTD_PLAIN;
}

FILE *rstd_stream_fdopen(int fd, int *compression) {
    if (stop_pipe[0] < 0 && pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        stop_pipe[0] = stop_pipe[1] = -1;
    }
    struct stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->fd = fd;
    // Read until the four bytes of the longest magic number are known, or the input ends.
    size_t have = 0;
    while (have < 4) {
        ssize_t count = read_some(fd, s->input + have, INPUT_SIZE - have);
        if (count < 0) {
            int saved = errno;
            free(s);
            errno = saved;
            return NULL;
        }
        if (count == 0) {
            break;
        }
        have += (size_t)count;
    }
    s->compression = rstd_compression_of(s->input, have);
    if (s->compression == RSTD_GZIP) {
        // 15 + 16: a gzip wrapper around a deflate stream with a window of up to 32 KiB.
        if (inflateInit2(&s->z, 15 + 16) != Z_OK) {
            free(s);
            errno = ENOMEM;
            return NULL;
        }
        s->inflating = 1;
        s->z.next_in = s->input;
        s->z.avail_in = (uInt)have;
    } else if (s->compression == RSTD_ZSTD) {
        // The default window limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 128 MiB) bounds the memory; a frame that
        // asks for more (zstd --long=31) is refused as corrupt.
        s->zstd = ZSTD_createDStream();
        if (s->zstd == NULL) {
            free(s);
            errno = ENOMEM;
            return NULL;
        }
        s->inflating = 1;
        s->zstd_input = (ZSTD_inBuffer){.src = s->input, .size = have, .pos = 0};
    } else {
        s->pending_length = have;
    }
    cookie_io_functions_t functions = {
        .read = stream_read,
        .write = NULL,
        .seek = NULL,
        .close = stream_close,
    };
    *compression = s->compression;
    FILE *stream = fopencookie(s, "r", functions);
    if (stream == NULL) {
        int saved = errno;
        end_decoder(s);
        free(s);
        errno = saved;
    }
    return stream;
}
