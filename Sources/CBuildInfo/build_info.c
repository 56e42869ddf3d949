#include "build_info.h"

#ifndef RST_DETECTIVE_COMMIT
#define RST_DETECTIVE_COMMIT "unknown"
#endif

const char *rst_detective_commit(void) { return RST_DETECTIVE_COMMIT; }
