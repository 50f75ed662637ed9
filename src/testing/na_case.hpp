// One case descriptor for tests, the bench and the tuner: a problem with a seed, a stable
// readable name, FLOP and byte counts, per-dtype and per-output tolerances, reproducible random
// inputs, and the comparison against the host reference.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "openna/openna.h"

namespace openna::testing {

enum class Output { Out, Lse, DQ, DK, DV };
const char* output_name(Output o);

struct NaCase {
  openna_problem problem{};
  std::uint64_t seed = 1;

  // "r2_9x7_k3x5_s1x2_d2x1_c01_b1_h4of2_hd16v8_f16_seed42": letters, digits and '_' only.
  std::string name() const;
  // Useful FLOPs: forward 4 * attended pairs * head dim (2 for QK^T, 2 for PV, with
  // head_dim_v for the latter); backward 2.5x forward by convention (docs/BENCH.md).
  double flops_forward() const;
  double flops_backward() const;
  // Bytes the forward must move at least (q, k, v read once; out and lse written once).
  double bytes_forward() const;
  // Max error, relative to the largest reference magnitude, that a correct kernel stays under.
  double tolerance(Output o) const;
};

// Inputs in the problem's storage format and the same values as doubles (so the reference sees
// exactly what the kernels see). d_out is filled as well, for the backward.
struct CaseData {
  std::vector<std::uint8_t> q, k, v, d_out;
  std::vector<double> qd, kd, vd, d_outd;
};
CaseData make_inputs(const NaCase& c);

// Storage conversions of whole tensors.
std::vector<std::uint8_t> to_storage(const std::vector<double>& x, openna_dtype dtype);
std::vector<double> from_storage(const void* raw, std::size_t n, openna_dtype dtype);

struct Comparison {
  bool ok = false;
  double max_err = 0;   // max |got - ref|
  double max_ref = 0;   // max |ref|
  double rel = 0;       // max_err / max(max_ref, 1e-3)
  std::size_t worst = 0;
  bool non_finite = false;  // a NaN or infinity in got where ref is finite
  std::string describe(const char* what) const;
};
Comparison compare(const std::vector<double>& got, const std::vector<double>& ref, double tol);

// A random valid problem for randomized suites: small sizes, every option drawn (rank, odd and
// even kernels, kernel 1, stride, dilation, causal per axis, GQA/MQA, head_dim_v != head_dim,
// custom scale). `dtype` < 0 draws it too.
struct RandomCaseLimits {
  int max_tokens = 256;
  int max_head_dim = 48;
  int dtype = -1;
};
NaCase random_case(std::mt19937_64& rng, const RandomCaseLimits& lim = {});

}  // namespace openna::testing
