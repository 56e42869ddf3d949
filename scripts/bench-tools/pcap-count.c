/*
 * The floor of the throughput benchmark (scripts/bench): reads a capture with pcap_next_ex and counts the
 * packets, nothing else. It opens the file the way rst-detective does (a stdio stream with a 256 KiB buffer,
 * pcap_fopen_offline_with_tstamp_precision, nanosecond timestamps), so that the difference between the two
 * is the analysis alone.
 */
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 64;
    }
    FILE *stream = fopen(argv[1], "rb");
    if (!stream) {
        perror(argv[1]);
        return 1;
    }
    static char buffer[1 << 18];
    setvbuf(stream, buffer, _IOFBF, sizeof buffer);
    char error[PCAP_ERRBUF_SIZE];
    pcap_t *pcap = pcap_fopen_offline_with_tstamp_precision(stream, PCAP_TSTAMP_PRECISION_NANO, error);
    if (!pcap) {
        fprintf(stderr, "%s: %s\n", argv[1], error);
        return 1;
    }
    struct pcap_pkthdr *header;
    const u_char *data;
    unsigned long long packets = 0, bytes = 0;
    int status;
    while ((status = pcap_next_ex(pcap, &header, &data)) == 1) {
        packets += 1;
        bytes += header->caplen;
    }
    if (status != PCAP_ERROR_BREAK) {
        fprintf(stderr, "%s: %s\n", argv[1], pcap_geterr(pcap));
        return 1;
    }
    printf("%llu packets %llu bytes\n", packets, bytes);
    pcap_close(pcap);
    return 0;
}
