// A validated, normalized neighborhood-attention problem: defaults filled in (heads_kv, head_dim_v,
// stride, dilation, scale), one Axis per used spatial dimension. Built only by normalize(), which
// applies every rule of SPEC.md section 4 and throws InvalidArgument naming the argument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "openna/openna.h"

namespace openna {

struct Axis {
  int length = 1;
  int kernel = 1;
  int stride = 1;
  int dilation = 1;
  bool causal = false;
};

struct Problem {
  openna_dtype dtype = OPENNA_F32;
  int rank = 1;
  int batch = 1;
  int heads = 1;
  int heads_kv = 1;
  int head_dim = 1;
  int head_dim_v = 1;
  float scale = 1.0f;
  Axis axis[3];  // entries >= rank are length 1, kernel 1 (a no-op axis)

  std::int64_t tokens() const;  // product of the used spatial lengths
  std::int64_t q_elems() const { return batch * tokens() * heads * head_dim; }
  std::int64_t k_elems() const { return batch * tokens() * heads_kv * head_dim; }
  std::int64_t v_elems() const { return batch * tokens() * heads_kv * head_dim_v; }
  std::int64_t out_elems() const { return batch * tokens() * heads * head_dim_v; }
  std::int64_t lse_elems() const { return batch * tokens() * heads; }
  // Exact number of (query, key) pairs attended, over all batch items and heads.
  std::int64_t attended_pairs() const;
  bool any_causal() const;
  // The openna_problem this came from, with defaults made explicit.
  openna_problem to_c() const;
  // "r2 64x64 k13x13 s1x1 d1x1 c0x0 b1 h4/4 d64/64 f32", for messages and logs.
  std::string describe() const;
};

std::size_t dtype_size(openna_dtype dtype);
const char* dtype_name(openna_dtype dtype);  // "f32", "f16", "bf16"

// Validates and normalizes. Throws InvalidArgument (SPEC.md section 4) or Unsupported (sizes the
// kernels cannot index with 32-bit integers).
Problem normalize(const openna_problem* p);

openna_tensor_bytes tensor_bytes(const Problem& p);

}  // namespace openna
