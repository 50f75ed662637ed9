// Test tiers: one source builds the quick suite (CI, PoCL on 2 cores, each specialization
// compiles in about a second) and the extended one (ctest -L extended: more and larger random
// problems under other seeds). TIER(quick, extended) picks the value for this build.
#pragma once

#include "testing/na_case.hpp"

#ifdef OPENNA_EXTENDED_TESTS
#define TIER(quick, extended) (extended)
#else
#define TIER(quick, extended) (quick)
#endif

// Random problem limits per tier: small problems and head dims up to 48 in the quick tier;
// larger ones and head dims up to 96 in the extended tier.
inline openna::testing::RandomCaseLimits tier_limits() {
  openna::testing::RandomCaseLimits lim;
  lim.max_tokens = TIER(256, 1024);
  lim.max_head_dim = TIER(48, 96);
  return lim;
}
