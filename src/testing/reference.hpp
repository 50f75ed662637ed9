// The host reference: neighborhood attention forward and backward in double precision, written
// straight from SPEC.md (its own window code, no shared formula with the kernels). It is the
// oracle of every test, the bench's --check and the tuner; tests/test_reference.cpp checks it
// against SPEC.md's worked examples and its backward against finite differences.
#pragma once

#include <vector>

#include "openna/openna.h"

namespace openna::testing {

// Key positions on one axis that query i sees, literally as SPEC.md section 2 states it.
std::vector<int> spec_axis_window(int length, int kernel, int stride, int dilation, bool causal,
                                  int i);

// Tensors in SPEC.md's layout as doubles (values already rounded to the problem's dtype where
// the caller wants the kernels' inputs reproduced exactly).
struct RefForward {
  std::vector<double> out;  // [b][tokens][heads][head_dim_v]
  std::vector<double> lse;  // [b][tokens][heads]
};
struct RefBackward {
  std::vector<double> d_q, d_k, d_v;
};

RefForward reference_forward(const openna_problem& p, const std::vector<double>& q,
                             const std::vector<double>& k, const std::vector<double>& v);

// The exact gradient: softmax statistics and D_i come from the reference's own forward.
RefBackward reference_backward(const openna_problem& p, const std::vector<double>& q,
                               const std::vector<double>& k, const std::vector<double>& v,
                               const std::vector<double>& d_out);

}  // namespace openna::testing
