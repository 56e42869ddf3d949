#ifndef RSTD_CPCAP_SHIM_H
#define RSTD_CPCAP_SHIM_H
#include <pcap/pcap.h>
#endif
