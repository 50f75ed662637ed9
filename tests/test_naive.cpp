// The naive variant against the host reference on random problems covering every option, rank
// and dtype (fixed seeds; the case name carries the seed), forward and backward.
#include <gtest/gtest.h>

#include "test_util.hpp"

namespace openna::testing {
namespace {

std::vector<NaCase> random_cases(std::uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  std::vector<NaCase> cases;
  for (int i = 0; i < n; ++i) cases.push_back(random_case(rng));
  return cases;
}

class NaiveRandom : public ::testing::TestWithParam<NaCase> {};

TEST_P(NaiveRandom, ForwardAndBackward) {
  check_forward(GetParam(), "naive");
  check_backward(GetParam(), "naive");
}

INSTANTIATE_TEST_SUITE_P(Quick, NaiveRandom, ::testing::ValuesIn(random_cases(2026, 200)),
                         [](const auto& info) { return info.param.name(); });

}  // namespace
}  // namespace openna::testing
