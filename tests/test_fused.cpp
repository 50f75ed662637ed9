// The fused forward against the host reference: the randomized suite of the foundation issue
// (same generator, its own seed) plus adversarial cases, on the device's default configuration
// and on other tile shapes (tiles larger than axes, ragged edges, tiny tiles).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/problem.hpp"
#include "test_util.hpp"
#include "variants/fused_rows.hpp"
#include "tiers.hpp"

namespace openna::testing {
namespace {


// The forward's rows form (FORM=2) with `nr` rows of 16 queries (1 for rank 1) and `tk` items
// per step: it runs every problem, so every case can take it.
Config rows_config(const NaCase& c, int nr, int tk) {
  const Problem p = normalize(&c.problem);
  int tq[3];
  rows_box(p, p.rank >= 2 ? nr : 1, tq);
  return Config::parse("FORM=2,TQ0=" + std::to_string(tq[0]) + ",TQ1=" + std::to_string(tq[1]) +
                       ",TQ2=" + std::to_string(tq[2]) + ",TK=" + std::to_string(tk) + ",VW=16");
}

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

// The rows form on the random problems: a quarter of them in the quick tier (each is one more
// PoCL compile, and the form is a tuning candidate, not a default; its edge cases below all
// run), alternating 1 and 2 rows per work-item.
TEST_P(FusedRandom, ForwardRowsForm) {
  if (TIER(GetParam().seed % 4 != 0, false)) {
    GTEST_SKIP() << "quick tier: one case in four runs the rows form";
  }
  const Config c = rows_config(GetParam(), GetParam().seed % 8 < 4 ? 2 : 1, 8);
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

TEST_P(FusedAdversarial, ForwardRowsForm) {
  const Config c = rows_config(GetParam(), 2, 8);
  SCOPED_TRACE(c.str());
  check_forward(GetParam(), "fused", &c);
}

INSTANTIATE_TEST_SUITE_P(Quick, FusedAdversarial, ::testing::ValuesIn(adversarial()),
                         [](const auto& info) { return info.param.name(); });

// Problems aimed at the rows form's last axis (16 queries per vector, keys by offset, a padded
// transposed copy of K and V): lengths under 16 and not multiples of 16, kernel = length,
// windows clamped at both ends in one vector, uneven dilation groups (shorter groups are zero
// past their end), even kernels with stride, causal with stride and dilation, and each run
// with 1, 2 and 4 rows per work-item and several step sizes.
struct RowsCase {
  NaCase c;
  int nr, tk;
};

std::vector<RowsCase> rows_cases() {
  std::vector<RowsCase> v;
  auto add = [&](NaCase c, int nr, int tk) { v.push_back({c, nr, tk}); };
  // Rank 1: shorter than a vector, one vector plus a tail, kernel = length, causal.
  add(make_case(1, {5}, {3}, {1}, {1}, {0}, 2, 1, 16, 16, OPENNA_F32), 1, 8);
  add(make_case(1, {37}, {37}, {1}, {1}, {0}, 1, 1, 24, 24, OPENNA_F32), 1, 16);
  add(make_case(1, {53}, {9}, {4}, {3}, {1}, 2, 2, 16, 8, OPENNA_F16), 1, 4);
  // Rank 2: last axis 20 (one full vector, one of 4), kernel = length on it, GQA, LSE.
  add(make_case(2, {9, 20}, {3, 20}, {1, 1}, {1, 1}, {0, 0}, 4, 2, 32, 32, OPENNA_F32), 2, 8);
  add(make_case(2, {7, 33}, {5, 6}, {2, 3}, {1, 1}, {0, 0}, 2, 1, 16, 32, OPENNA_BF16), 4, 4);
  // Uneven dilation groups on the last axis (lengths 13, 12, 12) and on the row axis.
  add(make_case(2, {11, 37}, {3, 5}, {1, 2}, {3, 3}, {0, 0}, 1, 1, 16, 16, OPENNA_F32), 2, 8);
  add(make_case(2, {10, 37}, {4, 7}, {3, 3}, {2, 3}, {1, 1}, 2, 1, 16, 16, OPENNA_F16), 4, 8);
  // Causal on the last axis only, with stride and dilation; a last axis under 16.
  add(make_case(2, {18, 40}, {5, 8}, {1, 3}, {1, 2}, {0, 1}, 1, 1, 8, 8, OPENNA_F32), 1, 16);
  add(make_case(2, {12, 9}, {4, 9}, {4, 1}, {1, 1}, {1, 0}, 2, 2, 16, 16, OPENNA_F32), 2, 16);
  // Rank 3: rows blocked on axis 1, axis 0 uniform; odd head dims; MQA with batch 2.
  add(make_case(3, {5, 6, 19}, {3, 4, 5}, {1, 2, 1}, {1, 1, 1}, {1, 0, 0}, 3, 1, 40, 24,
                OPENNA_F32, 2), 2, 8);
  add(make_case(3, {4, 9, 17}, {2, 3, 17}, {1, 1, 1}, {2, 3, 1}, {0, 0, 0}, 1, 1, 16, 16,
                OPENNA_BF16), 4, 4);
  return v;
}

void PrintTo(const RowsCase& r, std::ostream* os) {
  *os << r.c.name() << " rows " << r.nr << " TK " << r.tk;
}

class FusedRows : public ::testing::TestWithParam<RowsCase> {};

TEST_P(FusedRows, Forward) {
  const Config c = rows_config(GetParam().c, GetParam().nr, GetParam().tk);
  SCOPED_TRACE(c.str());
  check_forward(GetParam().c, "fused", &c);
}

INSTANTIATE_TEST_SUITE_P(Quick, FusedRows, ::testing::ValuesIn(rows_cases()),
                         [](const auto& info) {
                           return info.param.c.name() + "_r" + std::to_string(info.param.nr) +
                                  "_k" + std::to_string(info.param.tk);
                         });

// What the rows form refuses, with a reason: the backward, other vector widths, a wrong box,
// too many score vectors.
TEST(FusedRowsConfig, RejectsWhatItCannotRun) {
  const NaCase c = make_case(2, {9, 20}, {3, 5}, {1, 1}, {1, 1}, {0, 0}, 1, 1, 16, 16, OPENNA_F32);
  const Problem p = normalize(&c.problem);
  const Variant* v = find_variant("fused");
  const DeviceInfo& dev = test_context().device();
  EXPECT_EQ(v->config_error(p, dev, Pass::Forward, rows_config(c, 2, 8)), "");
  EXPECT_NE(v->config_error(p, dev, Pass::Backward, rows_config(c, 2, 8)), "");
  for (const char* bad : {"FORM=2,TQ0=2,TQ1=16,TQ2=1,TK=8,VW=8", "FORM=2,TQ0=2,TQ1=8,TQ2=1,TK=8,VW=16",
                          "FORM=2,TQ0=3,TQ1=16,TQ2=1,TK=8,VW=16", "FORM=2,TQ0=4,TQ1=16,TQ2=1,TK=16,VW=16",
                          "FORM=2,TQ0=2,TQ1=16,TQ2=1,TK=0,VW=16", "FORM=3,TQ0=2,TQ1=16,TQ2=1,TK=8,VW=16"}) {
    EXPECT_NE(v->config_error(p, dev, Pass::Forward, Config::parse(bad)), "") << bad;
  }
  // The rows candidates the tuner may pick are among the forward's, never the backward's.
  int rows_fwd = 0, rows_bwd = 0;
  for (const Config& k : v->candidates(p, dev, Pass::Forward)) rows_fwd += k.get("FORM", 0) == 2;
  for (const Config& k : v->candidates(p, dev, Pass::Backward)) rows_bwd += k.get("FORM", 0) == 2;
  // A CPU form: the tuner tries it on CPUs only (it runs anywhere when forced).
  if (dev.is_cpu()) {
    EXPECT_GT(rows_fwd, 0);
  } else {
    EXPECT_EQ(rows_fwd, 0);
  }
  EXPECT_EQ(rows_bwd, 0);
}

// The rows candidates the tuner may try are correct (they differ in rows and step size): every
// other one in the quick tier (all of them took 64-72 s of CI), all in the extended one.
TEST(FusedConfigs, RowsCandidatesAreCorrect) {
  const NaCase c =
      make_case(2, {11, 21}, {5, 4}, {2, 1}, {2, 1}, {0, 1}, 2, 1, 24, 16, OPENNA_F32, 1, 98);
  const Problem p = normalize(&c.problem);
  if (!test_context().device().is_cpu()) GTEST_SKIP() << "the rows candidates are CPU-only";
  int checked = 0, seen = 0;
  for (const Config& k : find_variant("fused")->candidates(p, test_context().device(), Pass::Forward)) {
    if (k.get("FORM", 0) != 2 || seen++ % TIER(2, 1) != 0) continue;
    SCOPED_TRACE(k.str());
    check_forward(c, "fused", &k);
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

// Other tile shapes than the default: every tuning candidate must be correct, so check a spread
// of them on a problem with ragged edges, dilation, stride and causal axes.
TEST(FusedConfigs, CandidatesAreCorrect) {
  const NaCase c =
      make_case(2, {11, 13}, {5, 4}, {2, 1}, {2, 1}, {0, 1}, 2, 1, 24, 16, OPENNA_F32, 1, 99);
  const Problem p = normalize(&c.problem);
  const auto all = find_variant("fused")->candidates(p, test_context().device(), Pass::Forward);
  ASSERT_FALSE(all.empty());
  // Every 10th candidate keeps the quick test short while covering different shapes (every 7th
  // took 118-139 s of CI's 2-core VM); the extended tier checks every one.
  for (std::size_t i = 0; i < all.size(); i += TIER(10, 1)) {
    SCOPED_TRACE(all[i].str());
    check_forward(c, "fused", &all[i]);
  }
}

// The lanes form at every vector width it accepts (the CPU default is 16; a tuning file may ask
// for less), forward and, at width 1 (scalar vectors, where a comparison gives 1 instead of -1),
// both backward paths: a rank-2 problem with stride, dilation and a causal axis, and a rank-3
// one with GQA.
TEST(FusedConfigs, LanesFormAtEveryWidth) {
  const std::vector<NaCase> cases = {
      make_case(2, {9, 13}, {5, 3}, {2, 1}, {1, 2}, {0, 1}, 2, 2, 24, 24, OPENNA_F32),
      make_case(3, {4, 5, 6}, {3, 2, 4}, {1, 1, 2}, {1, 2, 1}, {1, 0, 0}, 4, 2, 16, 8,
                OPENNA_F16)};
  for (const NaCase& c : cases) {
    const std::string tile = c.problem.rank == 2 ? "TQ0=4,TQ1=4,TQ2=1" : "TQ0=2,TQ1=2,TQ2=4";
    for (int vw : {1, 2, 4, 8}) {
      const Config k = Config::parse("FORM=1," + tile + ",TK=8,VW=" + std::to_string(vw));
      SCOPED_TRACE(c.name() + " " + k.str());
      check_forward(c, "fused", &k);
    }
    for (const char* dq : {"DQ=0", "DQ=1", "DQ=1,DQC=0"}) {
      const Config k = Config::parse("FORM=1," + tile + ",TK=8,VW=1," + dq);
      SCOPED_TRACE(c.name() + " " + k.str());
      check_backward(c, "fused", &k);
    }
  }
}

// A NaN in one query row makes that row's output and lse NaN and leaves every other row
// finite, through the default configuration of the device (on CPUs the lanes form, with its own
// exp2 and log2): no step of the softmax may drop a NaN or turn it into a number.
TEST(FusedForward, NanQueryRowStaysNan) {
  const NaCase c = make_case(2, {6, 7}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, 1, 1, 32, 32, OPENNA_F32);
  Context& ctx = test_context();
  const Problem p = normalize(&c.problem);
  Selection s;
  s.variant = find_variant("fused");
  s.config = s.variant->default_config(p, ctx.device(), Pass::Forward);
  s.name = s.variant->name(p, s.config, Pass::Forward);
  CaseData data = make_inputs(c);
  const int nan_row = 17, hd = 32, rows = 6 * 7;
  data.qd[nan_row * hd + 3] = std::numeric_limits<double>::quiet_NaN();
  data.q = to_storage(data.qd, OPENNA_F32);
  DeviceCase dc(ctx, c, data);
  const Outputs got = run_forward(ctx, s, dc);
  ASSERT_EQ(got.lse.size(), static_cast<std::size_t>(rows));
  for (int row = 0; row < rows; ++row) {
    EXPECT_EQ(std::isnan(got.lse[row]), row == nan_row) << "lse of row " << row << " " << s.name;
    int nans = 0;
    for (int d = 0; d < hd; ++d) nans += std::isnan(got.out[row * hd + d]) ? 1 : 0;
    EXPECT_EQ(nans, row == nan_row ? hd : 0) << "out of row " << row << " " << s.name;
  }
}

}  // namespace
}  // namespace openna::testing
