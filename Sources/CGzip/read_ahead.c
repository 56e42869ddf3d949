// A stdio stream served from blocks that a thread of its own reads ahead from another stream: for `-j 2`, the
// file's reading (the kernel's copy out of the page cache, or a decompression) beside libpcap's thread and the
// analysing one. See read_ahead.h.
#define _GNU_SOURCE
#include "read_ahead.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// A ring of 16 blocks: with blocks of 256 KiB, 4 MiB, about half a millisecond of reading, so that neither side
// runs dry while the other naps.
enum { BLOCKS = 16 };

struct block {
    unsigned char *bytes;
    size_t length;
    // Set on the last block: the inner stream ended or failed after its bytes.
    int last;
    // The errno of the inner stream's failed read, or 0 for its end.
    int error;
};

struct read_ahead {
    FILE *inner;
    size_t block_size;
    pthread_t thread;
    struct block blocks[BLOCKS];
    // Blocks the thread has filled (it stores, the reader loads) and blocks the reader has used up (the
    // reader stores, the thread loads); the difference is what the ring holds. A block is the thread's
    // until `filled` counts it and the reader's until `consumed` does.
    _Atomic unsigned long filled;
    _Atomic unsigned long consumed;
    _Atomic int closing;
    // The reader's own: its last look at `filled`, the blocks it has used up, and its place in the next.
    unsigned long known_filled;
    unsigned long used;
    size_t position;
    // Whether the thread runs: a stream whose thread could not start is closed without it, and without
    // closing `inner`, which is then still the caller's.
    int started;
};

static atomic_int open_streams;

// Waits a little for the other side: yields the processor a few times, then naps 50 us at a time, as the
// batches of `-j 2` do (BatchChannel): waking a sleeping thread through the kernel for every block costs more
// than the copy on a virtual machine.
static void pause_for(unsigned *rounds) {
    *rounds += 1;
    if (*rounds < 10) {
        sched_yield();
    } else {
        struct timespec nap = {.tv_sec = 0, .tv_nsec = 50000};
        nanosleep(&nap, NULL);
    }
}

static void *fill(void *argument) {
    struct read_ahead *r = argument;
    for (unsigned long next = 0;; next++) {
        unsigned rounds = 0;
        while (next - atomic_load_explicit(&r->consumed, memory_order_acquire) == BLOCKS) {
            if (atomic_load_explicit(&r->closing, memory_order_relaxed)) {
                return NULL;
            }
            pause_for(&rounds);
        }
        if (atomic_load_explicit(&r->closing, memory_order_relaxed)) {
            return NULL;
        }
        struct block *b = &r->blocks[next % BLOCKS];
        errno = 0;
        b->length = fread(b->bytes, 1, r->block_size, r->inner);
        b->last = b->length < r->block_size;
        b->error = b->last && ferror(r->inner) ? (errno != 0 ? errno : EIO) : 0;
        atomic_store_explicit(&r->filled, next + 1, memory_order_release);
        if (b->last) {
            return NULL;
        }
    }
}

static ssize_t take(void *cookie, char *buffer, size_t size) {
    struct read_ahead *r = cookie;
    for (;;) {
        unsigned rounds = 0;
        while (r->used == r->known_filled) {
            r->known_filled = atomic_load_explicit(&r->filled, memory_order_acquire);
            if (r->used == r->known_filled) {
                pause_for(&rounds);
            }
        }
        struct block *b = &r->blocks[r->used % BLOCKS];
        size_t available = b->length - r->position;
        if (available > 0) {
            size_t count = size < available ? size : available;
            memcpy(buffer, b->bytes + r->position, count);
            r->position += count;
            return (ssize_t)count;
        }
        if (b->last) {
            if (b->error != 0) {
                errno = b->error;
                return -1;
            }
            return 0;
        }
        r->used += 1;
        r->position = 0;
        atomic_store_explicit(&r->consumed, r->used, memory_order_release);
    }
}

static void release(struct read_ahead *r) {
    for (unsigned index = 0; index < BLOCKS; index++) {
        free(r->blocks[index].bytes);
    }
    free(r);
    atomic_fetch_sub(&open_streams, 1);
}

static int finish(void *cookie) {
    struct read_ahead *r = cookie;
    if (!r->started) {
        release(r);
        return 0;
    }
    atomic_store_explicit(&r->closing, 1, memory_order_relaxed);
    pthread_join(r->thread, NULL);
    int status = fclose(r->inner);
    release(r);
    return status;
}

FILE *rstd_read_ahead(FILE *inner, size_t block_size) {
    if (block_size == 0 || atomic_fetch_add(&open_streams, 1) >= RSTD_READ_AHEAD_STREAMS) {
        if (block_size != 0) {
            atomic_fetch_sub(&open_streams, 1);
        }
        return NULL;
    }
    struct read_ahead *r = calloc(1, sizeof *r);
    if (r == NULL) {
        atomic_fetch_sub(&open_streams, 1);
        return NULL;
    }
    r->inner = inner;
    r->block_size = block_size;
    for (unsigned index = 0; index < BLOCKS; index++) {
        r->blocks[index].bytes = malloc(block_size);
        if (r->blocks[index].bytes == NULL) {
            release(r);
            return NULL;
        }
    }
    cookie_io_functions_t functions = {.read = take, .write = NULL, .seek = NULL, .close = finish};
    FILE *stream = fopencookie(r, "r", functions);
    if (stream == NULL) {
        release(r);
        return NULL;
    }
    // The thread takes no signal: they are the calling thread's to handle.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int created = pthread_create(&r->thread, NULL, fill, r);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (created != 0) {
        fclose(stream);
        return NULL;
    }
    r->started = 1;
    return stream;
}
