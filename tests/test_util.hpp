// Helpers shared by the test programs: one context per process (the device of OPENNA_DEVICE or
// the default, PoCL in CI), and the checks of a variant against the host reference.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "runtime/context.hpp"
#include "testing/na_case.hpp"
#include "testing/runner.hpp"

namespace openna::testing {

Context& test_context();

// A case from per-axis lists (rank entries each): lengths, kernels, strides, dilations, causal.
NaCase make_case(int rank, std::vector<int> L, std::vector<int> K, std::vector<int> S,
                 std::vector<int> D, std::vector<int> C, int heads, int heads_kv, int hd, int hdv,
                 openna_dtype dt, int batch = 1, std::uint64_t seed = 1);

// `n` random cases of the shared generator from `seed`.
std::vector<NaCase> random_cases(std::uint64_t seed, int n, const RandomCaseLimits& lim = {});

// gtest prints parameters with this (the case's name) instead of raw bytes.
inline void PrintTo(const NaCase& c, std::ostream* os) { *os << c.name(); }

// Runs the case's forward through `family` (its default configuration, or `config` when given)
// and expects out and lse to match the reference. Returns false (with a test failure) on
// mismatch.
bool check_forward(const NaCase& c, const std::string& family, const Config* config = nullptr);
// Backward with the reference's out and lse as inputs; expects d_q, d_k, d_v to match.
bool check_backward(const NaCase& c, const std::string& family, const Config* config = nullptr);

// Runs the backward of selection `s` twice on the case's inputs (outputs poisoned in between,
// forward outputs uploaded again) and expects finite gradients that are bitwise equal.
void expect_backward_repeatable(const NaCase& c, const Selection& s, const std::string& what);

// The configuration the dispatcher picks for `family` on a GPU (a device description with a
// GPU's limits: 48 KB of local memory, 1024 work-items), so that PoCL checks the GPU kernels too.
Config gpu_config(const NaCase& c, const std::string& family, Pass pass);

// Whether `family` can run the case on the test device; when it cannot, the reason.
std::string unsupported(const NaCase& c, const std::string& family, Pass pass);

}  // namespace openna::testing
