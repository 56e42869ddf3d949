// A stdio stream over a file descriptor that inflates gzip on the fly, so that libpcap's
// pcap_fopen_offline reads compressed captures and pipes directly: no temporary file, no helper process.
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

enum { INPUT_SIZE = 256 * 1024 };

struct stream {
    int fd;
    int gzip;
    int at_end_of_input;
    int inflating;
    // Corrupt data was met; it is reported after the bytes inflated before it have been delivered.
    int failed;
    z_stream z;
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
            ssize_t count = read_some(s->fd, s->input, INPUT_SIZE);
            if (count < 0) {
                return -1;
            }
            if (count == 0) {
                s->at_end_of_input = 1;
                // The input ending inside a member means the file was cut short, even when the data so
                // far ends on a record boundary; it is reported once the bytes before it are delivered.
                s->failed = s->inflating;
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

static ssize_t stream_read(void *cookie, char *buffer, size_t size) {
    struct stream *s = cookie;
    return s->gzip ? gzip_read(s, buffer, size) : plain_read(s, buffer, size);
}

static int stream_close(void *cookie) {
    struct stream *s = cookie;
    if (s->gzip) {
        inflateEnd(&s->z);
    }
    int status = close(s->fd);
    free(s);
    return status;
}

FILE *rstd_stream_fdopen(int fd) {
    if (stop_pipe[0] < 0 && pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        stop_pipe[0] = stop_pipe[1] = -1;
    }
    struct stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->fd = fd;
    // Read until the two magic bytes are known, or the input ends.
    size_t have = 0;
    while (have < 2) {
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
    s->gzip = have >= 2 && s->input[0] == 0x1f && s->input[1] == 0x8b;
    if (s->gzip) {
        // 15 + 16: a gzip wrapper around a deflate stream with a window of up to 32 KiB.
        if (inflateInit2(&s->z, 15 + 16) != Z_OK) {
            free(s);
            errno = ENOMEM;
            return NULL;
        }
        s->inflating = 1;
        s->z.next_in = s->input;
        s->z.avail_in = (uInt)have;
    } else {
        s->pending_length = have;
    }
    cookie_io_functions_t functions = {
        .read = stream_read,
        .write = NULL,
        .seek = NULL,
        .close = stream_close,
    };
    FILE *stream = fopencookie(s, "r", functions);
    if (stream == NULL) {
        int saved = errno;
        if (s->gzip) {
            inflateEnd(&s->z);
        }
        free(s);
        errno = saved;
    }
    return stream;
}
