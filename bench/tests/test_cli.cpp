// openna-bench's command-line parser and problem resolution: every flag, its defaults, and the
// message of each mistake. No device is used.
#include <gtest/gtest.h>

#include "cli.hpp"
#include "core/problem.hpp"
#include "presets.hpp"

namespace openna::bench {
namespace {

Options parse(std::initializer_list<const char*> args) {
  return parse_args(std::vector<std::string>(args.begin(), args.end()));
}

// The CliError message of a parse, or "" when it parses.
std::string parse_error(std::initializer_list<const char*> args) {
  try {
    parse(args);
  } catch (const CliError& e) {
    return e.what();
  }
  return "";
}

std::string resolve_error(std::initializer_list<const char*> args, bool cpu = false) {
  try {
    resolve_problems(parse(args).problem, cpu);
  } catch (const CliError& e) {
    return e.what();
  }
  return "";
}

TEST(BenchCli, NoArgumentsIsHelp) {
  const Options o = parse({});
  EXPECT_EQ(o.command, Command::Help);
  EXPECT_NE(o.help.find("commands:"), std::string::npos);
  EXPECT_EQ(parse({"run", "--help"}).command, Command::Help);
  EXPECT_NE(parse({"help", "tune"}).help.find("--dry-run"), std::string::npos);
}

TEST(BenchCli, RunDefaults) {
  const Options o = parse({"run"});
  EXPECT_EQ(o.command, Command::Run);
  EXPECT_EQ(o.device, "all");
  ASSERT_EQ(o.variants.size(), 1u);
  EXPECT_EQ(o.variants[0], "auto");
  ASSERT_EQ(o.passes.size(), 1u);
  EXPECT_EQ(o.passes[0], Pass::Forward);
  EXPECT_EQ(o.warmup, 2);
  EXPECT_EQ(o.repeat, 10);
  EXPECT_EQ(o.format, Format::Table);
  EXPECT_FALSE(o.check);
  EXPECT_TRUE(o.probe);
  EXPECT_TRUE(o.baselines);
  EXPECT_TRUE(o.problem.shape.empty());
  EXPECT_TRUE(o.problem.preset.empty());
}

TEST(BenchCli, EveryRunFlag) {
  const Options o =
      parse({"run",  "--shape",      "64x48",  "--kernel",   "13x7",    "--dilation",
             "2x1",  "--stride",     "1x3",    "--causal",   "1x0",     "--batch",
             "2",    "--heads",      "8",      "--heads-kv", "2",       "--head-dim",
             "64",   "--head-dim-v", "32",     "--dtype",    "bf16",    "--device",
             "pocl", "--variant",    "all",    "--pass",     "both",    "--warmup",
             "0",    "--repeat",     "5",      "--json",     "--check", "--baseline-limit-ms",
             "250",  "--no-probe",   "--quiet"});
  const ProblemFlags& f = o.problem;
  EXPECT_EQ(f.shape, (std::vector<int>{64, 48}));
  EXPECT_EQ(f.kernel, (std::vector<int>{13, 7}));
  EXPECT_EQ(f.dilation, (std::vector<int>{2, 1}));
  EXPECT_EQ(f.stride, (std::vector<int>{1, 3}));
  EXPECT_EQ(f.causal, (std::vector<int>{1, 0}));
  EXPECT_EQ(*f.batch, 2);
  EXPECT_EQ(*f.heads, 8);
  EXPECT_EQ(*f.heads_kv, 2);
  EXPECT_EQ(*f.head_dim, 64);
  EXPECT_EQ(*f.head_dim_v, 32);
  EXPECT_EQ(*f.dtype, OPENNA_BF16);
  EXPECT_EQ(o.device, "pocl");
  EXPECT_EQ(o.variants, std::vector<std::string>{"all"});
  EXPECT_EQ(o.passes, (std::vector<Pass>{Pass::Forward, Pass::Backward}));
  EXPECT_EQ(o.warmup, 0);
  EXPECT_EQ(o.repeat, 5);
  EXPECT_EQ(o.format, Format::Json);
  EXPECT_TRUE(o.check);
  EXPECT_EQ(o.baseline_limit_ms, 250);
  EXPECT_FALSE(o.probe);
  EXPECT_TRUE(o.quiet);

  const auto probs = resolve_problems(f, false);
  ASSERT_EQ(probs.size(), 1u);
  const openna_problem& p = probs[0].problem;
  EXPECT_EQ(probs[0].label, "custom");
  EXPECT_EQ(p.rank, 2);
  EXPECT_EQ(p.spatial[0], 64);
  EXPECT_EQ(p.spatial[1], 48);
  EXPECT_EQ(p.kernel_size[1], 7);
  EXPECT_EQ(p.dilation[0], 2);
  EXPECT_EQ(p.stride[1], 3);
  EXPECT_EQ(p.is_causal[0], 1);
  EXPECT_EQ(p.is_causal[1], 0);
  EXPECT_EQ(p.dtype, OPENNA_BF16);
}

TEST(BenchCli, VariantLists) {
  EXPECT_EQ(parse({"run", "--variant", "naive,fused"}).variants,
            (std::vector<std::string>{"naive", "fused"}));
  EXPECT_NE(parse_error({"run", "--variant", "fast"}).find("--variant \"fast\""),
            std::string::npos);
  EXPECT_NE(parse_error({"run", "--variant", "naive,all"}).find("cannot be in a list"),
            std::string::npos);
}

TEST(BenchCli, Errors) {
  EXPECT_NE(parse_error({"bogus"}).find("unknown command"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--frobnicate"}).find("frobnicate"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--shape", "64xx64"}).find("--shape"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--shape", "0x4"}).find("between 1"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--shape", "2x2x2x2"}).find("at most 3"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--causal", "2"}).find("--causal"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--shape", "8x8", "--kernel", "3x3x3"}).find("--kernel has 3"),
            std::string::npos);
  EXPECT_NE(parse_error({"run", "--dtype", "f64"}).find("f32, f16 or bf16"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--pass", "forward"}).find("fwd, bwd or both"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--repeat", "0"}).find("--repeat"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--warmup", "-1"}).find("--warmup"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--batch", "two"}).find("not an integer"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--json", "--csv"}).find("exclude"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--preset", "huge"}).find("unknown"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--scale", "nan"}).find("--scale"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--baseline-limit-ms", "-5"}).find("--baseline-limit-ms"),
            std::string::npos);
  // Flags of one command are not flags of another.
  EXPECT_NE(parse_error({"devices", "--shape", "8"}).find("shape"), std::string::npos);
  EXPECT_NE(parse_error({"run", "--dry-run"}).find("dry-run"), std::string::npos);
  EXPECT_NE(parse_error({"simulate", "--config", "TQ=x", "--variant", "naive"}).find("--config"),
            std::string::npos);
  EXPECT_NE(parse_error({"simulate", "--config", "WG=64"}).find("one family"), std::string::npos);
  EXPECT_NE(parse_error({"simulate", "--device-kind", "tpu"}).find("gpu or cpu"),
            std::string::npos);
}

TEST(BenchCli, ProblemRulesNameTheFlag) {
  EXPECT_NE(resolve_error({"run", "--shape", "8x8"}).find("needs --kernel"), std::string::npos);
  EXPECT_NE(resolve_error({"run", "--kernel", "3"}).find("need --shape or --preset"),
            std::string::npos);
  EXPECT_NE(resolve_error({"run", "--shape", "8x8", "--kernel", "9"}).find("--kernel[0] = 9"),
            std::string::npos);
  EXPECT_NE(resolve_error({"run", "--shape", "8", "--kernel", "3", "--stride", "4"})
                .find("--stride[0] = 4"),
            std::string::npos);
  EXPECT_NE(resolve_error({"run", "--shape", "8", "--kernel", "3", "--dilation", "3"})
                .find("--kernel[0]"),
            std::string::npos);
  EXPECT_NE(
      resolve_error({"run", "--shape", "8", "--kernel", "3", "--heads", "6", "--heads-kv", "4"})
          .find("--heads-kv = 4"),
      std::string::npos);
  EXPECT_NE(resolve_error({"run", "--preset", "small-cpu", "--shape", "64"}).find("give --kernel"),
            std::string::npos);
  // run --config: for exactly one named family, and parsed before any device work.
  EXPECT_NE(resolve_error({"run", "--preset", "small-cpu", "--config", "TK=8"})
                .find("--config needs --variant"),
            std::string::npos);
  EXPECT_NE(resolve_error({"run", "--preset", "small-cpu", "--variant", "fused", "--config", "TK"})
                .find("--config"),
            std::string::npos);
}

TEST(BenchCli, Presets) {
  // Issue 3's table: f16 and batch 1 unless stated.
  struct Expect {
    const char* name;
    int rank, s0, s1, s2, k0, k1, k2, heads, hd, dil, causal;
    openna_dtype dtype;
  };
  const Expect want[] = {
      {"flux-2d", 2, 64, 64, 1, 17, 17, 1, 24, 128, 1, 0, OPENNA_F16},
      {"vision-2d", 2, 128, 128, 1, 13, 13, 1, 16, 64, 1, 0, OPENNA_F16},
      {"vision-2d-dilated", 2, 128, 128, 1, 13, 13, 1, 16, 64, 4, 0, OPENNA_F16},
      {"video-3d", 3, 16, 32, 32, 8, 16, 16, 24, 128, 1, 0, OPENNA_F16},
      {"long-1d-causal", 1, 32768, 1, 1, 2048, 1, 1, 16, 64, 1, 1, OPENNA_F16},
      {"small-cpu", 2, 32, 32, 1, 7, 7, 1, 4, 32, 1, 0, OPENNA_F32},
  };
  ASSERT_EQ(presets().size(), std::size(want));
  for (const Expect& e : want) {
    SCOPED_TRACE(e.name);
    const Preset* p = find_preset(e.name);
    ASSERT_NE(p, nullptr);
    const Problem n = normalize(&p->problem);
    EXPECT_EQ(n.rank, e.rank);
    EXPECT_EQ(n.batch, 1);
    const int s[3] = {e.s0, e.s1, e.s2}, k[3] = {e.k0, e.k1, e.k2};
    for (int a = 0; a < e.rank; ++a) {
      EXPECT_EQ(n.axis[a].length, s[a]);
      EXPECT_EQ(n.axis[a].kernel, k[a]);
      EXPECT_EQ(n.axis[a].dilation, e.dil);
      EXPECT_EQ(n.axis[a].causal, e.causal == 1);
    }
    EXPECT_EQ(n.heads, e.heads);
    EXPECT_EQ(n.heads_kv, e.heads);
    EXPECT_EQ(n.head_dim, e.hd);
    EXPECT_EQ(n.head_dim_v, e.hd);
    EXPECT_EQ(n.dtype, e.dtype);
  }
}

TEST(BenchCli, DefaultPresetsAndOverrides) {
  auto labels = [](const std::vector<NamedProblem>& v) {
    std::vector<std::string> l;
    for (const auto& p : v) l.push_back(p.label);
    return l;
  };
  EXPECT_EQ(labels(resolve_problems(parse({"run"}).problem, /*cpu=*/true)),
            std::vector<std::string>{"small-cpu"});
  EXPECT_EQ(labels(resolve_problems(parse({"run"}).problem, /*cpu=*/false)),
            (std::vector<std::string>{"flux-2d", "vision-2d", "vision-2d-dilated", "video-3d",
                                      "long-1d-causal"}));
  // --dtype overrides a preset's dtype; --heads carries heads_kv along unless given.
  auto p =
      resolve_problems(
          parse({"run", "--preset", "flux-2d", "--dtype", "f32", "--heads", "4"}).problem, false)[0]
          .problem;
  EXPECT_EQ(p.dtype, OPENNA_F32);
  EXPECT_EQ(p.heads, 4);
  EXPECT_EQ(p.heads_kv, 4);
  EXPECT_EQ(p.kernel_size[0], 17);
  // --head-dim carries head_dim_v along unless given.
  p = resolve_problems(parse({"run", "--preset", "small-cpu", "--head-dim", "16"}).problem, true)[0]
          .problem;
  EXPECT_EQ(p.head_dim, 16);
  EXPECT_EQ(p.head_dim_v, 16);
  // One value broadcasts over the axes; --shape problems take f32 on CPUs and f16 on GPUs.
  p = resolve_problems(parse({"run", "--shape", "9x9x9", "--kernel", "3"}).problem, true)[0]
          .problem;
  EXPECT_EQ(p.kernel_size[2], 3);
  EXPECT_EQ(p.dtype, OPENNA_F32);
  p = resolve_problems(parse({"run", "--shape", "9x9x9", "--kernel", "3"}).problem, false)[0]
          .problem;
  EXPECT_EQ(p.dtype, OPENNA_F16);
}

TEST(BenchCli, DenseOfDropsEveryMask) {
  const openna_problem d = dense_of(find_preset("vision-2d-dilated")->problem);
  EXPECT_EQ(d.kernel_size[0], 128);
  EXPECT_EQ(d.kernel_size[1], 128);
  EXPECT_EQ(d.dilation[0], 1);
  const openna_problem c = dense_of(find_preset("long-1d-causal")->problem);
  EXPECT_EQ(c.kernel_size[0], 32768);
  EXPECT_EQ(c.is_causal[0], 0);
}

}  // namespace
}  // namespace openna::bench
