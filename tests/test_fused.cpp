// The fused forward against the host reference: the randomized suite of the foundation issue
// (same generator, its own seed) plus adversarial cases, on the device's default configuration
// and on other tile shapes (tiles larger than axes, ragged edges, tiny tiles).
#include <gtest/gtest.h>

#include "core/problem.hpp"
#include "test_util.hpp"
#include "tiers.hpp"

namespace openna::testing {
namespace {


class FusedRandom : public ::testing::TestWithParam<NaCase> {};

TEST_P(FusedRandom, Forward) {
  const std::string why = unsupported(GetParam(), "fused", Pass::Forward);
  ASSERT_TRUE(why.empty()) << why;
  check_forward(GetParam(), "fused");
}

// Half of the random problems also through the GPU's configuration (work-group form).
TEST_P(FusedRandom, ForwardGpuConfig) {
  if (TIER(GetParam().seed % 3 != 0, false)) {
    GTEST_SKIP() << "quick tier: one case in three runs the GPU configuration too";
  }
  const Config c = gpu_config(GetParam(), "fused", Pass::Forward);
  SCOPED_TRACE(c.str());
  check_forward(GetParam(), "fused", &c);
}

INSTANTIATE_TEST_SUITE_P(Quick, FusedRandom, ::testing::ValuesIn(random_cases(TIER(4242, 4243), TIER(60, 240), tier_limits())),
                         [](const auto& info) { return info.param.name(); });

std::vector<NaCase> adversarial() {
  std::vector<NaCase> v;
  // Axis lengths not divisible by any tile.
  v.push_back(make_case(2, {13, 11}, {5, 3}, {1, 1}, {1, 1}, {0, 0}, 2, 2, 32, 32, OPENNA_F32));
  v.push_back(make_case(1, {67}, {9}, {1}, {1}, {0}, 1, 1, 16, 16, OPENNA_F16));
  // Kernel equal to the axis length: plain self attention.
  v.push_back(make_case(2, {7, 9}, {7, 9}, {1, 1}, {1, 1}, {0, 0}, 2, 1, 24, 24, OPENNA_F32));
  v.push_back(make_case(1, {50}, {50}, {1}, {1}, {0}, 3, 3, 8, 8, OPENNA_BF16));
  // Dilation with uneven groups.
  v.push_back(make_case(2, {17, 10}, {3, 2}, {1, 1}, {4, 3}, {0, 0}, 1, 1, 16, 16, OPENNA_F32));
  v.push_back(make_case(1, {23}, {4}, {2}, {5}, {0}, 2, 1, 32, 16, OPENNA_F16));
  // Even kernels with stride.
  v.push_back(make_case(2, {12, 10}, {4, 6}, {2, 3}, {1, 1}, {0, 0}, 2, 2, 16, 16, OPENNA_F32));
  v.push_back(make_case(3, {6, 8, 7}, {4, 2, 6}, {4, 2, 3}, {1, 1, 1}, {0, 0, 0}, 1, 1, 8, 8,
                   OPENNA_BF16));
  // Causal with stride and dilation.
  v.push_back(make_case(2, {15, 14}, {5, 3}, {2, 3}, {2, 3}, {1, 1}, 2, 1, 16, 16, OPENNA_F32));
  v.push_back(make_case(3, {9, 8, 10}, {3, 2, 4}, {3, 1, 2}, {2, 2, 1}, {1, 0, 1}, 1, 1, 16, 8,
                   OPENNA_F16));
  v.push_back(make_case(1, {40}, {7}, {3}, {2}, {1}, 4, 2, 16, 16, OPENNA_F32));
  // Head dims of every bucket, including the odd ones.
  for (int hd : {8, 40, 80, 96, 128, 160, 256}) {
    v.push_back(make_case(2, {6, 5}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, 2, 1, hd, hd,
                     hd % 16 ? OPENNA_F16 : OPENNA_F32));
  }
  v.push_back(make_case(1, {9}, {5}, {1}, {1}, {0}, 1, 1, 80, 160, OPENNA_F32));
  // Batch and heads > 1, GQA and MQA.
  v.push_back(make_case(2, {9, 7}, {5, 3}, {1, 1}, {1, 1}, {0, 1}, 6, 2, 16, 16, OPENNA_F32, 3));
  v.push_back(make_case(2, {9, 7}, {5, 3}, {1, 1}, {1, 1}, {0, 0}, 4, 1, 16, 16, OPENNA_BF16, 2));
  // Kernel size 1.
  v.push_back(make_case(3, {4, 5, 6}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1, 1, 16, 16,
                   OPENNA_F32));
  return v;
}

class FusedAdversarial : public ::testing::TestWithParam<NaCase> {};

TEST_P(FusedAdversarial, Forward) {
  const std::string why = unsupported(GetParam(), "fused", Pass::Forward);
  ASSERT_TRUE(why.empty()) << why;
  check_forward(GetParam(), "fused");
}

TEST_P(FusedAdversarial, ForwardGpuConfig) {
  const Config c = gpu_config(GetParam(), "fused", Pass::Forward);
  SCOPED_TRACE(c.str());
  check_forward(GetParam(), "fused", &c);
}

INSTANTIATE_TEST_SUITE_P(Quick, FusedAdversarial, ::testing::ValuesIn(adversarial()),
                         [](const auto& info) { return info.param.name(); });

// Other tile shapes than the default: every tuning candidate must be correct, so check a spread
// of them on a problem with ragged edges, dilation, stride and causal axes.
TEST(FusedConfigs, CandidatesAreCorrect) {
  const NaCase c =
      make_case(2, {11, 13}, {5, 4}, {2, 1}, {2, 1}, {0, 1}, 2, 1, 24, 16, OPENNA_F32, 1, 99);
  const Problem p = normalize(&c.problem);
  const auto all = find_variant("fused")->candidates(p, test_context().device(), Pass::Forward);
  ASSERT_FALSE(all.empty());
  // Every 7th candidate keeps the test short while covering different shapes.
  for (std::size_t i = 0; i < all.size(); i += 7) {
    SCOPED_TRACE(all[i].str());
    check_forward(c, "fused", &all[i]);
  }
}

}  // namespace
}  // namespace openna::testing
