/*
 * ehash-reference.c - independent reference for Linux reuseport listener selection.
 *
 * Purpose: an independent check of the project's Swift model of the kernel's
 * listener-selection arithmetic (inet_ehashfn, inet6_ehashfn, jhash_3words,
 * the 3.9-4.5 reuseport walk and the 4.6+ reuseport group choice). It was
 * written from /work/shared/KERNEL-FACTS.md and the kernel sources
 * (include/linux/jhash.h, net/ipv4/inet_hashtables.c, net/ipv6/inet6_hashtables.c,
 * net/core/sock_reuseport.c, the 3.9 __inet_lookup_listener walk), not from
 * the Swift code.
 *
 * It emulates the kernel as it touches memory on a little-endian host:
 * addresses are parsed with inet_pton and their 32-bit words read raw; the
 * client (foreign) port enters as the raw __be16 value (htons(port)); the
 * server (local) port enters in host order.
 *
 * Usage:
 *   ehash-reference --vectors     check the vectors of KERNEL-FACTS.md (exit 1 on mismatch)
 *   ehash-reference COUNT SEED    print COUNT deterministic random CSV cases:
 *     kernel,family,client_ip,client_port,server_ip,server_port,secret,secret6,
 *     addrsecret,listeners,hash,bucket,bucket_if_fewer,bucket_if_more
 * The test generates cases with this program and checks that the Swift model
 * computes the same hash and buckets for each line.
 * Buckets are listen-order indices (0 = first listener opened).
 *
 * Build: cc -std=c11 -O2 -Wall -Wextra -Werror -o ehash-reference ehash-reference.c
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JHASH_INITVAL 0xdeadbeefu

/* Kernel eras, selected by a label. */
enum era { ERA_3_9, ERA_4_1, ERA_4_6, ERA_6_15 };
static const char *era_label[] = { "3.9", "4.1", "4.6", "6.15" };

static int era_new_jhash(enum era e) { return e != ERA_3_9; }     /* jhash >= 4.1 form */
static int era_walk(enum era e) { return e == ERA_3_9 || e == ERA_4_1; }
static int era_port_added(enum era e) { return e == ERA_6_15; }

/* ---- include/linux/jhash.h ---- */

static uint32_t rol32(uint32_t w, unsigned s) { return (w << s) | (w >> ((32 - s) & 31)); }

static uint32_t jhash_final(uint32_t a, uint32_t b, uint32_t c)
{
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

/* <= 4.0: a += JHASH_INITVAL, b += JHASH_INITVAL, c += initval. */
static uint32_t jhash_3words_old(uint32_t a, uint32_t b, uint32_t c, uint32_t initval)
{
	a += JHASH_INITVAL;
	b += JHASH_INITVAL;
	c += initval;
	return jhash_final(a, b, c);
}

/* >= 4.1: __jhash_nwords(a, b, c, initval + JHASH_INITVAL + (3 << 2)). */
static uint32_t jhash_3words_new(uint32_t a, uint32_t b, uint32_t c, uint32_t initval)
{
	uint32_t s = initval + JHASH_INITVAL + (3u << 2);
	a += s;
	b += s;
	c += s;
	return jhash_final(a, b, c);
}

static uint32_t jhash_3words(enum era e, uint32_t a, uint32_t b, uint32_t c, uint32_t initval)
{
	return era_new_jhash(e) ? jhash_3words_new(a, b, c, initval)
				: jhash_3words_old(a, b, c, initval);
}

/* Shared shape of inet_ehashfn / __inet6_ehashfn. fport_raw is the __be16 as stored. */
static uint32_t ehash_shape(enum era e, uint32_t laddr, uint16_t lport,
			    uint32_t faddr, uint32_t fport_raw, uint32_t initval)
{
	if (era_port_added(e))
		return (uint32_t)lport + jhash_3words(e, laddr, faddr, fport_raw, initval);
	return jhash_3words(e, laddr, faddr, ((uint32_t)lport << 16) | fport_raw, initval);
}

/* ---- net/ipv4/inet_hashtables.c inet_ehashfn ---- */

static int inet_ehashfn(enum era e, const char *server_ip, uint16_t server_port,
			const char *client_ip, uint16_t client_port, uint32_t initval,
			uint32_t *out)
{
	struct in_addr l, f;
	uint32_t laddr, faddr;

	if (inet_pton(AF_INET, server_ip, &l) != 1 || inet_pton(AF_INET, client_ip, &f) != 1)
		return -1;
	memcpy(&laddr, &l, 4);
	memcpy(&faddr, &f, 4);
	*out = ehash_shape(e, laddr, server_port, faddr, (uint32_t)htons(client_port), initval);
	return 0;
}

/* ---- net/ipv6/inet6_hashtables.c inet6_ehashfn ---- */

static int inet6_ehashfn(enum era e, const char *server_ip, uint16_t server_port,
			 const char *client_ip, uint16_t client_port,
			 uint32_t secret6, uint32_t addrsecret, uint32_t *out)
{
	struct in6_addr l, f;
	uint32_t lw[4], fw[4], lhash, fhash;

	if (inet_pton(AF_INET6, server_ip, &l) != 1 || inet_pton(AF_INET6, client_ip, &f) != 1)
		return -1;
	memcpy(lw, &l, 16);
	memcpy(fw, &f, 16);
	lhash = lw[3];
	fhash = jhash_3words(e, fw[0] ^ fw[1], fw[2], fw[3], addrsecret); /* __ipv6_addr_jhash */
	*out = ehash_shape(e, lhash, server_port, fhash, (uint32_t)htons(client_port), secret6);
	return 0;
}

/* ---- listener choice ---- */

static uint32_t next_pseudo_random32(uint32_t x) { return x * 1664525u + 1013904223u; }

static uint32_t reciprocal_scale(uint32_t v, uint32_t n) { return (uint32_t)(((uint64_t)v * n) >> 32); }

/* 3.9-4.5 walk over n top-score reuseport sockets, visited s1..sn (newest first).
 * Returns the walk index (0 = s1 = newest). */
static uint32_t walk_index(uint32_t hash, uint32_t n)
{
	uint32_t result = 0, x = hash, k;

	for (k = 2; k <= n; k++) {
		if (reciprocal_scale(x, k) == 0)
			result = k - 1;
		x = next_pseudo_random32(x);
	}
	return result;
}

/* Listen-order bucket (0 = first opened) among n listeners. */
static uint32_t bucket_for(enum era e, uint32_t hash, uint32_t n)
{
	if (era_walk(e))
		return n - 1 - walk_index(hash, n); /* walk visits listen index n-1 first */
	return reciprocal_scale(hash, n);
}

/* ---- vectors from KERNEL-FACTS.md ---- */

static int failures;

static void check(const char *what, uint32_t got, uint32_t want)
{
	int ok = got == want;
	printf("%-48s got %08" PRIx32 " expected %08" PRIx32 " %s\n", what, got, want,
	       ok ? "OK" : "MISMATCH");
	if (!ok)
		failures++;
}

static void check_row(const char *what, const char *got, const char *want)
{
	int ok = strcmp(got, want) == 0;
	printf("%-48s got %s expected %s %s\n", what, got, want, ok ? "OK" : "MISMATCH");
	if (!ok)
		failures++;
}

static int run_vectors(void)
{
	static const struct { uint32_t a, b, c, iv, old_, new_; } jt[] = {
		{ 0, 0, 0, 0, 0xc0b0a2c2, 0x1b68e557 },
		{ 1, 2, 3, 4, 0x13ed7f7b, 0x8103143f },
		{ 0x0100007f, 0x0100007f, 0x1f903930, 0, 0xb45115f6, 0xa823b5dd },
		{ 0xdeadbeef, 0x01234567, 0x89abcdef, 0x9e3779b9, 0xd8806acc, 0xd05ffbd7 },
	};
	static const struct { uint32_t iv, want[3]; } et[] = {
		{ 0x00000000, { 0xd590817e, 0x4cf02783, 0x34fccb73 } },
		{ 0x12345678, { 0xd12f10f6, 0xeea1f1d2, 0xee820923 } },
	};
	static const enum era eras3[3] = { ERA_3_9, ERA_4_1, ERA_6_15 };
	static const uint32_t loop_want[3] = { 0xb45115f6, 0xa823b5dd, 0x5261396a };
	static const uint32_t v6_want[3] = { 0xc6c8451f, 0x195d9429, 0x41d2f4f0 };
	static const struct { uint32_t seed, seq[4]; } pr[] = {
		{ 0x00000000, { 0x3c6ef35f, 0x47502932, 0xd1ccf6e9, 0xaaf95334 } },
		{ 0x12345678, { 0x75432777, 0xcd305e6a, 0x25dbfac1, 0x4b5c952c } },
	};
	static const struct { uint32_t h; const char *walk, *group; } st[] = {
		{ 0x00000000, "0 1 2 2 2 2 2 2", "0 0 0 0 0 0 0 0" },
		{ 0x7fffffff, "0 1 1 1 1 5 5 5", "0 0 1 1 2 2 3 3" },
		{ 0x9e3779b9, "0 0 2 2 2 2 2 7", "0 1 1 2 3 3 4 4" },
		{ 0xfffffffe, "0 0 2 3 3 3 6 6", "0 1 2 3 4 5 6 7" },
	};
	char what[96], row[64];
	uint32_t h, x;
	size_t i, j;

	for (i = 0; i < sizeof jt / sizeof jt[0]; i++) {
		snprintf(what, sizeof what, "jhash_3words<=4.0(%08" PRIx32 ",%08" PRIx32 ",%08" PRIx32 ",%08" PRIx32 ")",
			 jt[i].a, jt[i].b, jt[i].c, jt[i].iv);
		check(what, jhash_3words_old(jt[i].a, jt[i].b, jt[i].c, jt[i].iv), jt[i].old_);
		snprintf(what, sizeof what, "jhash_3words>=4.1(%08" PRIx32 ",%08" PRIx32 ",%08" PRIx32 ",%08" PRIx32 ")",
			 jt[i].a, jt[i].b, jt[i].c, jt[i].iv);
		check(what, jhash_3words_new(jt[i].a, jt[i].b, jt[i].c, jt[i].iv), jt[i].new_);
	}
	for (i = 0; i < sizeof et / sizeof et[0]; i++)
		for (j = 0; j < 3; j++) {
			if (inet_ehashfn(eras3[j], "10.0.0.1", 443, "192.168.1.10", 51234, et[i].iv, &h))
				return 2;
			snprintf(what, sizeof what, "inet_ehashfn %s initval %08" PRIx32, era_label[eras3[j]], et[i].iv);
			check(what, h, et[i].want[j]);
		}
	for (j = 0; j < 3; j++) {
		if (inet_ehashfn(eras3[j], "127.0.0.1", 8080, "127.0.0.1", 12345, 0, &h))
			return 2;
		snprintf(what, sizeof what, "inet_ehashfn loopback %s", era_label[eras3[j]]);
		check(what, h, loop_want[j]);
	}
	for (j = 0; j < 3; j++) {
		if (inet6_ehashfn(eras3[j], "2001:db8::1", 443, "2001:db8::2", 51234,
				  0x12345678, 0x9abcdef0, &h))
			return 2;
		snprintf(what, sizeof what, "inet6_ehashfn %s", era_label[eras3[j]]);
		check(what, h, v6_want[j]);
	}
	for (i = 0; i < sizeof pr / sizeof pr[0]; i++) {
		x = pr[i].seed;
		for (j = 0; j < 4; j++) {
			x = next_pseudo_random32(x);
			snprintf(what, sizeof what, "next_pseudo_random32 from %08" PRIx32 " step %zu", pr[i].seed, j + 1);
			check(what, x, pr[i].seq[j]);
		}
	}
	for (i = 0; i < sizeof st / sizeof st[0]; i++) {
		int n, len = 0;
		for (n = 1; n <= 8; n++)
			len += snprintf(row + len, sizeof row - len, n > 1 ? " %" PRIu32 : "%" PRIu32,
					walk_index(st[i].h, (uint32_t)n));
		snprintf(what, sizeof what, "walk index N=1..8 phash %08" PRIx32, st[i].h);
		check_row(what, row, st[i].walk);
		len = 0;
		for (n = 1; n <= 8; n++)
			len += snprintf(row + len, sizeof row - len, n > 1 ? " %" PRIu32 : "%" PRIu32,
					reciprocal_scale(st[i].h, (uint32_t)n));
		snprintf(what, sizeof what, "group (hash*N)>>32 N=1..8 hash %08" PRIx32, st[i].h);
		check_row(what, row, st[i].group);
	}
	printf("%s\n", failures ? "MISMATCH" : "ALL OK");
	return failures ? 1 : 0;
}

/* ---- random cases ---- */

static uint64_t rng_state;

static uint64_t xorshift64(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint32_t rnd32(void) { return (uint32_t)(xorshift64() >> 32); }

static void random_address(int family, char *buf, size_t len)
{
	unsigned char bytes[16];
	int i;

	for (i = 0; i < 16; i++)
		bytes[i] = (unsigned char)rnd32();
	inet_ntop(family == 4 ? AF_INET : AF_INET6, bytes, buf, (socklen_t)len);
}

static int run_cases(unsigned long count, uint64_t seed)
{
	unsigned long i;

	rng_state = seed ? seed : 0x9e3779b97f4a7c15ull; /* xorshift state must be non-zero */
	for (i = 0; i < count; i++) {
		enum era e = (enum era)(i % 4);
		int family = (i + i / 4) % 2 ? 6 : 4; /* alternates; all era/family pairs within 8 lines */
		char cip[INET6_ADDRSTRLEN], sip[INET6_ADDRSTRLEN];
		uint16_t cport, sport;
		uint32_t secret, secret6, addrsecret, n, hash;
		int rc;

		random_address(family, cip, sizeof cip);
		random_address(family, sip, sizeof sip);
		cport = (uint16_t)(1 + rnd32() % 65535);
		sport = (uint16_t)(1 + rnd32() % 65535);
		secret = rnd32();
		secret6 = rnd32();
		addrsecret = rnd32();
		n = rnd32() % 8 == 0 ? 1 : 2 + rnd32() % 15; /* 1..16, N = 1 about one case in eight */

		if (family == 4)
			rc = inet_ehashfn(e, sip, sport, cip, cport, secret, &hash);
		else
			rc = inet6_ehashfn(e, sip, sport, cip, cport, secret6, addrsecret, &hash);
		if (rc) {
			fprintf(stderr, "inet_pton failed\n");
			return 2;
		}

		printf("%s,%d,%s,%u,%s,%u,0x%08" PRIx32 ",0x%08" PRIx32 ",0x%08" PRIx32 ",%" PRIu32 ",0x%08" PRIx32 ",%" PRIu32 ",",
		       era_label[e], family, cip, (unsigned)cport, sip, (unsigned)sport,
		       secret, secret6, addrsecret, n, hash, bucket_for(e, hash, n));
		if (n > 1)
			printf("%" PRIu32, bucket_for(e, hash, n - 1));
		printf(",%" PRIu32 "\n", bucket_for(e, hash, n + 1));
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--vectors") == 0)
		return run_vectors();
	if (argc == 3)
		return run_cases(strtoul(argv[1], NULL, 10), strtoull(argv[2], NULL, 0));
	fprintf(stderr, "usage: %s --vectors | %s COUNT SEED\n", argv[0], argv[0]);
	return 2;
}
