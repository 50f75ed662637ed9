// The fused backward against the host reference (d_q, d_k, d_v from the reference's out and
// lse), on random problems covering every option and dtype and on adversarial cases; the
// determinism test (bitwise equal results of two runs, every dtype, with GQA); and the
// end-to-end gradient check of the fused backward against central finite differences of the
// fused forward.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/errors.hpp"
#include "core/problem.hpp"
#include "test_util.hpp"
#include "tiers.hpp"
#include "variants/fused.hpp"
#include "variants/variant.hpp"

namespace openna::testing {
namespace {

// A lanes-form backward configuration (what CPUs run) with the dQ path forced: DQ=1 the
// 5-product backward (dQ partials through the scratch buffer and the reduction kernel), DQ=0
// the 7-product one (its own dQ kernel). `tile` is "TQ0=..,TQ1=..,TQ2=.." for the rank.
Config lanes_config(const std::string& tile, int tk, int vw, int dq) {
  return Config::parse("FORM=1," + tile + ",TK=" + std::to_string(tk) +
                       ",VW=" + std::to_string(vw) + ",DQ=" + std::to_string(dq));
}

std::string lanes_tile(int rank) {
  return rank == 1 ? "TQ0=16,TQ1=1,TQ2=1" : rank == 2 ? "TQ0=4,TQ1=4,TQ2=1" : "TQ0=2,TQ1=2,TQ2=4";
}

// The D pass (every backward's first kernel) with each width it can run at: one work-item per
// row (CPUs), and 8, 16, 32 per row with the work-group tree (GPUs), in every dtype, and with
// 16-byte loads (2, 8, 32 per row; f16 and bf16), on a row count that leaves a partial
// work-group and a head_dim_v (40) that no width divides.
TEST(DeltaPass, EveryWidthMatchesTheReference) {
  Context& ctx = test_context();
  for (openna_dtype dt : {OPENNA_F32, OPENNA_F16, OPENNA_BF16}) {
    const NaCase a = make_case(2, {7, 5}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, 3, 1, 16, 40, dt, 2, 11);
    NaCase b = a;
    b.seed = 12;
    const CaseData da = make_inputs(a), db = make_inputs(b);
    const Problem p = normalize(&a.problem);
    const std::size_t rows = static_cast<std::size_t>(p.lse_elems());
    const int hdv = p.head_dim_v;
    for (int lv : {1, 8, 16, 32, 2 + 100, 8 + 100, 32 + 100}) {
      const int lanes = lv % 100, vec = lv > 100 ? 8 : 1;  // vec 8: 16-byte loads, 16-bit only
      if (lanes > 1 && ctx.device().max_work_group_size < 256) continue;
      SCOPED_TRACE(std::string(dtype_name(dt)) + " lanes " + std::to_string(lanes) + " vec " +
                   std::to_string(vec));
      cl::Buffer out(ctx.ocl_context(), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, da.d_out.size(),
                     const_cast<std::uint8_t*>(da.d_out.data()));
      cl::Buffer d_out(ctx.ocl_context(), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, db.d_out.size(),
                       const_cast<std::uint8_t*>(db.d_out.data()));
      if (vec == 8 && dt == OPENNA_F32) {  // 16-byte loads read 16-bit rows only
        EXPECT_THROW(launch_delta(ctx, p, out(), d_out(), "delta test", lanes, vec), Unsupported);
        continue;
      }
      const DeltaPass d = launch_delta(ctx, p, out(), d_out(), "delta test", lanes, vec);
      std::vector<float> got(rows);
      ctx.queue().enqueueReadBuffer(d.delta, CL_TRUE, 0, rows * sizeof(float), got.data());
      for (std::size_t r = 0; r < rows; ++r) {
        double want = 0, mag = 0;
        for (int i = 0; i < hdv; ++i) {
          want += da.d_outd[r * hdv + i] * db.d_outd[r * hdv + i];
          mag += std::fabs(da.d_outd[r * hdv + i] * db.d_outd[r * hdv + i]);
        }
        ASSERT_NEAR(got[r], want, 1e-5 * mag + 1e-30) << "row " << r;
      }
    }
  }
}

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

// The GPU's configuration with the 5-product backward (DQ=1: dQ partials from the dK/dV kernel
// through a scratch, na_dq_reduce.h), on one random problem in six in the quick tier (each
// compiles its own programs on PoCL; the adversarial problems below cover every option).
TEST_P(FusedBwdRandom, BackwardGpuFiveProducts) {
  if (TIER(GetParam().seed % 6 != 1, false)) {
    GTEST_SKIP() << "quick tier: one case in six runs the GPU configuration with 5 products";
  }
  Config c = gpu_config(GetParam(), "fused", Pass::Backward);
  c.set("DQ", 1);
  SCOPED_TRACE(c.str());
  check_backward(GetParam(), "fused", &c);
}

INSTANTIATE_TEST_SUITE_P(Quick, FusedBwdRandom,
                         ::testing::ValuesIn(random_cases(TIER(777, 778), TIER(50, 200),
                                                          tier_limits())),
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

TEST_P(FusedBwdAdversarial, BackwardGpuFiveProducts) {
  Config c = gpu_config(GetParam(), "fused", Pass::Backward);
  c.set("DQ", 1);
  SCOPED_TRACE(c.str());
  check_backward(GetParam(), "fused", &c);
}

INSTANTIATE_TEST_SUITE_P(Quick, FusedBwdAdversarial, ::testing::ValuesIn(adversarial()),
                         [](const auto& info) { return info.param.name(); });

// Both dQ paths of the lanes form on the adversarial problems (every option: ranks 1-3,
// odd/even kernels, stride, dilation, causal, GQA, head_dim_v != head_dim, f16/bf16), whatever
// the dispatcher would pick; plus 8-lane vectors and 4-key steps (the transposes' scalar path).
class FusedBwdLanesPaths : public ::testing::TestWithParam<NaCase> {};

TEST_P(FusedBwdLanesPaths, FiveProducts) {
  const Config c = lanes_config(lanes_tile(GetParam().problem.rank), 8, 16, 1);
  SCOPED_TRACE(c.str());
  check_backward(GetParam(), "fused", &c);
}

TEST_P(FusedBwdLanesPaths, SevenProducts) {
  const Config c = lanes_config(lanes_tile(GetParam().problem.rank), 8, 16, 0);
  SCOPED_TRACE(c.str());
  check_backward(GetParam(), "fused", &c);
}

TEST_P(FusedBwdLanesPaths, FiveProductsNarrow) {
  const int r = GetParam().problem.rank;
  const Config c = lanes_config(r == 1   ? "TQ0=8,TQ1=1,TQ2=1"
                                : r == 2 ? "TQ0=2,TQ1=4,TQ2=1"
                                         : "TQ0=2,TQ1=2,TQ2=2",
                                4, 8, 1);
  SCOPED_TRACE(c.str());
  check_backward(GetParam(), "fused", &c);
}

// The 5-product backward with its dQ partials summed over columns of key tiles on axis 0
// (DQC): 2 tiles per column (columns that end inside a dilation group, and columns cut short
// by the group's end), and the whole axis (DQC=0). DQC is a run-time argument, so these reuse
// FiveProducts' programs.
TEST_P(FusedBwdLanesPaths, FiveProductsColumns) {
  for (int dqc : {2, 0}) {
    const Config c =
        Config::parse(lanes_config(lanes_tile(GetParam().problem.rank), 8, 16, 1).str() +
                      ",DQC=" + std::to_string(dqc));
    SCOPED_TRACE(c.str());
    check_backward(GetParam(), "fused", &c);
  }
}

TEST_P(FusedBwdLanesPaths, FiveProductsColumnsNarrow) {
  const int r = GetParam().problem.rank;
  const Config c = Config::parse(lanes_config(r == 1   ? "TQ0=8,TQ1=1,TQ2=1"
                                              : r == 2 ? "TQ0=2,TQ1=4,TQ2=1"
                                                       : "TQ0=2,TQ1=2,TQ2=2",
                                              4, 8, 1)
                                     .str() +
                                 ",DQC=3");
  SCOPED_TRACE(c.str());
  check_backward(GetParam(), "fused", &c);
}

INSTANTIATE_TEST_SUITE_P(Quick, FusedBwdLanesPaths, ::testing::ValuesIn(adversarial()),
                         [](const auto& info) { return info.param.name(); });

// The CPU default picks the 5-product backward while its scratch is at most 16x Q, else the
// 7-product one, with columns of key tiles as long as 16 columns per compute unit allow
// (whole axis: DQC=0); the choice shows in the configuration and the variant's name.
TEST(FusedBwdLanesPaths, DefaultSelection) {
  DeviceInfo cpu = test_context().device();
  cpu.type = CL_DEVICE_TYPE_CPU;
  cpu.compute_units = 2;
  const Variant* fused = find_variant("fused");
  ASSERT_NE(fused, nullptr);
  // small-cpu: 4x4 key tiles, 7x7 windows: inverse boxes of 10x10; 32 whole-axis columns
  // (4 heads x 8 tiles on axis 1), scratch 2.5x Q.
  const NaCase small =
      make_case(2, {32, 32}, {7, 7}, {1, 1}, {1, 1}, {0, 0}, 4, 4, 32, 32, OPENNA_F32);
  const Problem ps = normalize(&small.problem);
  const Config cs = fused->default_config(ps, cpu, Pass::Backward);
  EXPECT_EQ(cs.get("DQ", -1), 1) << cs.str();
  EXPECT_EQ(cs.get("DQC", -1), 0) << cs.str();
  EXPECT_NE(fused->name(ps, cs, Pass::Backward).find("_5prod_colall"), std::string::npos);
  // 13x13 windows on 4x4 tiles: inverse boxes of 16x16, 16x Q with a slot per tile, 4x with
  // whole-axis columns.
  const NaCase big =
      make_case(2, {32, 32}, {13, 13}, {1, 1}, {1, 1}, {0, 0}, 4, 4, 64, 64, OPENNA_F32);
  const Problem pb = normalize(&big.problem);
  const Config cb = fused->default_config(pb, cpu, Pass::Backward);
  EXPECT_EQ(cb.get("DQ", -1), 1) << cb.str();
  EXPECT_EQ(cb.get("DQC", -1), 0) << cb.str();
  // Rank 1, 32 tiles of 16: 8 (batch, kv head) pairs need columns of 8 for 32 columns.
  const NaCase line = make_case(1, {512}, {7}, {1}, {1}, {0}, 4, 4, 32, 32, OPENNA_F32, 2);
  const Problem pl = normalize(&line.problem);
  const Config cl = fused->default_config(pl, cpu, Pass::Backward);
  EXPECT_EQ(cl.get("DQ", -1), 1) << cl.str();
  EXPECT_EQ(cl.get("DQC", -1), 8) << cl.str();
  // 3-D 13^3 windows on 2x2x4 tiles: (1 + 12/2)(1 + 12/4) = 28x Q on axes 1 and 2 alone: over
  // the bound at any column length.
  const NaCase cube = make_case(3, {16, 16, 16}, {13, 13, 13}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1,
                                1, 32, 32, OPENNA_F32);
  const Problem pc = normalize(&cube.problem);
  const Config cc = fused->default_config(pc, cpu, Pass::Backward);
  EXPECT_EQ(cc.get("DQ", -1), 0) << cc.str();
  EXPECT_EQ(cc.get("DQC", -1), -1) << cc.str();
  EXPECT_NE(fused->name(pc, cc, Pass::Backward).find("_7prod"), std::string::npos);
  // 7^3 windows: (1 + 6/2)(1 + 6/4) = 10x Q with whole-axis columns: within the bound.
  const NaCase cube7 = make_case(3, {16, 16, 16}, {7, 7, 7}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 4,
                                 4, 32, 32, OPENNA_F32);
  const Config c7 = fused->default_config(normalize(&cube7.problem), cpu, Pass::Backward);
  EXPECT_EQ(c7.get("DQ", -1), 1) << c7.str();
  EXPECT_EQ(c7.get("DQC", -1), 0) << c7.str();
  // A scratch over a quarter of the device's memory is not a default: small-cpu's 1.25 MB
  // scratch against 4 MB.
  DeviceInfo small_mem = cpu;
  small_mem.global_mem = 4 << 20;
  EXPECT_EQ(fused->default_config(ps, small_mem, Pass::Backward).get("DQ", -1), 0);
  // The forward has no DQ, and DQ is rejected there and in the rows form; the work-group
  // form's backward takes it (its 5-product form, session 8), but not DQC.
  EXPECT_EQ(fused->default_config(ps, cpu, Pass::Forward).get("DQ", -1), -1);
  EXPECT_FALSE(
      fused->config_error(ps, cpu, Pass::Forward, lanes_config(lanes_tile(2), 8, 16, 1)).empty());
  EXPECT_FALSE(
      fused->config_error(ps, cpu, Pass::Backward, lanes_config(lanes_tile(2), 8, 16, 2)).empty());
  const std::string wg = "FORM=0,TQ0=4,TQ1=4,TQ2=1,TK=16,RQ=1,TC=1,VW=4,DQ=1";
  EXPECT_EQ(fused->config_error(ps, cpu, Pass::Backward, Config::parse(wg)), "");
  EXPECT_NE(fused->config_error(ps, cpu, Pass::Backward, Config::parse(wg + ",DQC=0"))
                .find("FORM=1"),
            std::string::npos);
  EXPECT_NE(fused->config_error(ps, cpu, Pass::Forward, Config::parse(wg)).find("DQ applies"),
            std::string::npos);
  const std::string rows = "FORM=2,TQ0=1,TQ1=16,TK=8,VW=16,DQ=1";
  EXPECT_FALSE(fused->config_error(ps, cpu, Pass::Backward, Config::parse(rows)).empty());
}

// The GPU default (work-group form) takes the 5-product backward while its scratch (one slot per
// key tile, rows padded to 4) is at most 64x Q, and a quarter of the device memory.
TEST(FusedBwdWorkGroup, GpuDefaultSelection) {
  DeviceInfo gpu = test_context().device();
  gpu.type = CL_DEVICE_TYPE_GPU;
  gpu.global_mem = 80ull << 30;  // an H100's
  gpu.local_mem = 48 << 10;
  const Variant* fused = find_variant("fused");
  ASSERT_NE(fused, nullptr);
  // 4x8 key tiles, 7x7 windows: inverse boxes of up to 12x13 = 156 rows, 32 slots: 4.9x Q.
  const NaCase small =
      make_case(2, {32, 32}, {7, 7}, {1, 1}, {1, 1}, {0, 0}, 4, 4, 32, 32, OPENNA_F32);
  const Problem ps = normalize(&small.problem);
  const Config cs = fused->default_config(ps, gpu, Pass::Backward);
  EXPECT_EQ(cs.get("FORM", -1), 0) << cs.str();
  EXPECT_EQ(cs.get("DQ", -1), 1) << cs.str();
  EXPECT_NE(fused->name(ps, cs, Pass::Backward).find("_5prod"), std::string::npos);
  EXPECT_EQ(fused->config_error(ps, gpu, Pass::Backward, cs), "");
  // flux-2d (64x64, 17x17 windows, head dim 128): 4x8 key tiles, slots of 28x32 rows (the
  // inverse boxes of the tiles next to the border, where the windows pile up), 128 slots: 28x Q.
  const NaCase flux =
      make_case(2, {64, 64}, {17, 17}, {1, 1}, {1, 1}, {0, 0}, 24, 24, 128, 128, OPENNA_F32);
  const Config cf = fused->default_config(normalize(&flux.problem), gpu, Pass::Backward);
  EXPECT_EQ(cf.get("DQ", -1), 1) << cf.str();
  EXPECT_EQ(cf.str(), "FORM=0,TQ0=4,TQ1=8,TQ2=1,TK=8,RQ=4,TC=8,VW=1,DQ=1");
  // long-1d-causal (32768, window 2048, causal, head dim 64): 64-key tiles, 2112 rows per slot,
  // 512 slots: 33x Q, 4.4 GB in f32.
  const NaCase line = make_case(1, {32768}, {2048}, {1}, {1}, {1}, 16, 16, 64, 64, OPENNA_F32);
  const Config cl = fused->default_config(normalize(&line.problem), gpu, Pass::Backward);
  EXPECT_EQ(cl.str(), "FORM=0,TQ0=64,TQ1=1,TQ2=1,TK=8,RQ=4,TC=8,VW=1,DQ=1");
  // Head dims 160/128: the 7-product tile (32 queries, 8-row chunks) takes 48704 bytes of local
  // memory, its 5-product form 320 floats more (K's rows padded by two), over 48 KB: 5 products
  // on a 16-query tile.
  const NaCase wide = make_case(1, {9}, {5}, {1}, {1}, {0}, 1, 1, 160, 128, OPENNA_F32);
  const Problem pw = normalize(&wide.problem);
  Config cw = fused->default_config(pw, gpu, Pass::Backward);
  EXPECT_EQ(cw.str(), "FORM=0,TQ0=16,TQ1=1,TQ2=1,TK=8,RQ=2,TC=8,VW=1,DQ=1");
  EXPECT_EQ(fused->config_error(pw, gpu, Pass::Backward, cw), "");
  cw.set("TQ0", 32);
  EXPECT_NE(fused->config_error(pw, gpu, Pass::Backward, cw).find("local memory"),
            std::string::npos);
  cw.set("DQ", 0);
  EXPECT_EQ(fused->config_error(pw, gpu, Pass::Backward, cw), "");
  // 3-D 13^3 windows on 2x2x8 tiles: 16x16x16 rows per slot, 128 slots: 128x Q, over the bound.
  const NaCase cube = make_case(3, {16, 16, 16}, {13, 13, 13}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1,
                                1, 32, 32, OPENNA_F32);
  const Problem pc = normalize(&cube.problem);
  const Config cc = fused->default_config(pc, gpu, Pass::Backward);
  EXPECT_EQ(cc.get("DQ", -1), -1) << cc.str();
  EXPECT_EQ(fused->name(pc, cc, Pass::Backward).find("prod"), std::string::npos);
  // The small problem's 2.6 MB scratch over a quarter of a 1 MB device: 7 products.
  DeviceInfo small_mem = gpu;
  small_mem.global_mem = 1 << 20;
  EXPECT_EQ(fused->default_config(ps, small_mem, Pass::Backward).get("DQ", -1), -1);
  // The forward has no DQ.
  EXPECT_EQ(fused->default_config(ps, gpu, Pass::Forward).get("DQ", -1), -1);
}

// Runs the fused backward with `cfg` on `c`'s inputs and expects an error of `status` whose
// message holds `text`, with d_q (poisoned by DeviceCase) left as it was.
void expect_backward_error(const NaCase& c, const Config& cfg, openna_status status,
                           const std::string& text) {
  Context& ctx = test_context();
  const Problem p = normalize(&c.problem);
  const CaseData data = make_inputs(c);
  DeviceCase dc(ctx, c, data);
  const std::size_t bytes = static_cast<std::size_t>(p.q_elems()) * 4;
  std::vector<std::uint8_t> before(bytes), after(bytes);
  ctx.queue().enqueueReadBuffer(dc.d_q, CL_TRUE, 0, bytes, before.data());
  try {
    find_variant("fused")->backward(
        ctx, p, cfg,
        {dc.q(), dc.k(), dc.v(), dc.out(), dc.d_out(), dc.lse(), dc.d_q(), dc.d_k(), dc.d_v()},
        nullptr);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
  ctx.queue().enqueueReadBuffer(dc.d_q, CL_TRUE, 0, bytes, after.data());
  EXPECT_EQ(before, after);
}

// A 5-product backward whose scratch the device cannot allocate is an out-of-memory error
// raised before any kernel runs: the gradients keep their poison.
TEST(FusedBwdLanesPaths, ScratchTooLargeIsAnError) {
  // Dense 3-D 32^3 on 2x2x4 key tiles: 2048 tiles x 32768-row boxes x 16 floats = 4.3 GB.
  const NaCase c = make_case(3, {32, 32, 32}, {32, 32, 32}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1, 1,
                             16, 16, OPENNA_F32);
  Context& ctx = test_context();
  const Problem p = normalize(&c.problem);
  const cl_ulong max_alloc = ctx.device().device.getInfo<CL_DEVICE_MAX_MEM_ALLOC_SIZE>();
  if (max_alloc >= 4398046511ULL) GTEST_SKIP() << "the device could allocate the scratch";
  const Config cfg = lanes_config(lanes_tile(3), 8, 16, 1);
  const Variant* fused = find_variant("fused");
  ASSERT_TRUE(fused->config_error(p, ctx.device(), Pass::Backward, cfg).empty());
  expect_backward_error(c, cfg, OPENNA_ERROR_OUT_OF_MEMORY, "scratch");
}

// Bitwise-equal (and finite) gradients from two runs, through each dQ path of the lanes form.
TEST(FusedBwdLanesPaths, DeterministicBothPaths) {
  // DQ=1 with one key tile per slot, with columns of 2 and with whole-axis columns (DQC).
  for (const char* dq : {"DQ=0", "DQ=1", "DQ=1,DQC=2", "DQ=1,DQC=0"}) {
    const NaCase c =
        make_case(2, {17, 9}, {5, 3}, {2, 1}, {2, 1}, {0, 1}, 4, 2, 32, 16, OPENNA_F32, 2, 31);
    Selection s =
        select_variant(test_context().device(), normalize(&c.problem), Pass::Backward, "fused");
    s.config = Config::parse("FORM=1," + lanes_tile(2) + ",TK=8,VW=16," + dq);
    expect_backward_repeatable(c, s, dq);
  }
}

// The work-group kernels' chunk loads (session 11: rows prefetched into registers, metadata
// double-buffered) on tiles the GPU default never takes: fewer items than rows per chunk (each
// item holding several rows' metadata), loads that do not divide evenly among the items, and
// dQ-partial blocks of 4, 2 and 1 head dims; both product counts, with GQA, stride, dilation and
// a causal axis on ragged edges.
TEST(FusedBwdWorkGroup, ChunkLoadShapes) {
  const NaCase c =
      make_case(2, {13, 11}, {5, 5}, {2, 1}, {1, 2}, {1, 0}, 3, 1, 12, 16, OPENNA_F32, 2, 41);
  const Problem p = normalize(&c.problem);
  DeviceInfo gpu = test_context().device();
  gpu.type = CL_DEVICE_TYPE_GPU;
  gpu.local_mem = 48 * 1024;
  const Variant* fused = find_variant("fused");
  // Head-dim buckets 16/16: 8 items for 16-row chunks (2 rows' metadata each, PD 4); 48 items
  // for 8 x 16 values (3 loads each, the last guarded; PD 1); 16 items (PD 2).
  for (const char* tile : {"TQ0=4,TQ1=4,TQ2=1,TK=16,RQ=2,TC=1,VW=4",
                           "TQ0=3,TQ1=4,TQ2=1,TK=8,RQ=1,TC=4,VW=1",
                           "TQ0=2,TQ1=4,TQ2=1,TK=8,RQ=1,TC=2,VW=4"}) {
    for (const char* dq : {"0", "1"}) {
      const Config k = Config::parse(std::string("FORM=0,") + tile + ",DQ=" + dq);
      SCOPED_TRACE(k.str());
      ASSERT_EQ(fused->config_error(p, gpu, Pass::Backward, k), "");
      check_backward(c, "fused", &k);
    }
  }
}

// The work-group form's 5-product backward: bitwise-equal gradients from two runs, with GQA and
// dilation; its DQ key is checked, and DQC stays the lanes form's.
TEST(FusedBwdWorkGroup, FiveProductsDeterministicAndValidated) {
  const NaCase c =
      make_case(2, {17, 9}, {5, 3}, {2, 1}, {2, 1}, {0, 1}, 4, 2, 32, 16, OPENNA_F32, 2, 37);
  const Problem p = normalize(&c.problem);
  Selection s = select_variant(test_context().device(), p, Pass::Backward, "fused");
  s.config = gpu_config(c, "fused", Pass::Backward);
  s.config.set("DQ", 1);
  expect_backward_repeatable(c, s, "work-group DQ=1");
  const Variant* fused = find_variant("fused");
  const DeviceInfo& dev = test_context().device();
  const std::string base = gpu_config(c, "fused", Pass::Backward).str();
  EXPECT_EQ(fused->config_error(p, dev, Pass::Backward, Config::parse(base + ",DQ=0")), "");
  EXPECT_NE(fused->config_error(p, dev, Pass::Backward, Config::parse(base + ",DQ=2"))
                .find("DQ must be 0"),
            std::string::npos);
  EXPECT_NE(fused->config_error(p, dev, Pass::Forward, Config::parse(base + ",DQ=1"))
                .find("DQ applies to the backward"),
            std::string::npos);
  EXPECT_NE(fused->config_error(p, dev, Pass::Backward, Config::parse(base + ",DQ=1,DQC=2"))
                .find("FORM=1"),
            std::string::npos);
  // The variant's name tells the forms of the backward apart.
  EXPECT_NE(fused->name(p, Config::parse(base + ",DQ=1"), Pass::Backward).find("_5prod"),
            std::string::npos);
}

// DQC: only with DQ=1, 0..256; the message names the key and the value.
TEST(FusedBwdLanesPaths, ColumnKeyValidation) {
  DeviceInfo cpu = test_context().device();
  cpu.type = CL_DEVICE_TYPE_CPU;
  const Variant* fused = find_variant("fused");
  const NaCase small =
      make_case(2, {32, 32}, {7, 7}, {1, 1}, {1, 1}, {0, 0}, 4, 4, 32, 32, OPENNA_F32);
  const Problem p = normalize(&small.problem);
  const std::string base = "FORM=1," + lanes_tile(2) + ",TK=8,VW=16,";
  for (const char* ok : {"DQ=1,DQC=0", "DQ=1,DQC=1", "DQ=1,DQC=3", "DQ=1,DQC=256"}) {
    EXPECT_EQ(fused->config_error(p, cpu, Pass::Backward, Config::parse(base + ok)), "") << ok;
  }
  for (const char* bad : {"DQ=0,DQC=2", "DQC=2", "DQ=1,DQC=-1", "DQ=1,DQC=-3", "DQ=1,DQC=257"}) {
    const std::string why = fused->config_error(p, cpu, Pass::Backward, Config::parse(base + bad));
    EXPECT_NE(why.find("DQC="), std::string::npos) << bad << ": " << why;
  }
  EXPECT_FALSE(fused->config_error(p, cpu, Pass::Forward, Config::parse(base + "DQC=0")).empty());
  // Through the variant's backward: an unsupported configuration, outputs untouched (it checks
  // before any device work).
  expect_backward_error(small, Config::parse(base + "DQ=1,DQC=300"), OPENNA_ERROR_UNSUPPORTED,
                        "DQC=300");
}

// Two runs of the backward on the same inputs give bitwise equal gradients (no atomics, fixed
// summation order), for every dtype, with GQA.
TEST(FusedBwdDeterminism, BitwiseEqual) {
  for (openna_dtype dt : {OPENNA_F32, OPENNA_F16, OPENNA_BF16}) {
    const NaCase c =
        make_case(2, {11, 9}, {5, 3}, {2, 1}, {2, 1}, {0, 1}, 4, 2, 32, 16, dt, 2, 11 + dt);
    const Selection s =
        select_variant(test_context().device(), normalize(&c.problem), Pass::Backward, "fused");
    expect_backward_repeatable(c, s, c.name());
  }
}

// The fused backward against central differences of the fused forward (f32), through the
// loss L = sum(out * d_out): checks that the two kernels are consistent with each other, not
// only each with the reference.
TEST(FusedBwdGradient, FiniteDifferencesOfFusedForward) {
  const NaCase c =
      make_case(2, {5, 6}, {3, 4}, {1, 2}, {1, 1}, {1, 0}, 2, 1, 8, 4, OPENNA_F32, 1, 5);
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
