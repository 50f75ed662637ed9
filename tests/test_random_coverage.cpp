// The randomized suite is only as good as what it draws: this checks that the 200 cases of
// random_case(std::mt19937_64(2026)) (the seed and count test_naive.cpp uses) cover every option
// of SPEC.md, so that a change to the generator cannot silently drop one.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>

#include "core/problem.hpp"
#include "testing/na_case.hpp"

namespace openna::testing {
namespace {

constexpr std::uint64_t kSeed = 2026;  // as in test_naive.cpp
constexpr int kCases = 200;

// Feature name -> number of cases that have it.
std::map<std::string, int> features_of(const std::vector<NaCase>& cases) {
  std::map<std::string, int> f;
  for (const NaCase& c : cases) {
    const Problem p = normalize(&c.problem);
    auto has = [&](const std::string& name) { ++f[name]; };
    has("rank " + std::to_string(p.rank));
    has(std::string("dtype ") + dtype_name(p.dtype));
    bool causal_stride = false, causal_dilation = false;
    for (int a = 0; a < p.rank; ++a) {
      const Axis& x = p.axis[a];
      if (x.kernel == 1) has("kernel 1");
      if (x.kernel > 1 && x.kernel % 2 == 0) has("even kernel");
      if (x.kernel > 1 && x.kernel % 2 == 1) has("odd kernel > 1");
      if (x.kernel == x.length && x.dilation == 1 && x.length > 1) has("kernel == length");
      if (x.stride > 1) has("stride > 1");
      if (x.dilation > 1) has("dilation > 1");
      if (x.dilation > 1 && x.length % x.dilation != 0) has("dilation with uneven groups");
      if (x.causal) has("causal");
      causal_stride |= x.causal && x.stride > 1;
      causal_dilation |= x.causal && x.dilation > 1;
      if (x.length % 2 == 1 && x.length > 1) has("odd length");
    }
    if (causal_stride) has("causal with stride");
    if (causal_dilation) has("causal with dilation");
    if (p.rank > 1) {
      bool mixed = false;
      for (int a = 1; a < p.rank; ++a) mixed |= p.axis[a].causal != p.axis[0].causal;
      if (mixed) has("causal on some axes only");
    }
    if (p.heads_kv > 1 && p.heads_kv < p.heads) has("GQA (1 < heads_kv < heads)");
    if (p.heads_kv == 1 && p.heads > 1) has("MQA (heads_kv == 1 < heads)");
    if (p.heads_kv == p.heads && p.heads > 1) has("MHA (heads_kv == heads > 1)");
    if (p.head_dim_v != p.head_dim) has("head_dim_v != head_dim");
    if (p.head_dim % 2 == 1 && p.head_dim > 1) has("odd head_dim");
    if (c.problem.scale != 0.0f) has("custom scale");
    if (p.batch > 1) has("batch > 1");
  }
  return f;
}

std::vector<NaCase> suite() {
  std::mt19937_64 rng(kSeed);
  std::vector<NaCase> cases;
  for (int i = 0; i < kCases; ++i) cases.push_back(random_case(rng));
  return cases;
}

TEST(RandomCoverage, SuiteCoversEveryOption) {
  const std::vector<NaCase> cases = suite();
  const auto f = features_of(cases);
  const char* required[] = {
      "rank 1",
      "rank 2",
      "rank 3",
      "dtype f32",
      "dtype f16",
      "dtype bf16",
      "kernel 1",
      "even kernel",
      "odd kernel > 1",
      "kernel == length",
      "odd length",
      "stride > 1",
      "dilation > 1",
      "dilation with uneven groups",
      "causal",
      "causal with stride",
      "causal with dilation",
      "causal on some axes only",
      "GQA (1 < heads_kv < heads)",
      "MQA (heads_kv == 1 < heads)",
      "MHA (heads_kv == heads > 1)",
      "head_dim_v != head_dim",
      "odd head_dim",
      "custom scale",
      "batch > 1",
  };
  std::string summary;
  for (const auto& [name, n] : f) summary += "\n  " + name + ": " + std::to_string(n);
  for (const char* name : required) {
    const auto it = f.find(name);
    EXPECT_TRUE(it != f.end() && it->second > 0)
        << "the randomized suite (seed " << kSeed << ", " << kCases
        << " cases) never draws: " << name << "\ncounts:" << summary;
  }
  std::printf("coverage of the randomized suite:%s\n", summary.c_str());
}

// Every drawn case is valid, and the names are unique (they are the test names).
TEST(RandomCoverage, CasesAreValidAndNamedUniquely) {
  const std::vector<NaCase> cases = suite();
  std::map<std::string, int> names;
  for (const NaCase& c : cases) {
    EXPECT_EQ(openna_problem_validate(&c.problem), OPENNA_OK) << openna_last_error();
    ++names[c.name()];
  }
  for (const auto& [name, n] : names) EXPECT_EQ(n, 1) << name;
}

// The same seed draws the same suite (seeds printed on failure must reproduce it).
TEST(RandomCoverage, Reproducible) {
  const auto a = suite(), b = suite();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].name(), b[i].name());
}

// The feature detector can fail: a suite of one plain case misses nearly everything.
TEST(RandomCoverage, DetectorSeesMissingFeatures) {
  NaCase plain;
  plain.problem.rank = 1;
  plain.problem.batch = 1;
  plain.problem.spatial[0] = 8;
  plain.problem.kernel_size[0] = 3;
  plain.problem.heads = 1;
  plain.problem.head_dim = 8;
  const auto f = features_of({plain});
  EXPECT_EQ(f.count("rank 2"), 0u);
  EXPECT_EQ(f.count("causal"), 0u);
  EXPECT_EQ(f.count("odd kernel > 1"), 1u);
}

}  // namespace
}  // namespace openna::testing
