// The fused backward against the host reference (d_q, d_k, d_v from the reference's out and
// lse), on random problems covering every option and dtype and on adversarial cases; the
// determinism test (bitwise equal results of two runs, every dtype, with GQA); and the
// end-to-end gradient check of the fused backward against central finite differences of the
// fused forward.
#include <gtest/gtest.h>

#include <cstring>

#include "core/problem.hpp"
#include "test_util.hpp"
#include "tiers.hpp"

namespace openna::testing {
namespace {


class FusedBwdRandom : public ::testing::TestWithParam<NaCase> {};

TEST_P(FusedBwdRandom, Backward) {
  const std::string why = unsupported(GetParam(), "fused", Pass::Backward);
  ASSERT_TRUE(why.empty()) << why;
  check_backward(GetParam(), "fused");
}

// Half of the random problems also through the GPU's configuration (work-group form).
TEST_P(FusedBwdRandom, BackwardGpuConfig) {
  if (TIER(GetParam().seed % 3 != 0, false)) {
    GTEST_SKIP() << "quick tier: one case in three runs the GPU configuration too";
  }
  const Config c = gpu_config(GetParam(), "fused", Pass::Backward);
  SCOPED_TRACE(c.str());
  check_backward(GetParam(), "fused", &c);
}

INSTANTIATE_TEST_SUITE_P(Quick, FusedBwdRandom, ::testing::ValuesIn(random_cases(TIER(777, 778), TIER(50, 200), tier_limits())),
                         [](const auto& info) { return info.param.name(); });

std::vector<NaCase> adversarial() {
  return {
      make_case(2, {13, 11}, {5, 3}, {1, 1}, {1, 1}, {0, 0}, 2, 2, 32, 32, OPENNA_F32),
      make_case(2, {7, 9}, {7, 9}, {1, 1}, {1, 1}, {0, 0}, 2, 1, 24, 24, OPENNA_F32),
      make_case(2, {17, 10}, {3, 2}, {1, 1}, {4, 3}, {0, 0}, 1, 1, 16, 16, OPENNA_F16),
      make_case(2, {12, 10}, {4, 6}, {2, 3}, {1, 1}, {0, 0}, 2, 2, 16, 16, OPENNA_F32),
      make_case(2, {15, 14}, {5, 3}, {2, 3}, {2, 3}, {1, 1}, 2, 1, 16, 16, OPENNA_BF16),
      make_case(3, {9, 8, 10}, {3, 2, 4}, {3, 1, 2}, {2, 2, 1}, {1, 0, 1}, 1, 1, 16, 8, OPENNA_F32),
      make_case(1, {40}, {7}, {3}, {2}, {1}, 4, 2, 16, 16, OPENNA_F32),
      make_case(2, {6, 5}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, 2, 1, 80, 96, OPENNA_F16),
      make_case(1, {9}, {5}, {1}, {1}, {0}, 1, 1, 160, 128, OPENNA_F32),
      make_case(2, {9, 7}, {5, 3}, {1, 1}, {1, 1}, {0, 1}, 6, 2, 16, 16, OPENNA_F32, 3),
      make_case(2, {9, 7}, {5, 3}, {1, 1}, {1, 1}, {0, 0}, 4, 1, 40, 16, OPENNA_BF16, 2),
      make_case(3, {4, 5, 6}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1, 1, 16, 16, OPENNA_F32),
  };
}

class FusedBwdAdversarial : public ::testing::TestWithParam<NaCase> {};

TEST_P(FusedBwdAdversarial, Backward) { check_backward(GetParam(), "fused"); }

TEST_P(FusedBwdAdversarial, BackwardGpuConfig) {
  const Config c = gpu_config(GetParam(), "fused", Pass::Backward);
  SCOPED_TRACE(c.str());
  check_backward(GetParam(), "fused", &c);
}

INSTANTIATE_TEST_SUITE_P(Quick, FusedBwdAdversarial, ::testing::ValuesIn(adversarial()),
                         [](const auto& info) { return info.param.name(); });

// Two runs of the backward on the same inputs give bitwise equal gradients (no atomics, fixed
// summation order), for every dtype, with GQA.
TEST(FusedBwdDeterminism, BitwiseEqual) {
  for (openna_dtype dt : {OPENNA_F32, OPENNA_F16, OPENNA_BF16}) {
    const NaCase c =
        make_case(2, {11, 9}, {5, 3}, {2, 1}, {2, 1}, {0, 1}, 4, 2, 32, 16, dt, 2, 11 + dt);
    Context& ctx = test_context();
    const Problem p = normalize(&c.problem);
    const Selection s = select_variant(ctx.device(), p, Pass::Backward, "fused");
    const CaseData data = make_inputs(c);
    DeviceCase dc(ctx, c, data);
    upload_forward(ctx, dc, reference_forward(c.problem, data.qd, data.kd, data.vd));
    const Outputs a = run_backward(ctx, s, dc);
    dc.poison_outputs(ctx);
    upload_forward(ctx, dc, reference_forward(c.problem, data.qd, data.kd, data.vd));
    const Outputs b = run_backward(ctx, s, dc);
    EXPECT_EQ(0, std::memcmp(a.d_q.data(), b.d_q.data(), a.d_q.size() * sizeof(double)))
        << c.name();
    EXPECT_EQ(0, std::memcmp(a.d_k.data(), b.d_k.data(), a.d_k.size() * sizeof(double)))
        << c.name();
    EXPECT_EQ(0, std::memcmp(a.d_v.data(), b.d_v.data(), a.d_v.size() * sizeof(double)))
        << c.name();
  }
}

// The fused backward against central differences of the fused forward (f32), through the
// loss L = sum(out * d_out): checks that the two kernels are consistent with each other, not
// only each with the reference.
TEST(FusedBwdGradient, FiniteDifferencesOfFusedForward) {
  const NaCase c = make_case(2, {5, 6}, {3, 4}, {1, 2}, {1, 1}, {1, 0}, 2, 1, 8, 4, OPENNA_F32, 1, 5);
  Context& ctx = test_context();
  const Problem p = normalize(&c.problem);
  const Selection fwd = select_variant(ctx.device(), p, Pass::Forward, "fused");
  const Selection bwd = select_variant(ctx.device(), p, Pass::Backward, "fused");
  CaseData data = make_inputs(c);
  DeviceCase dc(ctx, c, data);
  run_forward(ctx, fwd, dc);  // out and lse of the fused forward feed the backward
  const Outputs g = run_backward(ctx, bwd, dc);
  auto loss = [&](const CaseData& d) {
    DeviceCase x(ctx, c, d);
    const Outputs o = run_forward(ctx, fwd, x);
    double l = 0;
    for (std::size_t i = 0; i < o.out.size(); ++i) l += o.out[i] * d.d_outd[i];
    return l;
  };
  const float h = 1e-2f;  // f32 forward: a large step keeps rounding noise below the check
  auto check = [&](std::vector<std::uint8_t> CaseData::*raw, const std::vector<double>& grad,
                   const char* name) {
    double max_err = 0, max_g = 0;
    for (std::size_t i = 0; i < grad.size(); ++i) {
      CaseData plus = data, minus = data;
      float xp, xm;
      std::memcpy(&xp, &(plus.*raw)[i * 4], 4);
      xm = xp - h;
      xp = xp + h;
      std::memcpy(&(plus.*raw)[i * 4], &xp, 4);
      std::memcpy(&(minus.*raw)[i * 4], &xm, 4);
      const double fd = (loss(plus) - loss(minus)) / (2.0 * h);
      max_err = std::max(max_err, std::fabs(fd - grad[i]));
      max_g = std::max(max_g, std::fabs(grad[i]));
    }
    EXPECT_LT(max_err, 2e-3 * std::max(1.0, max_g)) << name << ": max |fd - grad| " << max_err;
  };
  check(&CaseData::q, g.d_q, "d_q");
  check(&CaseData::k, g.d_k, "d_k");
  check(&CaseData::v, g.d_v, "d_v");
}

}  // namespace
}  // namespace openna::testing
