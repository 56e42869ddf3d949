/*
 * Writes a deterministic synthetic capture for the throughput benchmark (scripts/bench), through libpcap
 * (pcap_open_dead, pcap_dump), and prints what it wrote as one JSON object on stdout.
 *
 *   gen-capture traffic OUT.pcap PACKETS [SEED]
 *       Busy-server traffic: 4096 connections live at once, each picked at random for its next packet, so
 *       handshakes interleave with established data of mixed sizes. A finished connection is replaced at
 *       once (steady churn). One new connection in 50 is an incident: SYN, SYN-ACK, ACK (with a request
 *       half of the time), then the server's RST answering that ACK. One connection in 5 is IPv6. The
 *       first K packets of a run are the same whatever PACKETS is, so a slice is a shorter run.
 *
 *   gen-capture open OUT.pcap CONNECTIONS [SEED]
 *       CONNECTIONS handshakes open at once: every SYN, then every SYN-ACK, then per connection the ACK and
 *       the server's first data (or, one in 50, its RST).
 *
 *   gen-capture full OUT.pcap BYTES [SEED]
 *       The traffic above as downloads, whole frames kept (snap length 262144, tcpdump's default), until the
 *       file holds BYTES: after the handshake and the request, the server sends full-size segments (1514-byte
 *       frames: MSS 1448 over IPv4, 1428 over IPv6, with timestamps) and the client a delayed ACK after every
 *       second one. Handshakes, incidents, FINs and churn are as in traffic.
 *
 * Ethernet, microsecond timestamps 10 us apart on average, snap length 128 as in `tcpdump -s 128` but for full.
 * Checksums are left zero: no tool in the benchmark checks them.
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SNAPLEN = 128, FULL_SNAPLEN = 262144, FRAME_MAX = 1514, LIVE = 4096, INCIDENT_EVERY = 50, IPV6_EVERY = 5 };

static uint64_t rng_state;
static int full, snaplen = SNAPLEN;

/* splitmix64: small, fast, and the same sequence on every machine. */
static uint64_t next_random(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t uniform(uint32_t bound) { return (uint32_t)((next_random() >> 32) * bound >> 32); }

struct conn {
    uint64_t id;
    int ipv6, incident;
    uint32_t client_seq, server_seq;
    int step;      /* packets sent so far */
    int data_left; /* established packets still to send */
};

struct writer {
    pcap_dumper_t *dumper;
    struct pcap_pkthdr header;
    uint64_t now_us, packets, bytes, incidents, incidents_ipv4, connections;
    uint8_t frame[FRAME_MAX];
};

enum { F_FIN = 0x01, F_SYN = 0x02, F_RST = 0x04, F_PSH = 0x08, F_ACK = 0x10 };

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v); }

/* Client and server addresses and ports of connection `id`: unique 4-tuples for 2^38 connections. */
static void endpoints(const struct conn *c, uint8_t *client, uint8_t *server, uint16_t *cport, uint16_t *sport) {
    uint32_t host = (uint32_t)(c->id >> 14) & 0xffffff;
    *cport = (uint16_t)(20000 + (c->id & 0x3fff));
    *sport = (c->id % 3 == 0) ? 8080 : 443;
    if (c->ipv6) {
        static const uint8_t client_prefix[8] = {0xfd, 0x00, 0, 0, 0, 0, 0, 0};
        static const uint8_t server_prefix[15] = {0x20, 0x01, 0x0d, 0xb8};
        memcpy(client, client_prefix, 8);
        memset(client + 8, 0, 5);
        client[13] = (uint8_t)(host >> 16); client[14] = (uint8_t)(host >> 8); client[15] = (uint8_t)host;
        memcpy(server, server_prefix, 15);
        server[15] = (uint8_t)(1 + c->id % 4);
    } else {
        client[0] = 10; client[1] = (uint8_t)(host >> 16); client[2] = (uint8_t)(host >> 8); client[3] = (uint8_t)host;
        server[0] = 192; server[1] = 0; server[2] = 2; server[3] = (uint8_t)(1 + c->id % 4);
    }
}

/* One TCP segment of connection `c`, from the client or the server, with `payload` bytes on the wire. */
static void emit(struct writer *w, const struct conn *c, int from_client, uint8_t flags, uint32_t seq, uint32_t ack,
                 uint16_t window, int payload) {
    uint8_t client[16], server[16];
    uint16_t cport, sport;
    endpoints(c, client, server, &cport, &sport);
    uint8_t *source = from_client ? client : server, *destination = from_client ? server : client;
    int options = (flags & F_SYN) ? 20 : 12;
    int tcp_length = 20 + options;
    int ip_length = c->ipv6 ? 40 : 20;
    uint8_t *f = w->frame;
    memset(f, 0, SNAPLEN); /* more than the longest headers (94 bytes): payload bytes stay zero */
    /* Ethernet: server MAC 02:00:00:00:00:01, client side 02:00:00:00:00:02. */
    f[0] = 2; f[5] = from_client ? 1 : 2;
    f[6] = 2; f[11] = from_client ? 2 : 1;
    put16(f + 12, c->ipv6 ? 0x86dd : 0x0800);
    uint8_t *ip = f + 14;
    if (c->ipv6) {
        ip[0] = 0x60;
        put16(ip + 4, (uint32_t)(tcp_length + payload));
        ip[6] = 6;
        ip[7] = 64;
        memcpy(ip + 8, source, 16);
        memcpy(ip + 24, destination, 16);
    } else {
        ip[0] = 0x45;
        put16(ip + 2, (uint32_t)(ip_length + tcp_length + payload));
        put16(ip + 4, (uint32_t)w->packets);
        put16(ip + 6, 0x4000);
        ip[8] = 64;
        ip[9] = 6;
        memcpy(ip + 12, source, 4);
        memcpy(ip + 16, destination, 4);
    }
    uint8_t *tcp = ip + ip_length;
    put16(tcp, from_client ? cport : sport);
    put16(tcp + 2, from_client ? sport : cport);
    put32(tcp + 4, seq);
    put32(tcp + 8, ack);
    tcp[12] = (uint8_t)((tcp_length / 4) << 4);
    tcp[13] = flags;
    put16(tcp + 14, window);
    uint8_t *option = tcp + 20;
    if (flags & F_SYN) {
        /* MSS 1460, SACK permitted, timestamps, NOP, window scale 7. */
        static const uint8_t syn_options[20] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};
        memcpy(option, syn_options, 20);
    } else {
        option[0] = 1; option[1] = 1; option[2] = 8; option[3] = 10;
        put32(option + 4, (uint32_t)(w->now_us / 1000));
    }
    int wire = 14 + ip_length + tcp_length + payload;
    w->now_us += uniform(21);
    w->header.ts.tv_sec = (time_t)(1700000000 + w->now_us / 1000000);
    w->header.ts.tv_usec = (suseconds_t)(w->now_us % 1000000);
    w->header.len = (bpf_u_int32)wire;
    w->header.caplen = (bpf_u_int32)(wire < snaplen ? wire : snaplen);
    pcap_dump((u_char *)w->dumper, &w->header, w->frame);
    w->packets += 1;
    w->bytes += 16 + w->header.caplen;
}

/* A payload size from a busy server's mix: many pure ACKs and full segments, some in between. */
static int payload_size(void) {
    uint32_t r = uniform(100);
    if (r < 35) return 0;
    if (r < 75) return 1448;
    return 1 + (int)uniform(1447);
}

static void start(struct conn *c, struct writer *w) {
    memset(c, 0, sizeof *c);
    c->id = w->connections++;
    c->ipv6 = uniform(IPV6_EVERY) == 0;
    c->incident = uniform(INCIDENT_EVERY) == 0;
    c->client_seq = (uint32_t)next_random();
    c->server_seq = (uint32_t)next_random();
    c->data_left = 10 + (int)uniform(390);
}

/* Sends `c`'s next packet; returns 0 when the connection is over. */
static int step(struct conn *c, struct writer *w) {
    int s = c->step++;
    if (s == 0) {
        emit(w, c, 1, F_SYN, c->client_seq++, 0, 64240, 0);
        return 1;
    }
    if (s == 1) {
        emit(w, c, 0, F_SYN | F_ACK, c->server_seq++, c->client_seq, 65160, 0);
        return 1;
    }
    if (s == 2) {
        int request = (c->incident && uniform(2) == 0) || !c->incident ? 40 + (int)uniform(400) : 0;
        emit(w, c, 1, request ? F_ACK | F_PSH : F_ACK, c->client_seq, c->server_seq, 502, request);
        c->client_seq += (uint32_t)request;
        return 1;
    }
    if (c->incident) {
        /* The kernel's answer to an ACK it has no connection for: seq = the ACK's ack number, no ACK flag. */
        emit(w, c, 0, F_RST, c->server_seq, 0, 0, 0);
        w->incidents += 1;
        w->incidents_ipv4 += !c->ipv6;
        return 0;
    }
    if (c->data_left > 0 && full) {
        c->data_left -= 1;
        if (c->data_left % 3 == 0) {
            emit(w, c, 1, F_ACK, c->client_seq, c->server_seq, 502, 0);
        } else {
            int mss = c->ipv6 ? 1428 : 1448;
            emit(w, c, 0, F_ACK, c->server_seq, c->client_seq, 509, mss);
            c->server_seq += (uint32_t)mss;
        }
        return 1;
    }
    if (c->data_left > 0) {
        c->data_left -= 1;
        int payload = payload_size();
        if (uniform(5) < 3) {
            emit(w, c, 0, payload ? F_ACK | F_PSH : F_ACK, c->server_seq, c->client_seq, 509, payload);
            c->server_seq += (uint32_t)payload;
        } else {
            emit(w, c, 1, payload ? F_ACK | F_PSH : F_ACK, c->client_seq, c->server_seq, 502, payload);
            c->client_seq += (uint32_t)payload;
        }
        return 1;
    }
    switch (c->data_left--) {
    case 0:
        emit(w, c, 1, F_FIN | F_ACK, c->client_seq++, c->server_seq, 502, 0);
        return 1;
    case -1:
        emit(w, c, 0, F_FIN | F_ACK, c->server_seq++, c->client_seq, 509, 0);
        return 1;
    default:
        emit(w, c, 1, F_ACK, c->client_seq, c->server_seq, 502, 0);
        return 0;
    }
}

int main(int argc, char **argv) {
    full = argc >= 2 && strcmp(argv[1], "full") == 0;
    if (argc < 4 || (strcmp(argv[1], "traffic") != 0 && strcmp(argv[1], "open") != 0 && !full)) {
        fprintf(stderr, "usage: %s traffic|open|full OUT.pcap COUNT [SEED]\n", argv[0]);
        return 64;
    }
    uint64_t count = strtoull(argv[3], NULL, 10);
    rng_state = argc > 4 ? strtoull(argv[4], NULL, 0) : 1;
    snaplen = full ? FULL_SNAPLEN : SNAPLEN;
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, snaplen);
    static struct writer w = {.bytes = 24}; /* the file header */
    w.dumper = pcap_dump_open(dead, argv[2]);
    if (!w.dumper) {
        fprintf(stderr, "%s: %s\n", argv[2], pcap_geterr(dead));
        return 1;
    }
    if (strcmp(argv[1], "open") != 0) {
        static struct conn live[LIVE];
        for (int i = 0; i < LIVE; i++) start(&live[i], &w);
        while ((full ? w.bytes : w.packets) < count) {
            struct conn *c = &live[uniform(LIVE)];
            if (!step(c, &w)) start(c, &w);
        }
    } else {
        struct conn *conns = calloc(count, sizeof *conns);
        if (!conns) return 1;
        for (uint64_t i = 0; i < count; i++) start(&conns[i], &w);
        for (uint64_t i = 0; i < count; i++) step(&conns[i], &w);
        for (uint64_t i = 0; i < count; i++) step(&conns[i], &w);
        for (uint64_t i = 0; i < count; i++) {
            step(&conns[i], &w);
            step(&conns[i], &w);
        }
        free(conns);
    }
    pcap_dump_close(w.dumper);
    pcap_close(dead);
    printf("{\"packets\": %llu, \"bytes\": %llu, \"connections\": %llu, \"incidents\": %llu, "
           "\"incidents_ipv4\": %llu, \"seconds\": %.6f}\n",
           (unsigned long long)w.packets, (unsigned long long)w.bytes, (unsigned long long)w.connections,
           (unsigned long long)w.incidents, (unsigned long long)w.incidents_ipv4, w.now_us / 1e6);
    return 0;
}
