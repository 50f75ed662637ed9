// NaCase: names, counts, tolerances, inputs and comparison (see na_case.hpp).
#include "testing/na_case.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "core/half.hpp"
#include "core/problem.hpp"

namespace openna::testing {

const char* output_name(Output o) {
  switch (o) {
    case Output::Out:
      return "out";
    case Output::Lse:
      return "lse";
    case Output::DQ:
      return "d_q";
    case Output::DK:
      return "d_k";
    case Output::DV:
      return "d_v";
  }
  return "?";
}

std::string NaCase::name() const {
  const Problem p = normalize(&problem);
  std::ostringstream s;
  auto dims = [&](auto get) {
    for (int a = 0; a < p.rank; ++a) s << (a ? "x" : "") << get(p.axis[a]);
  };
  s << "r" << p.rank << "_";
  dims([](const Axis& x) { return x.length; });
  s << "_k";
  dims([](const Axis& x) { return x.kernel; });
  s << "_s";
  dims([](const Axis& x) { return x.stride; });
  s << "_d";
  dims([](const Axis& x) { return x.dilation; });
  s << "_c";
  dims([](const Axis& x) { return x.causal ? 1 : 0; });
  s << "_b" << p.batch << "_h" << p.heads << "of" << p.heads_kv << "_hd" << p.head_dim << "v"
    << p.head_dim_v << "_" << dtype_name(p.dtype);
  if (problem.scale != 0.0f) s << "_scaled";
  s << "_seed" << seed;
  return s.str();
}

double NaCase::flops_forward() const {
  const Problem p = normalize(&problem);
  return 2.0 * static_cast<double>(p.attended_pairs()) * (p.head_dim + p.head_dim_v);
}

double NaCase::flops_backward() const { return 2.5 * flops_forward(); }

double NaCase::bytes_forward() const {
  const Problem p = normalize(&problem);
  const openna_tensor_bytes b = tensor_bytes(p);
  return static_cast<double>(b.q + b.k + b.v + b.out + b.lse);
}

double NaCase::tolerance(Output o) const {
  const bool grad = o == Output::DQ || o == Output::DK || o == Output::DV;
  switch (problem.dtype) {
    case OPENNA_F32:
      return grad ? 1e-4 : 2e-5;
    case OPENNA_F16:
      return o == Output::Lse ? 1e-3 : grad ? 5e-3 : 2e-3;
    case OPENNA_BF16:
      return o == Output::Lse ? 8e-3 : grad ? 3e-2 : 1.6e-2;
  }
  return 0;
}

std::vector<std::uint8_t> to_storage(const std::vector<double>& x, openna_dtype dtype) {
  const std::size_t es = dtype == OPENNA_F32 ? 4 : 2;
  std::vector<std::uint8_t> out(x.size() * es);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float f = static_cast<float>(x[i]);
    if (dtype == OPENNA_F32) {
      std::memcpy(&out[i * 4], &f, 4);
    } else {
      const std::uint16_t h = dtype == OPENNA_F16 ? float_to_f16(f) : float_to_bf16(f);
      std::memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

std::vector<double> from_storage(const void* raw, std::size_t n, openna_dtype dtype) {
  std::vector<double> out(n);
  const auto* bytes = static_cast<const std::uint8_t*>(raw);
  for (std::size_t i = 0; i < n; ++i) {
    if (dtype == OPENNA_F32) {
      float f;
      std::memcpy(&f, bytes + i * 4, 4);
      out[i] = f;
    } else {
      std::uint16_t h;
      std::memcpy(&h, bytes + i * 2, 2);
      out[i] = dtype == OPENNA_F16 ? f16_to_float(h) : bf16_to_float(h);
    }
  }
  return out;
}

namespace {

// Uniform values, rounded through the storage type so that doubles and storage agree exactly.
void fill(std::mt19937_64& rng, std::size_t n, openna_dtype dtype, double amp,
          std::vector<std::uint8_t>& raw, std::vector<double>& d) {
  std::uniform_real_distribution<double> u(-amp, amp);
  std::vector<double> x(n);
  for (auto& e : x) e = u(rng);
  raw = to_storage(x, dtype);
  d = from_storage(raw.data(), n, dtype);
}

}  // namespace

CaseData make_inputs(const NaCase& c) {
  const Problem p = normalize(&c.problem);
  std::mt19937_64 rng(c.seed * 0x9E3779B97F4A7C15ull + 12345);
  CaseData d;
  // Amplitude ~1.7 gives scores of order one after the 1/sqrt(head_dim) scale: softmax rows
  // neither uniform nor one-hot, so errors in either direction show.
  fill(rng, static_cast<std::size_t>(p.q_elems()), p.dtype, 1.7, d.q, d.qd);
  fill(rng, static_cast<std::size_t>(p.k_elems()), p.dtype, 1.7, d.k, d.kd);
  fill(rng, static_cast<std::size_t>(p.v_elems()), p.dtype, 1.0, d.v, d.vd);
  fill(rng, static_cast<std::size_t>(p.out_elems()), p.dtype, 1.0, d.d_out, d.d_outd);
  return d;
}

std::string Comparison::describe(const char* what) const {
  std::ostringstream s;
  s << what << ": max |err| " << max_err << " (relative " << rel << ") at index " << worst
    << ", max |ref| " << max_ref << (non_finite ? ", NON-FINITE values" : "");
  return s.str();
}

Comparison compare(const std::vector<double>& got, const std::vector<double>& ref, double tol) {
  Comparison c;
  if (got.size() != ref.size()) {
    c.ok = false;
    c.non_finite = true;
    return c;
  }
  for (std::size_t i = 0; i < ref.size(); ++i) {
    c.max_ref = std::max(c.max_ref, std::fabs(ref[i]));
    if (!std::isfinite(got[i]) && std::isfinite(ref[i])) {
      c.non_finite = true;
      c.worst = i;
      continue;
    }
    const double e = std::fabs(got[i] - ref[i]);
    if (e > c.max_err) {
      c.max_err = e;
      c.worst = i;
    }
  }
  // Relative to the largest reference magnitude, but never to less than 1e-2: an output that is
  // exactly zero in the reference (kernel size 1 makes d_q and d_k vanish: softmax over one key,
  // dS = dP - D with dP and D the same dot product of order 1) can only be matched to the
  // rounding of that difference, which depends on the two sums' orders (f32: about 1e-7 when D
  // is summed as a tree on GPUs and dP in the kernel's order); the inputs of NaCase make every
  // non-trivial output of order 0.1 to 1.
  c.rel = c.max_err / std::max(c.max_ref, 1e-2);
  c.ok = !c.non_finite && c.rel <= tol;
  return c;
}

NaCase random_case(std::mt19937_64& rng, const RandomCaseLimits& lim) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto chance = [&](double pr) { return std::uniform_real_distribution<double>(0, 1)(rng) < pr; };
  NaCase c;
  c.seed = rng();
  openna_problem& p = c.problem;
  p.rank = pick(1, 3);
  // Per-axis length cap so that tokens stay under the limit.
  const int cap = std::max(1, static_cast<int>(std::pow(lim.max_tokens, 1.0 / p.rank)));
  for (int a = 0; a < p.rank; ++a) {
    const int L = pick(1, std::max(1, cap));
    p.spatial[a] = L;
    const int dil = chance(0.3) ? pick(1, std::max(1, std::min(4, L))) : 1;
    const int kmax = std::max(1, L / dil);
    int K = pick(1, kmax);
    if (chance(0.15)) K = kmax;  // kernel equal to the (group) length
    p.kernel_size[a] = K;
    p.dilation[a] = dil;
    p.stride[a] = chance(0.3) ? pick(1, K) : 1;
    p.is_causal[a] = chance(0.25) ? 1 : 0;
  }
  p.batch = pick(1, 2);
  p.heads = pick(1, 4);
  std::vector<int> divisors;
  for (int d = 1; d <= p.heads; ++d)
    if (p.heads % d == 0) divisors.push_back(d);
  p.heads_kv = divisors[pick(0, static_cast<int>(divisors.size()) - 1)];
  // Odd sizes, the tiled variants' bucket edges, and 80 / 96 where the limit allows them.
  const int dims[] = {1, 3, 4, 8, 16, 17, 24, 32, 40, 48, 64, 80, 96};
  int n_dims = 0;
  while (n_dims < 13 && dims[n_dims] <= lim.max_head_dim) ++n_dims;
  auto pick_dim = [&] { return dims[pick(0, std::max(0, n_dims - 1))]; };
  p.head_dim = pick_dim();
  p.head_dim_v = chance(0.3) ? pick_dim() : 0;
  p.scale = chance(0.2) ? static_cast<float>(std::uniform_real_distribution<double>(0.05, 1.0)(rng))
                        : 0.0f;
  p.dtype =
      lim.dtype >= 0 ? static_cast<openna_dtype>(lim.dtype) : static_cast<openna_dtype>(pick(0, 2));
  return c;
}

}  // namespace openna::testing
