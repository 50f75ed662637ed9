// The tensor-core variant (mma) against the host reference. It runs only on NVIDIA GPUs of
// compute capability 8.0+ that pass the probe: elsewhere (CI on PoCL) every test here SKIPS with
// the reason, and MmaGate says loudly whether this device should have run them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <random>

#include "api_test_util.hpp"
#include "core/problem.hpp"
#include "core/tiling.hpp"
#include "test_util.hpp"
#include "testing/reference.hpp"
#include "tiers.hpp"
#include "variants/mma.hpp"

namespace openna::testing {
namespace {

bool capable_device() {
  const DeviceInfo& d = test_context().device();
  return d.is_gpu() && d.is_nvidia() && d.nv_cc_major >= 8;
}

// A case the mma variant takes: f16/bf16 (alternating), head dims rounded up to multiples of 8.
NaCase for_mma(NaCase c, int i) {
  c.problem.dtype = i % 2 ? OPENNA_BF16 : OPENNA_F16;
  auto up8 = [](int d) { return d <= 0 ? 0 : std::max(8, (d + 7) / 8 * 8); };
  c.problem.head_dim = up8(c.problem.head_dim);
  c.problem.head_dim_v = up8(c.problem.head_dim_v);
  return c;
}

std::vector<NaCase> mma_random(std::uint64_t seed, int n) {
  RandomCaseLimits lim;
  lim.max_head_dim = 128;
  std::vector<NaCase> v = random_cases(seed, n, lim);
  for (int i = 0; i < n; ++i) v[i] = for_mma(v[i], i);
  return v;
}

// The variant's candidate configurations for a case's problem whose parameter `key` is `value`.
std::vector<Config> candidates_with(const NaCase& c, Pass pass, const char* key, int value) {
  std::vector<Config> out;
  for (const Config& cfg :
       find_variant("mma")->candidates(normalize(&c.problem), test_context().device(), pass))
    if (cfg.get(key, 0) == value) out.push_back(cfg);
  return out;
}

#define SKIP_UNLESS_MMA(c, pass)                                                  \
  do {                                                                            \
    const std::string why_ = unsupported((c), "mma", (pass));                     \
    if (!why_.empty()) GTEST_SKIP() << "mma cannot run on this device: " << why_; \
  } while (0)

// On a capable NVIDIA device the probe must pass and the dispatcher must pick mma for f16 and
// bf16: a GPU run can never skip the suite silently.
TEST(MmaGate, SupportedOnCapableNvidia) {
  if (!capable_device()) {
    GTEST_SKIP() << "not an NVIDIA GPU of compute capability 8.0+: the mma suite skips here ("
                 << test_context().device().label() << ")";
  }
  EXPECT_EQ("", mma_probe(test_context(), OPENNA_F16));
  EXPECT_EQ("", mma_probe(test_context(), OPENNA_BF16));
  const NaCase c = make_case(2, {16, 16}, {7, 7}, {1, 1}, {1, 1}, {0, 0}, 2, 2, 64, 64, OPENNA_F16);
  EXPECT_EQ("", unsupported(c, "mma", Pass::Forward));
  const Selection s = select_variant(test_context().device(), normalize(&c.problem), Pass::Forward);
  EXPECT_STREQ("mma", s.variant->family());
}

class MmaRandom : public ::testing::TestWithParam<NaCase> {};

TEST_P(MmaRandom, Forward) {
  SKIP_UNLESS_MMA(GetParam(), Pass::Forward);
  check_forward(GetParam(), "mma");
}

INSTANTIATE_TEST_SUITE_P(Quick, MmaRandom,
                         ::testing::ValuesIn(mma_random(TIER(9090, 9091), TIER(120, 400))),
                         [](const auto& info) { return info.param.name(); });

std::vector<NaCase> adversarial() {
  std::vector<NaCase> v = {
      make_case(2, {13, 11}, {5, 3}, {1, 1}, {1, 1}, {0, 0}, 2, 2, 32, 32, OPENNA_F16),
      make_case(1, {67}, {9}, {1}, {1}, {0}, 1, 1, 16, 16, OPENNA_BF16),
      make_case(2, {7, 9}, {7, 9}, {1, 1}, {1, 1}, {0, 0}, 2, 1, 24, 24, OPENNA_F16),
      make_case(1, {150}, {150}, {1}, {1}, {0}, 3, 3, 8, 8, OPENNA_BF16),
      make_case(2, {17, 10}, {3, 2}, {1, 1}, {4, 3}, {0, 0}, 1, 1, 16, 16, OPENNA_F16),
      make_case(1, {23}, {4}, {2}, {5}, {0}, 2, 1, 32, 16, OPENNA_F16),
      make_case(2, {12, 10}, {4, 6}, {2, 3}, {1, 1}, {0, 0}, 2, 2, 16, 16, OPENNA_BF16),
      make_case(3, {6, 8, 7}, {4, 2, 6}, {4, 2, 3}, {1, 1, 1}, {0, 0, 0}, 1, 1, 8, 8, OPENNA_BF16),
      make_case(2, {15, 14}, {5, 3}, {2, 3}, {2, 3}, {1, 1}, 2, 1, 16, 16, OPENNA_F16),
      make_case(3, {9, 8, 10}, {3, 2, 4}, {3, 1, 2}, {2, 2, 1}, {1, 0, 1}, 1, 1, 16, 8, OPENNA_F16),
      make_case(1, {300}, {64}, {3}, {2}, {1}, 4, 2, 64, 64, OPENNA_F16),
      make_case(2, {9, 7}, {5, 3}, {1, 1}, {1, 1}, {0, 1}, 6, 2, 16, 16, OPENNA_F16, 3),
      make_case(2, {9, 7}, {5, 3}, {1, 1}, {1, 1}, {0, 0}, 4, 1, 16, 16, OPENNA_BF16, 2),
      make_case(3, {4, 5, 6}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1, 1, 16, 16, OPENNA_F16),
      // Large windows: most chunks unmasked (the fast path) next to masked edges.
      make_case(2, {40, 40}, {17, 17}, {1, 1}, {1, 1}, {0, 0}, 2, 2, 128, 128, OPENNA_F16),
      make_case(2, {40, 40}, {17, 17}, {1, 1}, {1, 1}, {0, 0}, 2, 2, 128, 128, OPENNA_BF16),
      make_case(3, {8, 16, 16}, {4, 8, 8}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 2, 2, 128, 128,
                OPENNA_F16),
      make_case(1, {1000}, {256}, {1}, {1}, {1}, 2, 2, 64, 64, OPENNA_F16),
      make_case(2, {64, 60}, {13, 13}, {1, 1}, {4, 4}, {0, 0}, 2, 2, 64, 64, OPENNA_BF16),
  };
  for (int hd : {8, 40, 80, 96, 128}) {
    v.push_back(make_case(2, {6, 5}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, 2, 1, hd, hd, OPENNA_F16));
  }
  v.push_back(make_case(1, {9}, {5}, {1}, {1}, {0}, 1, 1, 64, 128, OPENNA_BF16));
  return v;
}

class MmaAdversarial : public ::testing::TestWithParam<NaCase> {};

TEST_P(MmaAdversarial, Forward) {
  SKIP_UNLESS_MMA(GetParam(), Pass::Forward);
  check_forward(GetParam(), "mma");
}

INSTANTIATE_TEST_SUITE_P(Quick, MmaAdversarial, ::testing::ValuesIn(adversarial()),
                         [](const auto& info) { return info.param.name(); });

class MmaBwdRandom : public ::testing::TestWithParam<NaCase> {};

TEST_P(MmaBwdRandom, Backward) {
  SKIP_UNLESS_MMA(GetParam(), Pass::Backward);
  check_backward(GetParam(), "mma");
}

INSTANTIATE_TEST_SUITE_P(Quick, MmaBwdRandom,
                         ::testing::ValuesIn(mma_random(TIER(6060, 6061), TIER(80, 300))),
                         [](const auto& info) { return info.param.name(); });

TEST_P(MmaAdversarial, Backward) {
  SKIP_UNLESS_MMA(GetParam(), Pass::Backward);
  check_backward(GetParam(), "mma");
}

// Two runs of the mma backward give bitwise equal gradients (f16 and bf16, with GQA).
TEST(MmaBwdDeterminism, BitwiseEqual) {
  for (openna_dtype dt : {OPENNA_F16, OPENNA_BF16}) {
    const NaCase c =
        make_case(2, {21, 17}, {7, 5}, {2, 1}, {2, 1}, {0, 1}, 4, 2, 64, 32, dt, 2, 21 + dt);
    SKIP_UNLESS_MMA(c, Pass::Backward);
    const Selection s =
        select_variant(test_context().device(), normalize(&c.problem), Pass::Backward, "mma");
    expect_backward_repeatable(c, s, c.name());
  }
}

// Every tuning candidate must be correct (some of them, on a problem with every option).
TEST(MmaConfigs, CandidatesAreCorrect) {
  const NaCase c =
      make_case(2, {21, 19}, {9, 8}, {2, 1}, {2, 1}, {0, 1}, 2, 1, 64, 64, OPENNA_F16, 1, 99);
  SKIP_UNLESS_MMA(c, Pass::Forward);
  const auto all = find_variant("mma")->candidates(normalize(&c.problem), test_context().device(),
                                                   Pass::Forward);
  ASSERT_FALSE(all.empty());
  for (std::size_t i = 0; i < all.size(); i += 3) {
    SCOPED_TRACE(all[i].str());
    check_forward(c, "mma", &all[i]);
  }
  const auto bwd = find_variant("mma")->candidates(normalize(&c.problem), test_context().device(),
                                                   Pass::Backward);
  for (std::size_t i = 0; i < bwd.size(); i += 4) {
    SCOPED_TRACE("backward " + bwd[i].str());
    check_backward(c, "mma", &bwd[i]);
  }
}

// The WG tiles (the products by wgmma): on a device of compute capability 9.0 their probe must
// pass, and each random problem (every option) runs one of the forward's WG candidates and one of
// the backward's (WG dQ kernels, WG dK/dV kernels and split dV/dK kernels in turn) against the
// reference; elsewhere the test skips with the reason.
TEST(MmaConfigs, WarpgroupTilesAreCorrect) {
  const DeviceInfo& d = test_context().device();
  if (!capable_device() || d.nv_cc_major != 9 || d.nv_cc_minor != 0) {
    GTEST_SKIP() << "WG tiles need compute capability 9.0 (" << d.label() << ")";
  }
  ASSERT_EQ("", mma_probe(test_context(), OPENNA_F16, true));
  ASSERT_EQ("", mma_probe(test_context(), OPENNA_BF16, true));
  const std::vector<NaCase> cases = mma_random(TIER(4242, 4243), TIER(24, 80));
  int ran = 0, ran_bwd = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const NaCase& c = cases[i];
    if (!unsupported(c, "mma", Pass::Forward).empty()) continue;
    const std::vector<Config> wg = candidates_with(c, Pass::Forward, "WG", 1);
    ASSERT_FALSE(wg.empty()) << c.name();
    const Config& cfg = wg[i % wg.size()];
    SCOPED_TRACE(c.name() + " " + cfg.str());
    check_forward(c, "mma", &cfg);
    ++ran;
    if (!unsupported(c, "mma", Pass::Backward).empty()) continue;
    const char* key = i % 3 == 0 ? "WG" : i % 3 == 1 ? "KWG" : "KSPLIT";
    const std::vector<Config> bwg = candidates_with(c, Pass::Backward, key, 1);
    ASSERT_FALSE(bwg.empty()) << c.name() << " " << key;
    const Config& bcfg = bwg[(i / 3) % bwg.size()];
    SCOPED_TRACE("backward " + bcfg.str());
    check_backward(c, "mma", &bcfg);
    ++ran_bwd;
  }
  EXPECT_GT(ran, 0);
  EXPECT_GT(ran_bwd, 0);
}

// Tiles of more than 48 KB of local memory, which NVIDIA's driver runs on compute capability
// 9.0 although the device reports 48 KB (DeviceInfo::kernel_local_mem). Each random problem,
// its head dims raised to 72-128 (where the big tiles are the defaults), runs the forward and the
// backward with their defaults and with one of the tuner's candidates that do not fit 48 KB,
// against the reference. Skips where the device allows no more than it reports.
TEST(MmaConfigs, LargeLocalMemoryTilesAreCorrect) {
  const DeviceInfo& d = test_context().device();
  if (!capable_device() || d.kernel_local_mem() <= d.local_mem) {
    GTEST_SKIP() << "the device allows no more local memory than it reports (" << d.label() << ")";
  }
  const Variant* mma = find_variant("mma");
  std::vector<NaCase> cases = mma_random(TIER(6161, 6162), TIER(16, 48));
  int ran = 0, big = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    NaCase& c = cases[i];
    c.problem.head_dim = 72 + 8 * static_cast<int>(i % 8);
    c.problem.head_dim_v = i % 4 == 1 ? 128 : c.problem.head_dim;
    for (Pass pass : {Pass::Forward, Pass::Backward}) {
      if (!unsupported(c, "mma", pass).empty()) continue;
      const Problem p = normalize(&c.problem);
      std::vector<Config> over;
      for (const Config& k : mma->candidates(p, d, pass))
        if (mma_local_bytes(p, k, pass) > d.local_mem) over.push_back(k);
      SCOPED_TRACE(c.name());
      if (pass == Pass::Forward) {
        check_forward(c, "mma");
      } else {
        check_backward(c, "mma");
      }
      ++ran;
      if (over.empty()) continue;
      const Config& k = over[i % over.size()];
      SCOPED_TRACE(k.str());
      if (pass == Pass::Forward) {
        check_forward(c, "mma", &k);
      } else {
        check_backward(c, "mma", &k);
      }
      ++big;
    }
  }
  EXPECT_GT(ran, static_cast<int>(cases.size()) / 2);
  EXPECT_GT(big, ran / 2);
}

// Forward pipelines deeper than the tuner's candidates (5 to 8 stages: the kernels and the host
// allow 8, the candidates go to 4). Each random problem runs the forward with its default box and
// 5-8 stages of 16- or 32-key chunks, as mma.sync or (compute capability 9.0) WG tiles, against
// the reference; configurations the device does not fit are left out, and some must run.
TEST(MmaConfigs, DeepForwardPipelinesAreCorrect) {
  const DeviceInfo& d = test_context().device();
  if (!capable_device()) GTEST_SKIP() << "mma needs an NVIDIA GPU of compute capability 8.0";
  const Variant* mma = find_variant("mma");
  const bool hopper = d.nv_cc_major == 9 && d.nv_cc_minor == 0;
  const std::vector<NaCase> cases = mma_random(TIER(8383, 8384), TIER(16, 48));
  int ran = 0, wg = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const NaCase& c = cases[i];
    if (!unsupported(c, "mma", Pass::Forward).empty()) continue;
    const Problem p = normalize(&c.problem);
    Config k = mma->default_config(p, d, Pass::Forward);
    k.erase("ROT");
    k.erase("MAXREG");
    k.erase("PERSIST");
    k.set("STAGES", 5 + static_cast<int>(i % 4));
    k.set("TK", i % 3 == 0 ? 16 : 32);
    k.erase("WG");
    if (hopper && i % 2 == 1) k.set("WG", 1);
    if (!mma->config_error(p, d, Pass::Forward, k).empty()) continue;
    SCOPED_TRACE(c.name() + " " + k.str());
    check_forward(c, "mma", &k);
    ++ran;
    wg += k.get("WG", 0);
  }
  EXPECT_GT(ran, static_cast<int>(cases.size()) / 3);
  if (hopper) EXPECT_GT(wg, 0);
}

// The dQ kernel's deferred dQ product (DQDEFER=1: WG tiles of 3+ stages; each chunk's dQ
// product runs on into the next pass, the copies one chunk less far ahead). Each random problem
// runs the backward with its default configuration, DQDEFER=1 and 3 or 4 stages in the dQ
// kernel, against the reference.
TEST(MmaConfigs, DeferredDqIsCorrect) {
  const DeviceInfo& d = test_context().device();
  if (!capable_device() || d.nv_cc_major != 9 || d.nv_cc_minor != 0) {
    GTEST_SKIP() << "WG tiles need compute capability 9.0 (" << d.label() << ")";
  }
  const Variant* mma = find_variant("mma");
  const std::vector<NaCase> cases = mma_random(TIER(5151, 5152), TIER(16, 48));
  int ran = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const NaCase& c = cases[i];
    if (!unsupported(c, "mma", Pass::Backward).empty()) continue;
    const Problem p = normalize(&c.problem);
    Config k = mma->default_config(p, d, Pass::Backward);
    if (k.get("WG", 0) != 1) continue;
    k.set("STAGES", 3 + static_cast<int>(i % 2));
    k.set("DQDEFER", 1);
    if (!mma->config_error(p, d, Pass::Backward, k).empty()) continue;
    SCOPED_TRACE(c.name() + " " + k.str());
    check_backward(c, "mma", &k);
    ++ran;
  }
  EXPECT_GT(ran, static_cast<int>(cases.size()) / 3);
}

// The warp-specialized dK/dV kernel (KWS=1, 2, 3: a producer warpgroup beside the consumer warps,
// mbarriers instead of a barrier per chunk). Each random problem (every option, f16 and bf16,
// GQA/MQA's several query heads per kv head included: the chunk count runs on across heads) runs
// the backward with one of the tuner's KWS tiles, against the reference; some must have 8
// consumer warps (12-warp work-groups under the register file's cap).
TEST(MmaConfigs, WarpSpecializedDkdvIsCorrect) {
  const DeviceInfo& d = test_context().device();
  if (!capable_device() || d.nv_cc_major != 9 || d.nv_cc_minor != 0) {
    GTEST_SKIP() << "WG tiles need compute capability 9.0 (" << d.label() << ")";
  }
  const std::vector<NaCase> cases = mma_random(TIER(7272, 7273), TIER(24, 64));
  int ran = 0, wide = 0, deferred = 0, rotated = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const NaCase& c = cases[i];
    if (!unsupported(c, "mma", Pass::Backward).empty()) continue;
    std::vector<Config> ws;
    for (int form : {1, 2, 3}) {
      const std::vector<Config> f = candidates_with(c, Pass::Backward, "KWS", form);
      ws.insert(ws.end(), f.begin(), f.end());
    }
    if (ws.empty()) continue;  // e.g. head dim 128: K and V fragments do not fit registers
    // Every other problem takes the widest (8 consumer warps) where there is one, of KWS=1, 2
    // and 3 in turn.
    const int form = 1 + (i / 2) % 3;
    const auto widest = std::find_if(ws.begin(), ws.end(), [&](const Config& k) {
      return k.get("KNW", 0) == 8 && k.get("KWS", 0) == form;
    });
    const Config cfg = i % 2 == 0 && widest != ws.end() ? *widest : ws[(i / 2) % ws.size()];
    SCOPED_TRACE(c.name() + " " + cfg.str());
    check_backward(c, "mma", &cfg);
    ++ran;
    wide += cfg.get("KNW", 0) == 8;
    deferred += cfg.get("KWS", 0) == 2;
    rotated += cfg.get("KWS", 0) == 3;
  }
  EXPECT_GT(ran, static_cast<int>(cases.size()) / 3);
  EXPECT_GT(wide, 0);
  EXPECT_GT(deferred, 0);
  EXPECT_GT(rotated, 0);
}

// Work-groups of more than 8 warps under a register cap. NVIDIA's driver reports 256 work-items
// for every kernel, and the host takes the register file's bound instead
// (nvidia_work_group_bound). Each random problem runs the forward with 12 warps (MAXREG=168)
// or 16 (MAXREG=128), as mma.sync tiles or, on compute capability 9.0, every other one as WG
// tiles. Then the backward with a dQ tile and a dK/dV tile of 12 warps, against the reference.
// Problems whose wide tile does not fit the device's local memory are skipped; some must run.
TEST(MmaConfigs, WideWorkGroupsAreCorrect) {
  const DeviceInfo& d = test_context().device();
  if (!capable_device()) GTEST_SKIP() << "mma needs an NVIDIA GPU of compute capability 8.0";
  const Variant* mma = find_variant("mma");
  const bool hopper = d.nv_cc_major == 9 && d.nv_cc_minor == 0;
  const std::vector<NaCase> cases = mma_random(TIER(6161, 6162), TIER(16, 48));
  int ran = 0, ran_bwd = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const NaCase& c = cases[i];
    if (!unsupported(c, "mma", Pass::Forward).empty()) continue;
    const Problem p = normalize(&c.problem);
    const int nw = i % 2 ? 16 : 12;
    int tq[3];
    query_box(p, 16 * nw, tq);
    const std::string box = "TQ0=" + std::to_string(tq[0]) + ",TQ1=" + std::to_string(tq[1]) +
                            ",TQ2=" + std::to_string(tq[2]) + ",NW=" + std::to_string(nw);
    const std::string fwd = box + ",TK=32,STAGES=2,MAXREG=" + (nw == 16 ? "128" : "168") +
                            (hopper && i % 4 < 2 ? ",WG=1" : "");
    const Config f = Config::parse(fwd);
    if (mma->config_error(p, d, Pass::Forward, f).empty()) {
      SCOPED_TRACE(c.name() + " " + f.str());
      check_forward(c, "mma", &f);
      ++ran;
    }
    if (nw != 12 || !unsupported(c, "mma", Pass::Backward).empty()) continue;
    const Config b = Config::parse(box + ",TK=16,STAGES=1,MAXREG=168,KNW=12,KMW=1,KTK=16," +
                                   "KSTAGES=1,KMAXREG=168");
    if (!mma->config_error(p, d, Pass::Backward, b).empty()) continue;
    SCOPED_TRACE("backward " + c.name() + " " + b.str());
    check_backward(c, "mma", &b);
    ++ran_bwd;
  }
  EXPECT_GT(ran, 0);
  EXPECT_GT(ran_bwd, 0);
}

// The rotated WG forward (ROT=1: P V of chunk c - 1 runs during chunk c's softmax; ROT=2 at
// rank 1 or with TMA chunk boxes: the second warpgroup also half a pass behind the first) and the
// scale's two forms (a positive scale folded into the exponentials, SPOS; any other a separate
// multiply): each random problem (every option) runs one of the forward's ROT candidates against
// the reference, every third with its scale negative, which also runs its default tile forward
// and backward (the dQ kernel masks P after its exponential, for either sign of scale).
TEST(MmaConfigs, RotatedForwardIsCorrect) {
  const DeviceInfo& d = test_context().device();
  if (!capable_device() || d.nv_cc_major != 9 || d.nv_cc_minor != 0) {
    GTEST_SKIP() << "WG tiles need compute capability 9.0 (" << d.label() << ")";
  }
  ASSERT_EQ("", mma_probe(test_context(), OPENNA_F16, true));
  std::vector<NaCase> cases = mma_random(TIER(5151, 5152), TIER(18, 60));
  int ran = 0, negative = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    NaCase& c = cases[i];
    if (!unsupported(c, "mma", Pass::Forward).empty()) continue;
    if (i % 3 == 2) {
      c.problem.scale = c.problem.scale == 0.0f ? -0.125f : -c.problem.scale;
      SCOPED_TRACE(c.name() + " default tile, negative scale");
      check_forward(c, "mma", nullptr);
      if (unsupported(c, "mma", Pass::Backward).empty()) check_backward(c, "mma", nullptr);
      ++negative;
    }
    // ROT=2 (rank 1, or TMA chunk boxes) on every other problem that has it, ROT=1 elsewhere
    std::vector<Config> rot = candidates_with(c, Pass::Forward, "ROT", 2);
    if (rot.empty() || (i / 3) % 2 == 0) rot = candidates_with(c, Pass::Forward, "ROT", 1);
    ASSERT_FALSE(rot.empty()) << c.name();
    const Config& cfg = rot[i % rot.size()];
    SCOPED_TRACE(c.name() + " " + cfg.str());
    check_forward(c, "mma", &cfg);
    ++ran;
  }
  EXPECT_GT(ran, 0);
  EXPECT_GT(negative, 0);
}

// Skips a test on devices without the TMA (compute capability 9.0); there, the TMA probe must
// pass in f16 and bf16.
#define REQUIRE_TMA_DEVICE()                                                             \
  do {                                                                                   \
    const DeviceInfo& dev_ = test_context().device();                                    \
    if (!capable_device() || dev_.nv_cc_major != 9 || dev_.nv_cc_minor != 0) {           \
      GTEST_SKIP() << "TMA chunks need compute capability 9.0 (" << dev_.label() << ")"; \
    }                                                                                    \
    ASSERT_EQ("", mma_tma_probe(test_context(), OPENNA_F16));                            \
    ASSERT_EQ("", mma_tma_probe(test_context(), OPENNA_BF16));                           \
  } while (0)

// The TMA chunks (TMA=1: rank 1 without dilation, head dims 64, WG tiles; na_sm90.h): random
// rank-1 problems (lengths below, at and past a chunk, key boxes that end inside and past the
// sequence, causal or not, strides, GQA, batches of 2), f16 and bf16, each forward on the
// default tile with TMA=1, with the rotated loop of one warpgroup (ROT=1), or unrotated with 3
// stages of 32 keys, and each backward on its default tiles with TMA=1 (the dQ kernel) and
// KTMA=1 (the dK/dV kernel's producer); against the reference. Then the rows of a chunk past a
// tile's key box: V there holds +inf at one token, and the rows of the tiles whose key box does not
// hold it must equal the clean run's bit for bit (the box's last chunk loads the token, with P = 0
// for it, and the kernel zeroes those V rows: 0 * inf would be NaN). Inside a tile's key box a
// masked key's P is 0 as well, and there, as in the cp.async chunks, an infinite V row does reach
// the rows of that tile.
TEST(MmaConfigs, TmaChunksAreCorrect) {
  REQUIRE_TMA_DEVICE();
  const DeviceInfo& d = test_context().device();
  const Variant* mma = find_variant("mma");
  std::mt19937_64 rng(TIER(6161, 6162));
  static const int kLengths[] = {1, 17, 64, 100, 129, 300, 517};
  const int n = TIER(14, 42);
  for (int i = 0; i < n; ++i) {
    const int len = kLengths[rng() % 7];
    const int kernel = 1 + static_cast<int>(rng() % static_cast<unsigned>(std::min(len, 160)));
    const int stride = 1 + static_cast<int>(rng() % static_cast<unsigned>(std::min(kernel, 4)));
    const int heads = 1 + static_cast<int>(rng() % 4);
    const int heads_kv = heads % 2 == 0 && rng() % 2 ? heads / 2 : heads;
    const NaCase c =
        make_case(1, {len}, {kernel}, {stride}, {1}, {static_cast<int>(rng() % 2)}, heads, heads_kv,
                  64, 64, i % 2 ? OPENNA_BF16 : OPENNA_F16, 1 + i % 2, 7000 + i);
    const Problem p = normalize(&c.problem);
    Config fwd = mma->default_config(p, d, Pass::Forward);
    ASSERT_EQ(2, fwd.get("ROT", 0)) << c.name();
    if (i % 3 == 1) fwd.set("ROT", 1);
    if (i % 3 == 2) {
      fwd.erase("ROT");
      fwd.set("STAGES", 3);
      fwd.set("TK", 32);
    }
    fwd.set("TMA", 1);
    {
      SCOPED_TRACE(c.name() + " " + fwd.str());
      check_forward(c, "mma", &fwd);
    }
    Config bwd = mma->default_config(p, d, Pass::Backward);
    bwd.set("TMA", 1);
    bwd.set("KTMA", 1);
    SCOPED_TRACE(c.name() + " " + bwd.str());
    check_backward(c, "mma", &bwd);
  }

  // +inf in V at token 150 of 300 (window 7): tile 0 (queries 0-127, key box 0-130) loads it in
  // its last chunk's rows past the box; tile 1 (queries 128-255) has it in its box; tile 2
  // (256-299, box 253-299) never loads it.
  for (openna_dtype dt : {OPENNA_F16, OPENNA_BF16}) {
    const NaCase c = make_case(1, {300}, {7}, {1}, {1}, {0}, 2, 2, 64, 64, dt, 1, 77);
    const Problem p = normalize(&c.problem);
    Config cfg = mma->default_config(p, d, Pass::Forward);
    cfg.set("TMA", 1);
    SCOPED_TRACE(c.name() + " " + cfg.str());
    const Selection sel{mma, cfg, "test", mma->name(p, cfg, Pass::Forward)};
    const CaseData clean = make_inputs(c);
    CaseData poisoned = clean;
    const std::uint16_t inf = dt == OPENNA_BF16 ? 0x7F80 : 0x7C00;
    for (int h = 0; h < 2; ++h)
      for (int e = 0; e < 64; ++e) std::memcpy(&poisoned.v[((150 * 2 + h) * 64 + e) * 2], &inf, 2);
    DeviceCase dc_clean(test_context(), c, clean), dc_inf(test_context(), c, poisoned);
    const Outputs a = run_forward(test_context(), sel, dc_clean);
    const Outputs b = run_forward(test_context(), sel, dc_inf);
    int checked = 0;
    for (int q = 0; q < 300; ++q) {
      if (q >= 128 && q < 256) continue;  // the tile whose key box holds token 150
      for (int h = 0; h < 2; ++h)
        for (int e = 0; e < 64; ++e) {
          const std::size_t at = (static_cast<std::size_t>(q) * 2 + h) * 64 + e;
          ASSERT_TRUE(std::isfinite(b.out[at])) << "query " << q << " head " << h;
          ASSERT_EQ(a.out[at], b.out[at]) << "query " << q << " head " << h;
          ++checked;
        }
    }
    EXPECT_EQ(172 * 2 * 64, checked);
  }
}

// The forward's TMA chunks at ranks 2 and 3 (boxes of keys, na_mma_fwd.cl's TMA_BOX): random
// problems at head dims 64 and 128 (every option, dilations 1-4, batches of 1-2, GQA, f16 and
// bf16, lengths below and past a chunk box) on WG tiles with TMA=1, 2-3 stages and 32- or 64-key
// chunks, unrotated, rotated (ROT=1) or in ping-pong (ROT=2), against the reference. Then +inf in
// V at tokens that chunk boxes load past their tile's key box (along axis 1, along axis 0, and
// past axis 0's end into the next batch): with each loop, the tiles whose key box does not hold
// a poisoned token must give bit-identical, finite outputs.
TEST(MmaConfigs, TmaBoxChunksAreCorrect) {
  REQUIRE_TMA_DEVICE();
  const DeviceInfo& d = test_context().device();
  const Variant* mma = find_variant("mma");
  std::mt19937_64 rng(TIER(6171, 6172));
  static const int kLengths[] = {1, 3, 7, 8, 12, 19, 33};
  const int n = TIER(16, 48);
  int ran = 0;
  for (int i = 0; i < n; ++i) {
    const int rank = 2 + i % 2;
    std::vector<int> L(rank), K(rank), S(rank), D(rank), C(rank);
    for (int a = 0; a < rank; ++a) {
      L[a] = kLengths[rng() % 7];
      D[a] = rng() % 3 == 0 ? 2 + static_cast<int>(rng() % 3) : 1;  // dilation 1-4
      K[a] = 1 + static_cast<int>(rng() % static_cast<unsigned>(std::min(L[a], 13)));
      K[a] = std::max(1, std::min(K[a], L[a] / D[a]));
      if (K[a] == 1 && L[a] < D[a]) D[a] = 1;
      S[a] = 1 + static_cast<int>(rng() % static_cast<unsigned>(std::min(K[a], 3)));
      C[a] = static_cast<int>(rng() % 4 == 0);
    }
    const int heads = 1 + static_cast<int>(rng() % 3);
    const int heads_kv = heads % 2 == 0 && rng() % 2 ? heads / 2 : heads;
    const int hd = (i / 2) % 2 ? 128 : 64;
    const NaCase c = make_case(rank, L, K, S, D, C, heads, heads_kv, hd, hd,
                               i % 3 ? OPENNA_F16 : OPENNA_BF16, 1 + (i / 4) % 2, 7100 + i);
    const Problem p = normalize(&c.problem);
    Config fwd = mma->default_config(p, d, Pass::Forward);
    fwd.erase("ROT");
    fwd.set("WG", 1);
    fwd.set("TMA", 1);
    fwd.set("STAGES", i % 3 == 2 ? 3 : 2);
    if (i % 5 == 1) fwd.set("TK", 32);
    if (i % 5 == 3) fwd.set("TK", 64);
    // Every fourth problem the rotated loop (ROT=1), every fourth two warpgroups in ping-pong
    // (ROT=2: 8 x 16 queries at rank 2, 4 x 4 x 8 at rank 3), both of 2 stages.
    if (i % 4 == 1 || i % 4 == 2) {
      fwd.set("STAGES", 2);
      fwd.set("ROT", i % 4);
    }
    if (i % 4 == 2) {
      const int tq[3] = {rank == 3 ? 4 : 8, rank == 3 ? 4 : 16, rank == 3 ? 8 : 1};
      for (int a = 0; a < 3; ++a) fwd.set("TQ" + std::to_string(a), tq[a]);
      fwd.set("NW", 8);
      fwd.set("MW", 1);
    }
    // (the default's persistent work-groups, PERSIST, where they apply: 2 stages, no rotation)
    if (fwd.get("ROT", 0) != 0 || fwd.get("STAGES", 2) != 2) fwd.erase("PERSIST");
    const std::string why = mma->config_error(p, d, Pass::Forward, fwd);
    if (!why.empty()) {
      ADD_FAILURE() << c.name() << " " << fwd.str() << ": " << why;
      continue;
    }
    SCOPED_TRACE(c.name() + " " + fwd.str());
    check_forward(c, "mma", &fwd);
    ++ran;
  }
  EXPECT_EQ(n, ran);

  // 2-D 24 x 40, kernel 5 x 7, 8 x 8 query tiles, 32-key chunks of 4 x 8 keys, batch 2. Axis 0:
  // tile 0 (queries 0-7) sees keys [0,10), visited as [0,12); tile 2 (16-23) sees [14,24),
  // visited as [14,26): two rows past the axis, the next batch's rows 0 and 1. Axis 1: tile 0
  // sees [0,11), visited as [0,16). Poisoned: (batch 0, 11, 13), loaded past the box by the
  // tiles (0, 0); (batch 1, 0, 13), loaded by batch 0's tiles (2, 0), (2, 1) and (2, 2).
  for (int hd : {64, 128}) {
    const openna_dtype dt = hd == 64 ? OPENNA_F16 : OPENNA_BF16;
    const NaCase c =
        make_case(2, {24, 40}, {5, 7}, {1, 1}, {1, 1}, {0, 0}, 2, 2, hd, hd, dt, 2, 78);
    const Problem p = normalize(&c.problem);
    const CaseData clean = make_inputs(c);
    CaseData poisoned = clean;
    const std::uint16_t inf = dt == OPENNA_BF16 ? 0x7F80 : 0x7C00;
    const int poison[2][3] = {{0, 11, 13}, {1, 0, 13}};  // batch, x0, x1
    for (const auto& at : poison)
      for (int h = 0; h < 2; ++h)
        for (int e = 0; e < hd; ++e) {
          const std::size_t tok = static_cast<std::size_t>(at[0]) * 960 + at[1] * 40 + at[2];
          std::memcpy(&poisoned.v[((tok * 2 + h) * hd + e) * 2], &inf, 2);
        }
    DeviceCase dc_clean(test_context(), c, clean), dc_inf(test_context(), c, poisoned);
    const std::size_t builds = test_context().descriptor_builds();
    // The unrotated loop, the rotated one (ROT=1), and two warpgroups of 8 x 16 queries in
    // ping-pong (ROT=2), whose second warpgroup zeroes chunk c - 1's V rows in pass c.
    for (const char* text : {"TQ0=8,TQ1=8,TQ2=1,NW=4,TK=32,STAGES=2,WG=1,TMA=1",
                             "TQ0=8,TQ1=8,TQ2=1,NW=4,TK=32,STAGES=2,WG=1,TMA=1,ROT=1",
                             "TQ0=8,TQ1=16,TQ2=1,NW=8,TK=32,STAGES=2,WG=1,TMA=1,ROT=2"}) {
      const Config cfg = Config::parse(text);
      const int tq1 = cfg.get("TQ1", 1);
      ASSERT_EQ("", mma->config_error(p, d, Pass::Forward, cfg));
      SCOPED_TRACE(c.name() + " " + cfg.str());
      const Selection sel{mma, cfg, "test", mma->name(p, cfg, Pass::Forward)};
      const std::size_t before = test_context().descriptor_builds();
      const Outputs a = run_forward(test_context(), sel, dc_clean);
      const Outputs b = run_forward(test_context(), sel, dc_inf);
      // Each pair of buffers has its maps built once per chunk box: at the first tile, and at the
      // 8 x 16 tile if chunk_box gives it other boxes; a second call on the first pair reuses them.
      const std::size_t after = test_context().descriptor_builds();
      if (tq1 == 8) {
        EXPECT_EQ(builds + 2, after);
      } else {
        EXPECT_LE(after, before + 2);
      }
      const Outputs a2 = run_forward(test_context(), sel, dc_clean);
      EXPECT_EQ(after, test_context().descriptor_builds());
      EXPECT_EQ(a.out, a2.out);
      int checked = 0;
      for (int bt = 0; bt < 2; ++bt)
        for (int x0 = 0; x0 < 24; ++x0)
          for (int x1 = 0; x1 < 40; ++x1) {
            const KeyRange r0 = tile_key_range(p.axis[0], tile_axis(p.axis[0], 8, x0 / 8));
            const KeyRange r1 = tile_key_range(p.axis[1], tile_axis(p.axis[1], tq1, x1 / tq1));
            bool holds = false;
            for (const auto& at : poison)
              holds |= at[0] == bt && at[1] >= r0.start && at[1] < r0.start + r0.count &&
                       at[2] >= r1.start && at[2] < r1.start + r1.count;
            if (holds) continue;
            for (int h = 0; h < 2; ++h)
              for (int e = 0; e < hd; ++e) {
                const std::size_t q = static_cast<std::size_t>(bt) * 960 + x0 * 40 + x1;
                const std::size_t at = (q * 2 + h) * hd + e;
                ASSERT_TRUE(std::isfinite(b.out[at]))
                    << "batch " << bt << " query " << x0 << "," << x1 << " head " << h;
                ASSERT_EQ(a.out[at], b.out[at]) << "batch " << bt << " query " << x0 << "," << x1;
                ++checked;
              }
          }
      // batch 0: the tiles holding (11, 13): axis-0 tiles 0 ([0,10): no) and 1 ([6,18): yes)
      // times axis-1 tiles 0-2 ([0,11), [5,19), [13,27): 1 and 2) = 8 x 16 queries; batch 1:
      // (0, 13) in axis-0 tile 0 ([0,10)) times axis-1 tiles 1 and 2: 8 x 16 queries. With 16
      // queries along axis 1, tiles 0 and 1 ([0,19), [13,35)) of 16 queries each hold it.
      EXPECT_EQ((2 * 960 - 2 * 8 * (tq1 == 8 ? 16 : 32)) * 2 * hd, checked);
    }
  }
}

// The test device's default forward configuration made the unrotated chunk-box forward of
// 2 stages (WG=1, TMA=1), whatever the default's own choice.
Config chunk_box_forward(const Problem& p) {
  Config fwd = find_variant("mma")->default_config(p, test_context().device(), Pass::Forward);
  fwd.erase("ROT");
  fwd.set("WG", 1);
  fwd.set("TMA", 1);
  fwd.set("STAGES", 2);
  return fwd;
}

// The persistent chunk-box forward (PERSIST=n: n work-groups a compute unit, each taking its
// first tile by its index and the others in order from the context's tile counter, and starting
// the next tile after its tile's last pass). Problems with several
// tiles per work-group even at PERSIST=1 (132 work-groups on an H100), tiles of different chunk
// counts in one work-group's walk (borders, causal axes), dilation groups of unequal lengths
// (tiles that are not live: 66 = 4 x 16 + 2 gives groups of 17 and 16 tokens, three 8-query
// tiles per group, the third empty in the short ones), GQA, batch 2-3, both head dims and both
// dtypes; each problem twice, with different work-group counts (PERSIST 1-3), in two rounds
// (the second on the context's tile counter as the first left it).
TEST(MmaConfigs, PersistentForwardIsCorrect) {
  REQUIRE_TMA_DEVICE();
  const DeviceInfo& d = test_context().device();
  const Variant* mma = find_variant("mma");
  struct Shape {
    std::vector<int> L, K, S, D, C;
    int heads, heads_kv, hd, batch;
    openna_dtype dt;
  };
  const std::vector<Shape> shapes = {
      {{66, 40}, {9, 7}, {1, 1}, {4, 1}, {0, 0}, 3, 3, 128, 2, OPENNA_BF16},
      {{64, 64}, {13, 13}, {2, 1}, {1, 1}, {1, 0}, 4, 2, 64, 1, OPENNA_F16},
      {{48, 56}, {17, 17}, {1, 1}, {1, 1}, {0, 0}, 2, 2, 128, 3, OPENNA_F16},
      {{66, 66}, {7, 13}, {1, 3}, {2, 4}, {0, 1}, 2, 1, 64, 2, OPENNA_BF16},
      {{12, 20, 24}, {5, 7, 9}, {1, 1, 1}, {1, 2, 1}, {0, 0, 0}, 2, 2, 128, 2, OPENNA_F16},
      {{10, 18, 32}, {3, 5, 15}, {1, 2, 1}, {1, 1, 1}, {1, 0, 0}, 4, 2, 64, 3, OPENNA_BF16},
      {{9, 16, 16}, {8, 16, 16}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 3, 3, 128, 1, OPENNA_BF16}};
  int ran = 0;
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      const Shape& sh = shapes[i];
      const int rank = static_cast<int>(sh.L.size());
      const NaCase c = make_case(rank, sh.L, sh.K, sh.S, sh.D, sh.C, sh.heads, sh.heads_kv, sh.hd,
                                 sh.hd, sh.dt, sh.batch, 7300 + static_cast<int>(i));
      const Problem p = normalize(&c.problem);
      Config fwd = chunk_box_forward(p);
      fwd.set("MW", 1);
      fwd.set("PERSIST", 1 + (static_cast<int>(i) + round) % 3);
      ASSERT_EQ("", mma->config_error(p, d, Pass::Forward, fwd)) << c.name() << " " << fwd.str();
      SCOPED_TRACE(c.name() + " " + fwd.str());
      check_forward(c, "mma", &fwd);
      ++ran;
    }
  }
  EXPECT_EQ(2 * static_cast<int>(shapes.size()), ran);
}

// The chunk-box forward's kernel defines other than their defaults (na_mma_fwd.cl: each was
// timed and lost, or is the default of other shapes), set through OPENNA_KERNEL_DEFINES: random
// rank-2 and rank-3 problems at head dims 64 and 128, with and without dilation, on the default
// unrotated WG tile with TMA=1, against the reference.
TEST(MmaConfigs, ForwardKernelDefinesAreCorrect) {
  REQUIRE_TMA_DEVICE();
  const DeviceInfo& d = test_context().device();
  const Variant* mma = find_variant("mma");
  static const char* kDefines[] = {"-DV_LATE=0",       "-DMASK_SPLIT=0",  "-DLATE_LOADS=0",
                                   "-DLAZY_RESCALE=0", "-DNEXT_BY_DIV=0", "-DNEXT_BY_DIV=1",
                                   "-DSTAGE_SHIFT=0",  "-DBOX_SHIFT=0",   "-DBOX_SHIFT=1"};
  std::mt19937_64 rng(TIER(6181, 6182));
  static const int kLengths[] = {5, 9, 16, 23, 33};
  int ran = 0;
  for (const char* defines : kDefines) {
    const openna_test::ScopedEnv env("OPENNA_KERNEL_DEFINES", defines);
    for (int i = 0; i < TIER(4, 8); ++i) {
      const int rank = 2 + i % 2;
      std::vector<int> L(rank), K(rank), S(rank), D(rank), C(rank);
      for (int a = 0; a < rank; ++a) {
        L[a] = kLengths[rng() % 5];
        D[a] = i % 4 >= 2 && rng() % 2 ? 2 + static_cast<int>(rng() % 2) : 1;
        K[a] = 1 + static_cast<int>(rng() % static_cast<unsigned>(std::min(L[a] / D[a], 9)));
        S[a] = 1 + static_cast<int>(rng() % static_cast<unsigned>(std::min(K[a], 2)));
        C[a] = static_cast<int>(rng() % 4 == 0);
      }
      const int hd = (i / 2) % 2 ? 128 : 64;
      const NaCase c = make_case(rank, L, K, S, D, C, 2, 2, hd, hd,
                                 i % 2 ? OPENNA_BF16 : OPENNA_F16, 1 + i % 2, 7200 + ran);
      const Problem p = normalize(&c.problem);
      const Config fwd = chunk_box_forward(p);
      ASSERT_EQ("", mma->config_error(p, d, Pass::Forward, fwd)) << c.name() << " " << fwd.str();
      SCOPED_TRACE(std::string(defines) + " " + c.name() + " " + fwd.str());
      check_forward(c, "mma", &fwd);
      ++ran;
    }
  }
  EXPECT_EQ(static_cast<int>(std::size(kDefines)) * TIER(4, 8), ran);
}

// The context's descriptor cache (the TMA's tensor maps, Context::cached_descriptors) on any
// device: a second call with the same buffers and key builds nothing and returns the same
// buffer; another key builds; once a buffer is released its entries go, and a call with a new
// buffer (whatever handle OpenCL gives it) builds again. (Counted in builds: entries of other
// tests' released buffers may go at any of these calls.)
TEST(DescriptorCache, KeptWhileTheirBuffersLive) {
  Context& ctx = test_context();
  int builds = 0;
  const auto build = [&](const cl::Buffer& out) {
    ++builds;
    cl::Event ev;
    const cl_uint pattern = 0x5a5a5a5au;
    ctx.queue().enqueueFillBuffer(out, pattern, 0, 512, nullptr, &ev);
    return ev;
  };
  cl::Buffer a = ctx.alloc(256), b = ctx.alloc(256);
  Events events;
  const cl::Buffer m1 = ctx.cached_descriptors(a(), b(), "key 1", 512, build, &events);
  EXPECT_EQ(1, builds);
  EXPECT_EQ(1u, events.size());
  const cl::Buffer m2 = ctx.cached_descriptors(a(), b(), "key 1", 512, build, &events);
  EXPECT_EQ(1, builds);
  EXPECT_EQ(1u, events.size());
  EXPECT_EQ(m1(), m2());
  const cl::Buffer m3 = ctx.cached_descriptors(a(), b(), "key 2", 512, build, &events);
  EXPECT_EQ(2, builds);
  EXPECT_NE(m1(), m3());
  EXPECT_GE(ctx.descriptor_entries(), 2u);
  std::uint32_t word = 0;
  ctx.queue().enqueueReadBuffer(m3, CL_TRUE, 0, 4, &word);
  EXPECT_EQ(0x5a5a5a5au, word);
  // Release a (the kernels that used it are done): both entries go at the next call.
  ctx.finish();
  a = cl::Buffer();
  cl::Buffer a2 = ctx.alloc(256);
  ctx.cached_descriptors(a2(), b(), "key 1", 512, build, &events);
  EXPECT_EQ(3, builds);
  ctx.cached_descriptors(a2(), b(), "key 1", 512, build, &events);
  EXPECT_EQ(3, builds);
  ctx.cached_descriptors(a2(), b(), "key 2", 512, build, &events);
  EXPECT_EQ(4, builds);
}

// The dK/dV kernel's mma.sync step options: each random problem (every option, f16 and bf16)
// runs its default backward with one of KSEQ=1, KQSUB=16, both, or KVREG=0 on an mma.sync dK/dV
// tile (KWG=0), against the reference.
TEST(MmaConfigs, DkdvStepOptionsAreCorrect) {
  const DeviceInfo& d = test_context().device();
  if (!capable_device()) {
    GTEST_SKIP() << "not an NVIDIA GPU of compute capability 8.0+: the mma suite skips here ("
                 << d.label() << ")";
  }
  const char* options[] = {"KSEQ=1", "KQSUB=16", "KSEQ=1,KQSUB=16", "KVREG=0", "KSEQ=1,KVREG=0"};
  const std::vector<NaCase> cases = mma_random(TIER(5151, 5152), TIER(20, 60));
  int ran = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const NaCase& c = cases[i];
    if (!unsupported(c, "mma", Pass::Backward).empty()) continue;
    const Problem p = normalize(&c.problem);
    const Variant* mma = find_variant("mma");
    Config cfg = mma->default_config(p, d, Pass::Backward);
    cfg.set("KWG", 0);
    cfg.set("KSPLIT", 0);
    cfg.set("KWS", 0);  // (the warp-specialized default of ranks 1 and 2 is a WG tile)
    const Config extra = Config::parse(options[i % 5]);
    for (const auto& kv : extra.params) cfg.set(kv.first, kv.second);
    if (!mma->config_error(p, d, Pass::Backward, cfg).empty()) {
      cfg.set("KTK", 32);  // KQSUB=16 needs chunks of more than 16 rows to be a real step
      cfg.set("KSTAGES", 1);
    }
    const std::string why = mma->config_error(p, d, Pass::Backward, cfg);
    if (!why.empty()) continue;  // e.g. KVREG=0 over 48 KB at head dim 128 with 128-key tiles
    SCOPED_TRACE(c.name() + " " + cfg.str());
    check_backward(c, "mma", &cfg);
    ++ran;
  }
  EXPECT_GT(ran, static_cast<int>(cases.size()) / 3);
}

// The dK/dV kernel's chunk metadata in registers (KRMETA=1): each random problem (every option,
// f16 and bf16; a third of them at head dim 128, where it is the default) runs its default
// backward with an mma.sync dK/dV tile of 16 or 32 rows per chunk (lanes past 16 hold no row)
// and 1 or 2 stages, against the reference. Tiles that do not fit fall back to 1 stage, then 16
// rows, else the problem is passed over.
TEST(MmaConfigs, DkdvRegisterMetadataIsCorrect) {
  const DeviceInfo& d = test_context().device();
  if (!capable_device()) {
    GTEST_SKIP() << "not an NVIDIA GPU of compute capability 8.0+: the mma suite skips here ("
                 << d.label() << ")";
  }
  const std::vector<NaCase> cases = mma_random(TIER(5161, 5162), TIER(24, 64));
  int ran = 0, rows32 = 0, hd128 = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    NaCase c = cases[i];
    if (i % 3 == 0) c.problem.head_dim = c.problem.head_dim_v = 128;
    if (!unsupported(c, "mma", Pass::Backward).empty()) continue;
    const Problem p = normalize(&c.problem);
    const Variant* mma = find_variant("mma");
    Config cfg = mma->default_config(p, d, Pass::Backward);
    cfg.set("KWG", 0);
    cfg.set("KSPLIT", 0);
    cfg.set("KRMETA", 1);
    cfg.set("KTK", i % 2 ? 32 : 16);
    cfg.set("KSTAGES", i % 4 < 2 ? 1 : 2);
    const auto fits = [&] { return mma->config_error(p, d, Pass::Backward, cfg).empty(); };
    if (!fits()) cfg.set("KSTAGES", 1);
    if (!fits()) cfg.set("KTK", 16);
    if (!fits()) continue;
    SCOPED_TRACE(c.name() + " " + cfg.str());
    check_backward(c, "mma", &cfg);
    ++ran;
    rows32 += cfg.get("KTK", 0) == 32;
    hd128 += c.problem.head_dim == 128;
  }
  EXPECT_GT(ran, static_cast<int>(cases.size()) / 2);
  EXPECT_GT(rows32, 0);
  EXPECT_GT(hd128, 0);
}

// D from the D pass (DQD=0) instead of the dQ kernel (the default, which the random suite
// runs): random problems of every option, f16 and bf16, against the reference.
TEST(MmaConfigs, DPassOptionIsCorrect) {
  const DeviceInfo& d = test_context().device();
  if (!capable_device()) {
    GTEST_SKIP() << "not an NVIDIA GPU of compute capability 8.0+: the mma suite skips here ("
                 << d.label() << ")";
  }
  const std::vector<NaCase> cases = mma_random(TIER(6161, 6162), TIER(10, 40));
  int ran = 0;
  for (const NaCase& c : cases) {
    if (!unsupported(c, "mma", Pass::Backward).empty()) continue;
    const Problem p = normalize(&c.problem);
    Config cfg = find_variant("mma")->default_config(p, d, Pass::Backward);
    cfg.set("DQD", 0);
    SCOPED_TRACE(c.name() + " " + cfg.str());
    check_backward(c, "mma", &cfg);
    ++ran;
  }
  EXPECT_GT(ran, static_cast<int>(cases.size()) / 3);
}

// The configuration logic needs no GPU: a synthetic H100 description (48 KB of local memory
// reported, 227 KB for a kernel's static arrays at compute capability 9.0, 1024 work-items) checks
// defaults, candidates and rejections here, so CI covers them too.
DeviceInfo synthetic_h100(int cc_major = 9) {
  DeviceInfo d;
  d.name = "NVIDIA H100 80GB HBM3";
  d.vendor = "NVIDIA Corporation";
  d.driver_version = "580.159.04";
  d.type = CL_DEVICE_TYPE_GPU;
  d.local_mem = 48 * 1024;
  d.max_work_group_size = 1024;
  d.nv_cc_major = cc_major;
  d.nv_cc_minor = 0;
  return d;
}

Problem preset_like(int rank, std::vector<int> L, std::vector<int> K, int causal, int hd,
                    openna_dtype dt) {
  const std::vector<int> ones(rank, 1), c(rank, causal);
  NaCase nc = make_case(rank, L, K, ones, ones, c, 2, 2, hd, hd, dt);
  return normalize(&nc.problem);
}

TEST(MmaHostConfig, DefaultsAndCandidatesFitAnH100) {
  const DeviceInfo dev = synthetic_h100();
  const Variant* mma = find_variant("mma");
  ASSERT_NE(nullptr, mma);
  const std::vector<Problem> problems = {
      preset_like(2, {64, 64}, {17, 17}, 0, 128, OPENNA_F16),
      preset_like(2, {128, 128}, {13, 13}, 0, 64, OPENNA_BF16),
      preset_like(3, {16, 32, 32}, {8, 16, 16}, 0, 128, OPENNA_F16),
      preset_like(1, {4096}, {2048}, 1, 64, OPENNA_F16),
      preset_like(1, {4096}, {512}, 0, 128, OPENNA_BF16),  // rank 1 at hd 128: stages fall back
      preset_like(2, {20, 20}, {5, 5}, 0, 16, OPENNA_F16)};
  for (const Problem& p : problems)
    for (Pass pass : {Pass::Forward, Pass::Backward}) {
      const Config def = mma->default_config(p, dev, pass);
      SCOPED_TRACE(def.str());
      EXPECT_EQ("", mma->config_error(p, dev, pass, def));
      EXPECT_EQ("", mma->unsupported_reason(p, dev, pass));
      const auto cands = mma->candidates(p, dev, pass);
      ASSERT_FALSE(cands.empty());
      EXPECT_NE(cands.end(), std::find(cands.begin(), cands.end(), def))
          << "the tuner tries the default too";
      bool two_blocks = false, three_stages = false;
      for (const Config& c : cands) {
        EXPECT_EQ("", mma->config_error(p, dev, pass, c)) << c.str();
        two_blocks |= c.get("MW", 1) == 2;
        three_stages |= c.get("STAGES", 2) == 3;
      }
      if (p.head_dim <= 64) {
        EXPECT_TRUE(two_blocks) << "MW 2 candidates for small head dims";
        EXPECT_TRUE(three_stages) << "3-stage candidates for small head dims";
      }
      // Without the 227 KB (compute capability 8.0: 48 KB) the defaults fit as well.
      const DeviceInfo a100 = synthetic_h100(8);
      EXPECT_EQ("", mma->config_error(p, a100, pass, mma->default_config(p, a100, pass)));
    }
  // At head dim 128 in ranks 2 and 3 the H100's defaults take more than 48 KB (session 15).
  const Problem video = problems[2], flux = problems[0];
  const Config vf = mma->default_config(video, dev, Pass::Forward);
  const Config vb = mma->default_config(video, dev, Pass::Backward);
  const Config ff = mma->default_config(flux, dev, Pass::Forward);
  const Config fb = mma->default_config(flux, dev, Pass::Backward);
  EXPECT_EQ("TQ0=1,TQ1=8,TQ2=8,NW=4,TK=64,STAGES=2,MAXREG=168,WG=1,TMA=1", vf.str());
  EXPECT_EQ(
      "TQ0=4,TQ1=4,TQ2=8,NW=8,TK=32,STAGES=3,WG=1,DQDEFER=1,KNW=8,KMW=1,KTK=32,KSTAGES=2,"
      "KRMETA=1,KSEQ=1",
      vb.str());
  EXPECT_EQ("TQ0=8,TQ1=8,TQ2=1,NW=4,TK=64,STAGES=2,MAXREG=168,WG=1,TMA=1,PERSIST=3", ff.str());
  EXPECT_EQ(
      "TQ0=8,TQ1=16,TQ2=1,NW=8,TK=32,STAGES=3,WG=1,DQDEFER=1,KNW=4,KMW=1,KTK=32,KSTAGES=2,"
      "KRMETA=1,KSEQ=1",
      fb.str());
  EXPECT_GT(mma_local_bytes(video, vf, Pass::Forward), 49152u) << vf.str();
  EXPECT_GT(mma_local_bytes(video, vb, Pass::Backward), 49152u) << vb.str();
  EXPECT_GT(mma_local_bytes(flux, ff, Pass::Forward), 49152u) << ff.str();
  EXPECT_GT(mma_local_bytes(flux, fb, Pass::Backward), 49152u) << fb.str();
}

// The chunk-box forward's default tile and boxes (tma_box_tile, chunk_box) are the simulator's
// best: checked tile by tile (simulate_box_tiles) against every query tile of powers of two with
// the default's rows and every chunk box of its keys whose fastest used axis is a multiple of 8;
// and the presets' attainable speedups are the documented ones (docs/PERFORMANCE.md, session 20).
TEST(MmaHostConfig, ChunkBoxTilesAreTheSimulatorsBest) {
  const Variant* mma = find_variant("mma");
  const DeviceInfo dev = synthetic_h100(9);
  struct Case {
    Problem p;
    double attainable;
  };
  NaCase dil = make_case(2, {128, 128}, {13, 13}, {1, 1}, {4, 4}, {0, 0}, 2, 2, 64, 64, OPENNA_F16);
  NaCase odd = make_case(3, {9, 20, 40}, {3, 7, 9}, {1, 2, 1}, {2, 1, 1}, {1, 0, 0}, 2, 2, 128, 128,
                         OPENNA_BF16);
  const Case cases[] = {{preset_like(2, {64, 64}, {17, 17}, 0, 128, OPENNA_F16), 7.11},
                        {preset_like(2, {128, 128}, {13, 13}, 0, 64, OPENNA_F16), 37.93},
                        {normalize(&dil.problem), 42.67},
                        {preset_like(3, {16, 32, 32}, {8, 16, 16}, 0, 128, OPENNA_F16), 5.25},
                        {normalize(&odd.problem), 0}};
  for (const Case& k : cases) {
    const Problem& p = k.p;
    SCOPED_TRACE(p.describe());
    const Config def = mma->default_config(p, dev, Pass::Forward);
    ASSERT_EQ(1, def.get("TMA", 0)) << def.str();
    const SimResult s = mma->simulate(p, def);
    if (k.attainable > 0) EXPECT_NEAR(k.attainable, s.attainable_speedup(), 0.005);
    const int rows = 64, tk = def.get("TK", 0);
    ASSERT_EQ(rows, def.get("TQ0", 1) * def.get("TQ1", 1) * def.get("TQ2", 1));
    int tried = 0;
    for (int a = 1; a <= rows; a *= 2)
      for (int b = 1; a * b <= rows; b *= 2) {
        const int tq[3] = {a, p.rank == 3 ? b : rows / a, p.rank == 3 ? rows / (a * b) : 1};
        if (p.rank == 2 && b > 1) continue;
        for (int k0 = 1; k0 <= tk; k0 *= 2)
          for (int k1 = 1; k0 * k1 <= tk; k1 *= 2) {
            const int kb[3] = {k0, p.rank == 3 ? k1 : tk / k0, p.rank == 3 ? tk / (k0 * k1) : 1};
            if ((p.rank == 2 && k1 > 1) || kb[p.rank - 1] % 8 != 0) continue;
            ++tried;
            EXPECT_LE(s.computed, simulate_box_tiles(p, tq, tk, kb).computed + 0.5)
                << "tile " << tq[0] << "x" << tq[1] << "x" << tq[2] << ", boxes " << kb[0] << "x"
                << kb[1] << "x" << kb[2] << " compute less than " << def.str();
          }
      }
    EXPECT_GT(tried, 3);
  }
}

// The chunk-box forward's default is persistent where its tiles visit 16 chunks or fewer on
// average: PERSIST=3 at head dim 128 (three work-groups an SM under the 168-register cap;
// flux-2d's 8x8 tiles visit 9), PERSIST=4 with a 128-register cap at head dim 64 (vision-2d's
// 6.75); not video-3d (48.75); never in the backward.
TEST(MmaHostConfig, PersistentWhereTilesVisitFewChunks) {
  const Variant* mma = find_variant("mma");
  const DeviceInfo dev = synthetic_h100(9);
  const Problem flux = preset_like(2, {64, 64}, {17, 17}, 0, 128, OPENNA_F16);
  const Config def = mma->default_config(flux, dev, Pass::Forward);
  EXPECT_EQ(3, def.get("PERSIST", 0)) << def.str();
  EXPECT_NEAR(9.0, mma->simulate(flux, def).kv_chunks_per_tile, 1e-9);
  EXPECT_EQ(-1, mma->default_config(flux, dev, Pass::Backward).get("PERSIST", -1));
  const Problem video = preset_like(3, {16, 32, 32}, {8, 16, 16}, 0, 128, OPENNA_BF16);
  const Config vc = mma->default_config(video, dev, Pass::Forward);
  EXPECT_EQ(0, vc.get("PERSIST", 0)) << vc.str();
  EXPECT_EQ(1, vc.get("TMA", 0)) << vc.str();
  for (const Problem& p : {preset_like(2, {128, 128}, {13, 13}, 0, 64, OPENNA_F16),
                           preset_like(2, {64, 64}, {17, 17}, 0, 64, OPENNA_BF16)}) {
    const Config c = mma->default_config(p, dev, Pass::Forward);
    EXPECT_EQ(4, c.get("PERSIST", 0)) << p.describe() << " " << c.str();
    EXPECT_EQ(128, c.get("MAXREG", 0)) << p.describe() << " " << c.str();
    EXPECT_EQ("", mma->config_error(p, dev, Pass::Forward, c)) << c.str();
    // the tuner's persistent candidate is the default itself, in any key order (timed once)
    const auto same = [&](const Config& x) {
      auto a = x.params, b = c.params;
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      return a == b;
    };
    const std::vector<Config> cs = mma->candidates(p, dev, Pass::Forward);
    EXPECT_EQ(1, std::count_if(cs.begin(), cs.end(), same)) << p.describe() << " " << c.str();
  }
  // 33x33 windows on 64x64 (8x8 tiles: 25 chunks) are past the bound.
  const Problem wide = preset_like(2, {64, 64}, {33, 33}, 0, 128, OPENNA_F16);
  EXPECT_EQ(0, mma->default_config(wide, dev, Pass::Forward).get("PERSIST", 0));
  // The tuner's candidates hold the persistent form of the default's tile.
  const std::vector<Config> cands = mma->candidates(flux, dev, Pass::Forward);
  Config plain = def;
  plain.erase("PERSIST");
  EXPECT_EQ(1, std::count(cands.begin(), cands.end(), def)) << def.str();
  EXPECT_NE(cands.end(), std::find(cands.begin(), cands.end(), plain));
}

// On compute capability 9.0 the forward's default is a WG tile (wgmma) at head dims up to 64 in
// rank 1 (with TMA chunks at head dim 64 without dilation) and at ranks 2 and 3 where TMA chunk
// boxes apply (equal head dims of 64 or 128), and the backward's dQ kernel is a WG tile on every
// preset while its dK/dV kernel stays on its mma.sync tile; compute capability 8.0 gets no WG
// tile.
TEST(MmaHostConfig, WarpgroupDefaultsOnlyOnHopper) {
  const Variant* mma = find_variant("mma");
  const Problem long1d = preset_like(1, {4096}, {2048}, 1, 64, OPENNA_F16);
  const Problem vision = preset_like(2, {128, 128}, {13, 13}, 0, 64, OPENNA_BF16);
  const Problem flux = preset_like(2, {64, 64}, {17, 17}, 0, 128, OPENNA_F16);
  const Problem video = preset_like(3, {16, 32, 32}, {8, 16, 16}, 0, 128, OPENNA_F16);
  EXPECT_EQ(1, mma->default_config(long1d, synthetic_h100(9), Pass::Forward).get("WG", 0));
  EXPECT_EQ(0, mma->default_config(long1d, synthetic_h100(8), Pass::Forward).get("WG", 0));
  // The chunk-box forward's query tile is the simulator's pick (tma_box_tile): 16x4 on
  // vision-2d (with 4 x 16 key boxes), 1x8x8 on video-3d (8 x 1 x 8), 8x8 on flux-2d (8 x 8).
  EXPECT_EQ("TQ0=16,TQ1=4,TQ2=1,NW=4,TK=64,STAGES=2,MAXREG=128,WG=1,TMA=1,PERSIST=4",
            mma->default_config(vision, synthetic_h100(9), Pass::Forward).str());
  EXPECT_EQ("TQ0=1,TQ1=8,TQ2=8,NW=4,TK=64,STAGES=2,MAXREG=168,WG=1,TMA=1",
            mma->default_config(video, synthetic_h100(9), Pass::Forward).str());
  EXPECT_EQ(1, mma->default_config(flux, synthetic_h100(9), Pass::Forward).get("TMA", 0));
  const Problem vision96 = preset_like(2, {128, 128}, {13, 13}, 0, 96, OPENNA_F16);
  EXPECT_EQ(0, mma->default_config(vision96, synthetic_h100(9), Pass::Forward).get("WG", 0));
  EXPECT_EQ(0, mma->default_config(vision, synthetic_h100(8), Pass::Forward).get("WG", 0));
  EXPECT_EQ("TQ0=128,TQ1=1,TQ2=1,NW=8,TK=64,STAGES=2,MAXREG=128,WG=1,ROT=2,TMA=1",
            mma->default_config(long1d, synthetic_h100(9), Pass::Forward).str());
  // The TMA chunks only where a chunk is consecutive tokens of 128-byte rows: not with
  // dilation, not at head dim 32.
  NaCase dil = make_case(1, {4096}, {512}, {1}, {2}, {1}, 2, 2, 64, 64, OPENNA_F16);
  EXPECT_EQ(
      0,
      mma->default_config(normalize(&dil.problem), synthetic_h100(9), Pass::Forward).get("TMA", 0));
  EXPECT_EQ(0, mma->default_config(normalize(&dil.problem), synthetic_h100(9), Pass::Backward)
                   .get("TMA", 0));
  const Problem hd32 = preset_like(1, {4096}, {2048}, 1, 32, OPENNA_F16);
  EXPECT_EQ(1, mma->default_config(hd32, synthetic_h100(9), Pass::Forward).get("WG", 0));
  EXPECT_EQ(0, mma->default_config(hd32, synthetic_h100(9), Pass::Forward).get("TMA", 0));
  for (const Problem& p : {long1d, vision, flux, video}) {
    const Config c = mma->default_config(p, synthetic_h100(9), Pass::Backward);
    SCOPED_TRACE(c.str());
    EXPECT_EQ(1, c.get("WG", 0));
    // The dK/dV kernel: WG tiles (warp-specialized) at head dims up to 64 in ranks 1 and 2
    // (KWS=3 in rank 1, KWS=2 in rank 2).
    const bool ws = p.rank <= 2 && p.head_dim <= 64;
    EXPECT_EQ(ws ? 1 : 0, c.get("KWG", 0));
    EXPECT_EQ(ws ? (p.rank == 1 ? 3 : 2) : 0, c.get("KWS", 0));
    EXPECT_EQ("", mma->config_error(p, synthetic_h100(9), Pass::Backward, c));
    EXPECT_EQ(0, mma->default_config(p, synthetic_h100(8), Pass::Backward).get("WG", 0));
    // The tuner's dK/dV tiles: WG ones (which take no KRMETA or KSEQ, although the default
    // does), split ones, and mma.sync ones with and without KRMETA.
    int kwg = 0, split = 0, rmeta = 0, plain = 0;
    for (const Config& k : mma->candidates(p, synthetic_h100(9), Pass::Backward)) {
      if (!k.params.empty() && k.get("KNW", 0) == 0) continue;  // not a dK/dV tile of its own
      kwg += k.get("KWG", 0);
      split += k.get("KSPLIT", 0);
      rmeta += k.get("KRMETA", 0);
      plain += k.get("KWG", 0) == 0 && k.get("KRMETA", 0) == 0;
    }
    EXPECT_GT(kwg, 0);
    EXPECT_GT(split, 0);
    EXPECT_GT(rmeta, 0);
    EXPECT_GT(plain, 0);
  }
  // In rank 1 at head dims up to 64 the dK/dV kernel is the warp-specialized WG tile: two
  // consumer warpgroups of 64 keys, rotated (KWS=3), 32-row chunks, 8 stages, its own register
  // cap (168), and at head dim 64 the producer's TMA boxes (KTMA), as the dQ kernel's (TMA).
  EXPECT_EQ(
      "TQ0=128,TQ1=1,TQ2=1,NW=8,TK=32,STAGES=3,MAXREG=128,WG=1,TMA=1,KMAXREG=0,KNW=8,KMW=1,"
      "KTK=32,KSTAGES=8,KWG=1,KWS=3,KTMA=1",
      mma->default_config(long1d, synthetic_h100(9), Pass::Backward).str());
  EXPECT_NE(
      std::string::npos,
      mma->config_suffix(long1d, mma->default_config(long1d, synthetic_h100(9), Pass::Backward))
          .find("_kvw8_k32_s8_r168_wg_tma_ws3"));
  // Rank 2 at head dims up to 64 (vision-2d): the WS tile with 8 stages (74 KB) and KWS=2 (the
  // 128-key mma.sync tile of before remains the fallback where it does not fit).
  EXPECT_EQ("TQ0=8,TQ1=8,TQ2=1,NW=4,TK=32,STAGES=3,WG=1,KNW=8,KMW=1,KTK=32,KSTAGES=8,KWG=1,KWS=2",
            mma->default_config(vision, synthetic_h100(9), Pass::Backward).str());
  EXPECT_GT(mma_local_bytes(vision, mma->default_config(vision, synthetic_h100(9), Pass::Backward),
                            Pass::Backward),
            49152u);
  // The chunk metadata in registers, only where the dK/dV tile is the WG default's.
  EXPECT_EQ(1, mma->default_config(flux, synthetic_h100(9), Pass::Backward).get("KRMETA", 0));
  EXPECT_EQ(1, mma->default_config(video, synthetic_h100(9), Pass::Backward).get("KRMETA", 0));
  EXPECT_EQ(0, mma->default_config(flux, synthetic_h100(8), Pass::Backward).get("KRMETA", 0));
  // and at head dim 128 the products in sequence (KSEQ).
  EXPECT_EQ(1, mma->default_config(flux, synthetic_h100(9), Pass::Backward).get("KSEQ", 0));
  EXPECT_EQ(1, mma->default_config(video, synthetic_h100(9), Pass::Backward).get("KSEQ", 0));
  EXPECT_EQ(0, mma->default_config(vision, synthetic_h100(8), Pass::Backward).get("KSEQ", 0));
  // In rank 1, f16 only (long-1d-causal in bf16 keeps the tile it had).
  Problem long1d_bf16 = long1d;
  long1d_bf16.dtype = OPENNA_BF16;
  const Config lb = mma->default_config(long1d_bf16, synthetic_h100(9), Pass::Backward);
  EXPECT_EQ(0, lb.get("KRMETA", 0));
  EXPECT_EQ(0, lb.get("KSEQ", 0));
}

// The choices follow the probes' findings, recorded here as if the probes had run on a device
// of its own name (the real H100's entries stay untouched): a failed TMA probe leaves the TMA
// chunks out of the defaults, a failed WG probe the WG tiles, and a failed base probe makes
// mma unsupported, so the dispatcher takes the fused variant. Each dtype is probed alone.
TEST(MmaHostConfig, ProbeFindingsShapeTheDefaults) {
  const Variant* mma = find_variant("mma");
  DeviceInfo dev = synthetic_h100(9);
  dev.name = "probe-findings test device";
  const Problem long1d = preset_like(1, {4096}, {2048}, 1, 64, OPENNA_F16);
  Problem long1d_bf16 = long1d;
  long1d_bf16.dtype = OPENNA_BF16;
  EXPECT_EQ(1, mma->default_config(long1d, dev, Pass::Forward).get("TMA", 0));
  mma_probe_record_for_test(dev, OPENNA_F16, 2, "TMA probe: S[0][0] = 1, expected 2");
  const Config fwd = mma->default_config(long1d, dev, Pass::Forward);
  EXPECT_EQ(1, fwd.get("WG", 0));
  EXPECT_EQ(0, fwd.get("TMA", 0));
  EXPECT_EQ("", mma->config_error(long1d, dev, Pass::Forward, fwd));
  const Config bwd = mma->default_config(long1d, dev, Pass::Backward);
  EXPECT_EQ(0, bwd.get("TMA", 0));
  EXPECT_EQ(0, bwd.get("KTMA", 0));
  EXPECT_EQ(3, bwd.get("KWS", 0));
  EXPECT_EQ("", mma->config_error(long1d, dev, Pass::Backward, bwd));
  EXPECT_EQ(1, mma->default_config(long1d_bf16, dev, Pass::Forward).get("TMA", 0));
  // At rank 3 the forward keeps its WG tile without the chunk boxes.
  const Problem video = preset_like(3, {16, 32, 32}, {8, 16, 16}, 0, 128, OPENNA_F16);
  const Config vf = mma->default_config(video, dev, Pass::Forward);
  EXPECT_EQ("TQ0=4,TQ1=4,TQ2=8,NW=8,TK=64,STAGES=2,WG=1", vf.str());

  mma_probe_record_for_test(dev, OPENNA_F16, 1, "wgmma probe (B K-major): D[0][0] = 0");
  for (Pass pass : {Pass::Forward, Pass::Backward}) {
    const Config c = mma->default_config(long1d, dev, pass);
    EXPECT_EQ(0, c.get("WG", 0)) << c.str();
    EXPECT_EQ("", mma->config_error(long1d, dev, pass, c)) << c.str();
  }
  EXPECT_EQ("", mma->unsupported_reason(long1d, dev, Pass::Forward));
  EXPECT_EQ(1, mma->default_config(long1d_bf16, dev, Pass::Forward).get("WG", 0));

  mma_probe_record_for_test(dev, OPENNA_F16, 0, "shfl.sync.bfly probe failed");
  EXPECT_EQ("the mma probe failed on probe-findings test device: shfl.sync.bfly probe failed",
            mma->unsupported_reason(long1d, dev, Pass::Forward));
  EXPECT_STREQ("fused", select_variant(dev, long1d, Pass::Forward).variant->family());
  EXPECT_STREQ("mma", select_variant(dev, long1d_bf16, Pass::Forward).variant->family());
}

TEST(MmaHostConfig, RejectsBadConfigurations) {
  const DeviceInfo dev = synthetic_h100();
  const Variant* mma = find_variant("mma");
  const Problem p = preset_like(1, {4096}, {2048}, 1, 64, OPENNA_F16);
  const auto err = [&](const std::string& s, Pass pass = Pass::Forward) {
    return mma->config_error(p, dev, pass, Config::parse(s));
  };
  EXPECT_EQ("", err("TQ0=128,TQ1=1,TQ2=1,NW=4,MW=2,TK=64,STAGES=2"));
  EXPECT_NE(std::string::npos, err("TQ0=192,TQ1=1,TQ2=1,NW=4,MW=3,TK=64,STAGES=2").find("MW"));
  EXPECT_NE(std::string::npos, err("TQ0=64,TQ1=1,TQ2=1,NW=4,MW=2,TK=64,STAGES=2").find("16 * MW"));
  EXPECT_NE(std::string::npos, err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=9").find("STAGES"));
  EXPECT_NE(std::string::npos, err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=24,STAGES=1").find("TK"));
  EXPECT_NE(std::string::npos, err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,FOO=1").find("FOO"));
  // TMA: WG tiles of 2+ stages, rank 1 without dilation, head dims 64.
  const std::string wg = "TQ0=128,TQ1=1,TQ2=1,NW=8,TK=64,STAGES=2,MAXREG=128,WG=1";
  EXPECT_EQ("", err(wg + ",ROT=2,TMA=1"));
  EXPECT_EQ("",
            err("TQ0=128,TQ1=1,TQ2=1,NW=8,TK=32,STAGES=3,MAXREG=128,WG=1,TMA=1", Pass::Backward));
  EXPECT_NE(std::string::npos, err(wg + ",TMA=2").find("TMA must be 0 or 1, not 2"));
  const std::string dkdv =
      "TQ0=128,TQ1=1,TQ2=1,NW=8,TK=32,STAGES=3,MAXREG=128,WG=1,KMAXREG=0,"
      "KNW=8,KMW=1,KTK=32,KSTAGES=8,KWG=1";
  EXPECT_EQ("", err(dkdv + ",KWS=3,KTMA=1", Pass::Backward));
  EXPECT_NE(std::string::npos,
            err(dkdv + ",KWS=2,KTMA=1", Pass::Backward).find("KTMA needs KWS=3"));
  EXPECT_NE(std::string::npos, err(wg + ",KTMA=1").find("backward parameters"));
  EXPECT_NE(std::string::npos,
            err("TQ0=128,TQ1=1,TQ2=1,NW=4,MW=2,TK=64,STAGES=2,TMA=1").find("TMA needs WG=1"));
  // Ranks 2 and 3: the forward's chunks as boxes of keys (dilations up to 8, equal head dims 64
  // or 128); the backward's kernels take the TMA at rank 1 only.
  const Problem p2 = preset_like(2, {64, 64}, {9, 9}, 0, 64, OPENNA_F16);
  const std::string wg2 = "TQ0=16,TQ1=8,TQ2=1,NW=8,TK=64,STAGES=2,WG=1,TMA=1";
  EXPECT_EQ("", mma->config_error(p2, dev, Pass::Forward, Config::parse(wg2)));
  EXPECT_NE(std::string::npos, mma->config_error(p2, dev, Pass::Backward, Config::parse(wg2))
                                   .find("TMA at rank 2 is the forward's only"));
  // The rotated loops take the chunk boxes; ROT=2 past rank 1 needs them (its second warpgroup
  // reads chunk c - 1's metadata while the copies of chunk c + 1 go out).
  EXPECT_EQ("", mma->config_error(p2, dev, Pass::Forward, Config::parse(wg2 + ",ROT=1")));
  EXPECT_EQ("", mma->config_error(p2, dev, Pass::Forward, Config::parse(wg2 + ",ROT=2")));
  EXPECT_NE(std::string::npos,
            mma->config_error(p2, dev, Pass::Forward,
                              Config::parse("TQ0=16,TQ1=8,TQ2=1,NW=8,TK=64,STAGES=2,WG=1,ROT=2"))
                .find("ROT=2 at rank 2 needs TMA=1 (the chunk boxes)"));
  // Persistent work-groups: the chunk-box forward of one warpgroup and 2 stages only.
  const std::string box = "TQ0=8,TQ1=8,TQ2=1,NW=4,TK=64,STAGES=2,WG=1,TMA=1";
  const auto err2 = [&](const std::string& s, Pass pass = Pass::Forward) {
    return mma->config_error(p2, dev, pass, Config::parse(s));
  };
  EXPECT_EQ("", err2(box + ",PERSIST=3"));
  EXPECT_NE(std::string::npos, err2(box + ",PERSIST=9").find("PERSIST must be 0 or 1..8"));
  EXPECT_NE(std::string::npos, err2(box + ",PERSIST=-1").find("not -1"));
  EXPECT_NE(std::string::npos,
            err2("TQ0=8,TQ1=8,TQ2=1,NW=4,TK=64,STAGES=2,WG=1,PERSIST=3").find("TMA chunk boxes"));
  EXPECT_NE(std::string::npos, err(wg + ",TMA=1,PERSIST=3").find("TMA chunk boxes"));
  EXPECT_NE(std::string::npos, err2(wg2 + ",ROT=1,PERSIST=3").find("ROT=0, STAGES=2 and MW=1"));
  EXPECT_NE(std::string::npos,
            err2("TQ0=8,TQ1=8,TQ2=1,NW=4,TK=32,STAGES=3,WG=1,TMA=1,PERSIST=3").find("STAGES=2"));
  EXPECT_NE(std::string::npos,
            err2(box + ",PERSIST=3", Pass::Backward).find("PERSIST is a forward parameter"));
  NaCase dil = make_case(2, {64, 64}, {9, 9}, {1, 1}, {2, 2}, {0, 0}, 2, 2, 64, 64, OPENNA_F16);
  EXPECT_EQ("", mma->config_error(normalize(&dil.problem), dev, Pass::Forward, Config::parse(wg2)));
  dil = make_case(2, {64, 64}, {5, 5}, {1, 1}, {9, 1}, {0, 0}, 2, 2, 64, 64, OPENNA_F16);
  EXPECT_NE(std::string::npos,
            mma->config_error(normalize(&dil.problem), dev, Pass::Forward, Config::parse(wg2))
                .find("TMA needs dilations of 8 or less (the tensor map's element strides); axis "
                      "0 has 9"));
  dil = make_case(1, {4096}, {512}, {1}, {2}, {0}, 2, 2, 64, 64, OPENNA_F16);
  EXPECT_NE(std::string::npos, mma->config_error(normalize(&dil.problem), dev, Pass::Forward,
                                                 Config::parse(wg + ",TMA=1"))
                                   .find("TMA at rank 1 needs no dilation"));
  const Problem p3 = preset_like(3, {8, 16, 16}, {5, 7, 7}, 0, 96, OPENNA_F16);
  EXPECT_NE(std::string::npos,
            mma->config_error(p3, dev, Pass::Forward,
                              Config::parse("TQ0=2,TQ1=4,TQ2=16,NW=8,TK=64,STAGES=2,WG=1,TMA=1"))
                .find("TMA at rank 3 needs equal head dims of 64 or 128"));
  const Problem p32 = preset_like(1, {4096}, {2048}, 1, 32, OPENNA_F16);
  EXPECT_NE(std::string::npos,
            mma->config_error(p32, dev, Pass::Forward, Config::parse(wg + ",TMA=1"))
                .find("TMA needs head dims of 64 (128-byte rows); got 32/32"));
  // 4 stages of 128-key chunks at head dim 64 (4 * 128 * 2 * 72 * 2 bytes and 16 bytes of
  // metadata a key: 155648) fit the 227 KB a kernel may take on compute capability 9.0, not the
  // 48 KB of compute capability 8.0; 6 stages of 128 keys at head dim 128 fit neither.
  EXPECT_EQ("", err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=128,STAGES=4"));
  const std::string over48 =
      mma->config_error(p, synthetic_h100(8), Pass::Forward,
                        Config::parse("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=128,STAGES=4"));
  EXPECT_NE(std::string::npos, over48.find("over the device's 49152")) << over48;
  const Problem p128 = preset_like(1, {4096}, {512}, 0, 128, OPENNA_F16);
  const std::string over227 = mma->config_error(
      p128, dev, Pass::Forward, Config::parse("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=128,STAGES=6"));
  EXPECT_NE(std::string::npos, over227.find("over the device's 227344")) << over227;
  // Arrays of exactly 48 KB, 16 bytes over it with the driver's: refused on compute capability
  // 9.0 too (such kernels did not run; session 10). A dK/dV tile at head dim 16 of 256 keys and
  // 8 stages of 32 rows: (256 + 256) rows * 24 words * 4 bytes = 49152.
  const Problem p16 = preset_like(1, {4096}, {512}, 1, 16, OPENNA_F16);
  const std::string at48 =
      "TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KNW=8,KMW=2,KTK=32,KRMETA=1,KVREG=0";
  const Config band = Config::parse(at48 + ",KSTAGES=8");
  EXPECT_EQ(49152u + 16u, mma_local_bytes(p16, band, Pass::Backward));
  const std::string in_band = mma->config_error(p16, dev, Pass::Backward, band);
  EXPECT_NE(std::string::npos, in_band.find("within its 16 bytes of the reported 49152"))
      << in_band;
  EXPECT_EQ("", mma->config_error(p16, dev, Pass::Backward, Config::parse(at48 + ",KSTAGES=7")));
  // WG tiles: compute capability 9.0, whole warpgroups (in both kernels of the backward).
  EXPECT_EQ("", err("TQ0=128,TQ1=1,TQ2=1,NW=4,MW=2,TK=64,STAGES=2,WG=1"));
  EXPECT_EQ("", err("TQ0=128,TQ1=1,TQ2=1,NW=4,MW=2,TK=16,STAGES=2,WG=1"));
  EXPECT_EQ("", err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=64,STAGES=1,WG=1", Pass::Backward));
  EXPECT_EQ("", err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KTK=32,KWG=1", Pass::Backward));
  EXPECT_NE(std::string::npos, err("TQ0=64,TQ1=1,TQ2=1,NW=2,MW=2,TK=64,STAGES=2,WG=1").find("NW"));
  // More than 8 warps: only under a register cap the register file holds (65536 registers:
  // 12 warps at 168 a work-item, 16 at 128), and never more than 16.
  EXPECT_EQ("", err("TQ0=192,TQ1=1,TQ2=1,NW=12,TK=64,STAGES=2,MAXREG=168"));
  EXPECT_EQ("", err("TQ0=256,TQ1=1,TQ2=1,NW=16,TK=32,STAGES=2,MAXREG=128,WG=1"));
  EXPECT_NE(std::string::npos,
            err("TQ0=192,TQ1=1,TQ2=1,NW=12,TK=64,STAGES=2").find("NW=12 (more than 256"));
  EXPECT_NE(std::string::npos,
            err("TQ0=256,TQ1=1,TQ2=1,NW=16,TK=32,STAGES=2,MAXREG=168").find("65536 registers"));
  EXPECT_NE(std::string::npos, err("TQ0=272,TQ1=1,TQ2=1,NW=17,TK=32,STAGES=2").find("1..16"));
  EXPECT_EQ(384u, nvidia_work_group_bound(dev, 168));
  EXPECT_EQ(512u, nvidia_work_group_bound(dev, 128));
  EXPECT_EQ(256u, nvidia_work_group_bound(dev, 255));
  EXPECT_EQ(256u, nvidia_work_group_bound(dev, 0));
  // ... and its inverse, the register file's share of a work-item.
  EXPECT_EQ(168, nvidia_register_share(384));
  EXPECT_EQ(128, nvidia_register_share(512));
  EXPECT_EQ(248, nvidia_register_share(256));
  // ROT: the forward's WG tiles of 2 stages only.
  EXPECT_EQ("", err("TQ0=128,TQ1=1,TQ2=1,NW=8,TK=64,STAGES=2,MAXREG=128,WG=1,ROT=1"));
  EXPECT_NE(std::string::npos,
            err("TQ0=128,TQ1=1,TQ2=1,NW=8,TK=64,STAGES=2,ROT=1").find("ROT needs WG=1"));
  EXPECT_NE(std::string::npos,
            err("TQ0=128,TQ1=1,TQ2=1,NW=8,TK=32,STAGES=3,WG=1,ROT=1").find("STAGES=2"));
  EXPECT_NE(std::string::npos,
            err("TQ0=128,TQ1=1,TQ2=1,NW=8,TK=64,STAGES=2,WG=1,ROT=3").find("ROT must be"));
  EXPECT_EQ("", err("TQ0=128,TQ1=1,TQ2=1,NW=8,TK=64,STAGES=2,MAXREG=128,WG=1,ROT=2"));
  EXPECT_NE(std::string::npos,
            err("TQ0=128,TQ1=1,TQ2=1,NW=4,MW=2,TK=64,STAGES=2,WG=1,ROT=2").find("ROT=2 needs"));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=64,STAGES=2,WG=1,ROT=1", Pass::Backward)
                .find("ROT is a forward parameter"));
  EXPECT_NE(
      std::string::npos,
      err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KNW=2,KMW=2,KWG=1", Pass::Backward).find("KNW"));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KWG=1").find("backward parameters"));
  EXPECT_EQ("",
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KTK=32,KWG=1,KSPLIT=1", Pass::Backward));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KSPLIT=1", Pass::Backward).find("KWG"));
  // The mma.sync dK/dV kernel's steps: KQSUB divides KTK, KSEQ and KQSUB not on WG tiles.
  EXPECT_EQ("",
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KQSUB=16,KSEQ=1,KVREG=0", Pass::Backward));
  EXPECT_NE(
      std::string::npos,
      err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KQSUB=24", Pass::Backward).find("KQSUB=24"));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KTK=16,KQSUB=32", Pass::Backward)
                .find("KQSUB=32"));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KTK=32,KWG=1,KSEQ=1", Pass::Backward)
                .find("KSEQ"));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KSEQ=2", Pass::Backward).find("KSEQ"));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KVREG=3", Pass::Backward).find("KVREG"));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KSEQ=1").find("backward parameters"));
  // KWS: WG tiles of 2+ stages with K and V in registers, dK and dV in one kernel, up to 8
  // consumer warps; 8 of them (12 with the producer) take a cap of 168 registers.
  const std::string ws = "TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KNW=8,KTK=32,KSTAGES=4,KWG=1";
  EXPECT_EQ("", err(ws + ",KWS=1", Pass::Backward));
  EXPECT_NE(std::string::npos, mma->config_suffix(p, Config::parse(ws + ",KWS=1")).find("_r168"));
  EXPECT_NE(std::string::npos, mma->config_suffix(p, Config::parse(ws + ",KWS=1")).find("_ws"));
  EXPECT_EQ("", err(ws + ",KWS=2", Pass::Backward));
  EXPECT_EQ("", err(ws + ",KWS=3", Pass::Backward));
  // Config::erase removes a key's entry and leaves the order of the others.
  Config e = Config::parse("TQ0=64,NW=4,TK=32");
  e.erase("NW");
  EXPECT_EQ("TQ0=64,TK=32", e.str());
  e.erase("NW");
  EXPECT_EQ("TQ0=64,TK=32", e.str());
  // DQDEFER: the dQ kernel's WG tiles of 3+ stages, backward only.
  const std::string dq = "TQ0=128,TQ1=1,TQ2=1,NW=8,TK=32,STAGES=3,WG=1";
  EXPECT_EQ("", err(dq + ",DQDEFER=1", Pass::Backward));
  EXPECT_NE(std::string::npos,
            mma->config_suffix(p, Config::parse(dq + ",DQDEFER=1")).find("_defer"));
  EXPECT_NE(std::string::npos,
            err(dq + ",DQDEFER=1", Pass::Forward).find("DQDEFER is a backward parameter"));
  EXPECT_NE(std::string::npos,
            err(dq + ",DQDEFER=2", Pass::Backward).find("DQDEFER must be 0 or 1, not 2"));
  EXPECT_NE(std::string::npos,
            err("TQ0=128,TQ1=1,TQ2=1,NW=8,TK=32,STAGES=2,WG=1,DQDEFER=1", Pass::Backward)
                .find("DQDEFER=1 needs the dQ kernel's WG tiles (WG=1) of 3 or more stages"));
  EXPECT_NE(std::string::npos,
            err("TQ0=128,TQ1=1,TQ2=1,NW=8,TK=32,STAGES=3,DQDEFER=1", Pass::Backward)
                .find("DQDEFER=1 needs"));
  EXPECT_NE(std::string::npos, mma->config_suffix(p, Config::parse(ws + ",KWS=3")).find("_ws3"));
  EXPECT_NE(std::string::npos,
            err(ws + ",KWS=4", Pass::Backward).find("KWS must be 0, 1, 2 or 3, not 4"));
  for (const char* form : {"2", "3"}) {
    EXPECT_NE(std::string::npos,
              err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KNW=8,KTK=32,KSTAGES=2,KWG=1,KWS=" +
                      std::string(form),
                  Pass::Backward)
                  .find("KWS=" + std::string(form) + " needs KSTAGES of 3 or more, not 2"));
  }
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KSTAGES=2,KWS=1", Pass::Backward)
                .find("KWS needs KWG=1"));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KWG=1,KSTAGES=1,KWS=1", Pass::Backward)
                .find("KWS needs KSTAGES"));
  EXPECT_NE(std::string::npos, err(ws + ",KWS=1,KSPLIT=1", Pass::Backward).find("KSPLIT"));
  EXPECT_NE(std::string::npos,
            err(ws + ",KNW=12,KWS=1", Pass::Backward).find("up to 8 consumer warps (KNW), not 12"));
  EXPECT_NE(std::string::npos, err(ws + ",KWS=1,KVREG=0", Pass::Backward).find("registers"));
  EXPECT_NE(std::string::npos, err(ws + ",KWS=1", Pass::Forward).find("backward parameters"));
  // KVREG=0: the 128-key tile of head dim 64 and a 32-row chunk fit 48 KB without the
  // registers (36864 + 9216 + 1152 bytes).
  EXPECT_EQ("", err("TQ0=128,TQ1=1,TQ2=1,NW=8,TK=32,STAGES=1,KVREG=0", Pass::Backward));
  // KRMETA: mma.sync tiles of up to 32 rows per chunk.
  EXPECT_EQ("", err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KTK=32,KRMETA=1", Pass::Backward));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KTK=64,KRMETA=1", Pass::Backward)
                .find("KRMETA needs KTK <= 32"));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KTK=32,KWG=1,KRMETA=1", Pass::Backward)
                .find("KRMETA applies"));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KRMETA=2", Pass::Backward).find("KRMETA"));
  EXPECT_NE(std::string::npos,
            err("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KRMETA=1").find("backward parameters"));
  // The driver's 16 bytes: at head dim 64 a 128-key tile (36864 bytes padded) and a 32-row
  // chunk (9216) leave 3072 bytes, 1152 of them the metadata's at KRMETA=0; with the metadata in
  // registers a second 32-row stage is still over (36864 + 18432 + 16 > 49152) on compute
  // capability 8.0.
  EXPECT_NE(std::string::npos,
            mma->config_error(p, synthetic_h100(8), Pass::Backward,
                              Config::parse("TQ0=128,TQ1=1,TQ2=1,NW=8,TK=32,STAGES=1,KTK=32,"
                                            "KSTAGES=2,KRMETA=1,KVREG=0"))
                .find("16 of them the driver's"));
  EXPECT_NE(std::string::npos,
            mma->config_error(p, synthetic_h100(8), Pass::Backward,
                              Config::parse("TQ0=64,TQ1=1,TQ2=1,NW=4,TK=32,STAGES=1,KWG=1"))
                .find("KWG needs wgmma"));
  EXPECT_NE(std::string::npos,
            mma->config_error(p, synthetic_h100(8), Pass::Forward,
                              Config::parse("TQ0=128,TQ1=1,TQ2=1,NW=4,MW=2,TK=64,STAGES=2,WG=1"))
                .find("9.0"));
  // Gating on the device: compute capability below 8.0, f32, head dims not multiples of 8.
  EXPECT_NE(std::string::npos,
            mma->unsupported_reason(p, synthetic_h100(7), Pass::Forward).find("8.0"));
  const Problem f32 = preset_like(1, {256}, {32}, 0, 64, OPENNA_F32);
  EXPECT_NE(std::string::npos, mma->unsupported_reason(f32, dev, Pass::Forward).find("f16"));
  const Problem odd = preset_like(1, {256}, {32}, 0, 20, OPENNA_F16);
  EXPECT_NE(std::string::npos, mma->unsupported_reason(odd, dev, Pass::Forward).find("8"));
}

// The backward's dK/dV kernel with a tile of its own (K-prefixed parameters): checked on its
// own, forward-only configurations refuse them, and the variant's name tells them apart.
TEST(MmaHostConfig, DkdvTileOfItsOwn) {
  const DeviceInfo dev = synthetic_h100();
  const Variant* mma = find_variant("mma");
  const Problem p = preset_like(2, {64, 64}, {17, 17}, 0, 128, OPENNA_F16);
  const std::string base = "TQ0=8,TQ1=8,TQ2=1,NW=4,TK=16,STAGES=1";
  const auto err = [&](const std::string& extra, Pass pass = Pass::Backward) {
    return mma->config_error(p, dev, pass, Config::parse(base + extra));
  };
  EXPECT_EQ("", err(""));
  EXPECT_EQ("", err(",KNW=2,KTK=16,KSTAGES=3"));  // 32 keys: K/V tile and 3 chunks fit 48 KB
  EXPECT_EQ("", err(",KSTAGES=2"));               // 64 keys and two chunks: 52 KB, more than 48 KB
  EXPECT_NE(std::string::npos, err(",KNW=2,KTK=16,KSTAGES=3", Pass::Forward).find("backward"));
  EXPECT_NE(std::string::npos, err(",KTK=24").find("KTK"));
  EXPECT_NE(std::string::npos, err(",KNW=9").find("KNW"));
  EXPECT_NE(std::string::npos, err(",KNW=17").find("KNW outside 1..16"));
  EXPECT_NE(std::string::npos, err(",KMW=3").find("KMW"));
  EXPECT_NE(std::string::npos, err(",KSTAGES=9").find("KSTAGES"));
  // 64 resident keys at head dim 128 (35 KB) leave no room for a second 16-row chunk stage in
  // the 48 KB of compute capability 8.0.
  const std::string full =
      mma->config_error(p, synthetic_h100(8), Pass::Backward, Config::parse(base + ",KSTAGES=2"));
  EXPECT_NE(std::string::npos, full.find("dK/dV kernel")) << full;
  EXPECT_NE(std::string::npos, full.find("local memory")) << full;
  const Config own = Config::parse(base + ",KNW=2,KTK=16,KSTAGES=3");
  const std::string name = mma->name(p, own, Pass::Backward);
  EXPECT_NE(std::string::npos, name.find("_kvw2_k16_s3")) << name;
  EXPECT_NE(name, mma->name(p, Config::parse(base), Pass::Backward));
  // DQD: where D comes from (the dQ kernel by default, or the D pass), backward only, 0 or 1.
  EXPECT_EQ("", err(",DQD=0"));
  EXPECT_EQ("", err(",DQD=1"));
  EXPECT_NE(std::string::npos, err(",DQD=2").find("DQD must be 0 or 1, not 2"));
  EXPECT_NE(std::string::npos, err(",DQD=0", Pass::Forward).find("DQD is a backward parameter"));
  const std::string dpass = mma->name(p, Config::parse(base + ",DQD=0"), Pass::Backward);
  EXPECT_NE(std::string::npos, dpass.find("_dpass")) << dpass;
  EXPECT_EQ(mma->name(p, Config::parse(base + ",DQD=1"), Pass::Backward),
            mma->name(p, Config::parse(base), Pass::Backward));
  // The tuner's backward candidates include the dK/dV kernel's own tiles.
  const auto cands = mma->candidates(p, dev, Pass::Backward);
  EXPECT_NE(cands.end(), std::find_if(cands.begin(), cands.end(), [](const Config& c) {
              return c.get("KNW", 0) == 2 && c.get("KMW", 0) == 2;
            }));
}

}  // namespace
}  // namespace openna::testing
