// Validation and normalization of openna_problem (SPEC.md section 4): the single place where
// the rules live. Messages name the argument and its value.
#include "core/problem.hpp"

#include <climits>
#include <cmath>
#include <sstream>

#include "core/errors.hpp"
#include "core/window.hpp"

namespace openna {

namespace {

[[noreturn]] void invalid(const std::string& what, long long value, const std::string& rule) {
  throw InvalidArgument(what + " = " + std::to_string(value) + ": " + rule);
}

std::string axis_arg(const char* field, int a) {
  return std::string("problem.") + field + "[" + std::to_string(a) + "]";
}

}  // namespace

std::size_t dtype_size(openna_dtype dtype) { return dtype == OPENNA_F32 ? 4 : 2; }

const char* dtype_name(openna_dtype dtype) {
  switch (dtype) {
    case OPENNA_F32:
      return "f32";
    case OPENNA_F16:
      return "f16";
    case OPENNA_BF16:
      return "bf16";
  }
  return "?";
}

std::int64_t Problem::tokens() const {
  std::int64_t n = 1;
  for (int a = 0; a < rank; ++a) n *= axis[a].length;
  return n;
}

bool Problem::any_causal() const {
  for (int a = 0; a < rank; ++a)
    if (axis[a].causal) return true;
  return false;
}

std::int64_t Problem::attended_pairs() const {
  // N(i) is a Cartesian product, so the sum over queries of |N(i)| factors into per-axis sums.
  std::int64_t pairs = 1;
  for (int a = 0; a < rank; ++a) {
    const Axis& ax = axis[a];
    std::int64_t sum = 0;
    for (int i = 0; i < ax.length; ++i) {
      sum += axis_window(ax, i).count;
    }
    pairs *= sum;
  }
  return pairs * batch * heads;
}

openna_problem Problem::to_c() const {
  openna_problem p{};
  p.dtype = dtype;
  p.rank = rank;
  p.batch = batch;
  p.heads = heads;
  p.heads_kv = heads_kv;
  p.head_dim = head_dim;
  p.head_dim_v = head_dim_v;
  p.scale = scale;
  for (int a = 0; a < 3; ++a) {
    p.spatial[a] = axis[a].length;
    p.kernel_size[a] = axis[a].kernel;
    p.stride[a] = axis[a].stride;
    p.dilation[a] = axis[a].dilation;
    p.is_causal[a] = axis[a].causal ? 1 : 0;
  }
  return p;
}

std::string Problem::describe() const {
  std::ostringstream s;
  auto dims = [&](auto get) {
    for (int a = 0; a < rank; ++a) s << (a ? "x" : "") << get(axis[a]);
  };
  s << "r" << rank << " ";
  dims([](const Axis& x) { return x.length; });
  s << " k";
  dims([](const Axis& x) { return x.kernel; });
  s << " s";
  dims([](const Axis& x) { return x.stride; });
  s << " d";
  dims([](const Axis& x) { return x.dilation; });
  s << " c";
  dims([](const Axis& x) { return x.causal ? 1 : 0; });
  s << " b" << batch << " h" << heads << "/" << heads_kv << " d" << head_dim << "/" << head_dim_v
    << " " << dtype_name(dtype);
  return s.str();
}

Problem normalize(const openna_problem* in) {
  if (in == nullptr) throw InvalidArgument("problem is NULL");
  const openna_problem& p = *in;
  Problem r;
  if (p.dtype != OPENNA_F32 && p.dtype != OPENNA_F16 && p.dtype != OPENNA_BF16) {
    // Through int: the enum's underlying type is unsigned, and a C caller's -1 should read -1.
    invalid("problem.dtype", static_cast<int>(p.dtype), "not a known openna_dtype");
  }
  r.dtype = p.dtype;
  if (p.rank < 1 || p.rank > 3) invalid("problem.rank", p.rank, "must be 1, 2 or 3");
  r.rank = p.rank;
  if (p.batch < 1) invalid("problem.batch", p.batch, "must be >= 1");
  r.batch = p.batch;
  if (p.heads < 1) invalid("problem.heads", p.heads, "must be >= 1");
  r.heads = p.heads;
  r.heads_kv = p.heads_kv == 0 ? p.heads : p.heads_kv;
  if (r.heads_kv < 1) invalid("problem.heads_kv", p.heads_kv, "must be >= 1 (or 0 for heads)");
  if (r.heads % r.heads_kv != 0) {
    invalid("problem.heads_kv", p.heads_kv,
            "must divide problem.heads = " + std::to_string(p.heads));
  }
  if (p.head_dim < 1) invalid("problem.head_dim", p.head_dim, "must be >= 1");
  r.head_dim = p.head_dim;
  r.head_dim_v = p.head_dim_v == 0 ? p.head_dim : p.head_dim_v;
  if (r.head_dim_v < 1) {
    invalid("problem.head_dim_v", p.head_dim_v, "must be >= 1 (or 0 for head_dim)");
  }
  for (int a = 0; a < r.rank; ++a) {
    Axis& ax = r.axis[a];
    if (p.spatial[a] < 1) invalid(axis_arg("spatial", a), p.spatial[a], "must be >= 1");
    ax.length = p.spatial[a];
    if (p.kernel_size[a] < 1) invalid(axis_arg("kernel_size", a), p.kernel_size[a], "must be >= 1");
    ax.kernel = p.kernel_size[a];
    ax.stride = p.stride[a] == 0 ? 1 : p.stride[a];
    if (ax.stride < 1) invalid(axis_arg("stride", a), p.stride[a], "must be >= 1 (or 0 for 1)");
    ax.dilation = p.dilation[a] == 0 ? 1 : p.dilation[a];
    if (ax.dilation < 1) {
      invalid(axis_arg("dilation", a), p.dilation[a], "must be >= 1 (or 0 for 1)");
    }
    if (p.is_causal[a] != 0 && p.is_causal[a] != 1) {
      invalid(axis_arg("is_causal", a), p.is_causal[a], "must be 0 or 1");
    }
    ax.causal = p.is_causal[a] == 1;
    if (static_cast<long long>(ax.kernel) * ax.dilation > ax.length) {
      invalid(axis_arg("kernel_size", a), ax.kernel,
              "kernel_size * dilation (" + std::to_string(ax.dilation) + ") must be <= spatial (" +
                  std::to_string(ax.length) + ")");
    }
    if (ax.stride > ax.kernel) {
      invalid(axis_arg("stride", a), ax.stride,
              "must be <= kernel_size (" + std::to_string(ax.kernel) + ")");
    }
  }
  if (!std::isfinite(p.scale)) {
    throw InvalidArgument("problem.scale = " + std::to_string(p.scale) + ": must be finite");
  }
  r.scale = p.scale == 0.0f ? static_cast<float>(1.0 / std::sqrt(static_cast<double>(r.head_dim)))
                            : p.scale;
  // Kernels index with 32-bit integers; refuse (not crash) problems past that.
  const std::int64_t biggest =
      std::max({r.q_elems(), r.k_elems(), r.v_elems(), r.out_elems(), r.lse_elems()});
  if (biggest > INT_MAX) {
    throw Unsupported("problem too large: a tensor has " + std::to_string(biggest) +
                      " elements, more than the 2^31-1 the kernels index");
  }
  return r;
}

openna_tensor_bytes tensor_bytes(const Problem& p) {
  const std::size_t es = dtype_size(p.dtype);
  openna_tensor_bytes b{};
  b.q = static_cast<std::size_t>(p.q_elems()) * es;
  b.k = static_cast<std::size_t>(p.k_elems()) * es;
  b.v = static_cast<std::size_t>(p.v_elems()) * es;
  b.out = static_cast<std::size_t>(p.out_elems()) * es;
  b.lse = static_cast<std::size_t>(p.lse_elems()) * sizeof(float);
  return b;
}

}  // namespace openna
