#ifndef RST_DETECTIVE_BUILD_INFO_H
#define RST_DETECTIVE_BUILD_INFO_H

/// The commit this binary was built from, as `scripts/package` passed it in through the environment variable
/// `RST_DETECTIVE_COMMIT` (Package.swift turns it into a define of this target only, so a new commit recompiles
/// one C file, not the whole build); "unknown" in a development build.
const char *rst_detective_commit(void);

#endif
