// Test tiers: one source builds the quick suite (CI, PoCL on 2 cores, each specialization
// compiles in about a second) and the extended one (ctest -L extended: more and larger random
// problems under other seeds). TIER(quick, extended) picks the value for this build.
#pragma once

#ifdef OPENNA_EXTENDED_TESTS
#define TIER(quick, extended) (extended)
#else
#define TIER(quick, extended) (quick)
#endif
