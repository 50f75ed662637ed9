// The naive variant against the host reference on random problems covering every option, rank
// and dtype (fixed seeds; the case name carries the seed), forward and backward.
#include <gtest/gtest.h>

#include "test_util.hpp"
#include "tiers.hpp"

namespace openna::testing {
namespace {

class NaiveRandom : public ::testing::TestWithParam<NaCase> {};

TEST_P(NaiveRandom, ForwardAndBackward) {
  check_forward(GetParam(), "naive");
  check_backward(GetParam(), "naive");
}

INSTANTIATE_TEST_SUITE_P(Quick, NaiveRandom, ::testing::ValuesIn(random_cases(TIER(2026, 31337), TIER(200, 400),
                                                                       tier_limits())),
                         [](const auto& info) { return info.param.name(); });

}  // namespace
}  // namespace openna::testing
