// The host reference checked on its own: SPEC.md's worked examples, plain self attention when
// the kernel covers the grid, and the backward against central finite differences of the
// forward.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "testing/na_case.hpp"
#include "testing/reference.hpp"

namespace openna::testing {
namespace {

using Keys = std::vector<int>;
std::vector<Keys> axis(int L, int K, int s, int d, bool causal) {
  std::vector<Keys> w;
  for (int i = 0; i < L; ++i) w.push_back(spec_axis_window(L, K, s, d, causal, i));
  return w;
}
Keys range(int a, int b) {  // a..b inclusive
  Keys k;
  for (int i = a; i <= b; ++i) k.push_back(i);
  return k;
}

TEST(ReferenceSpec, WorkedExamples) {
  EXPECT_EQ(axis(7, 3, 1, 1, false),
            (std::vector<Keys>{{0, 1, 2}, {0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 5}, {4, 5, 6},
                               {4, 5, 6}}));
  EXPECT_EQ(axis(8, 4, 1, 1, false),
            (std::vector<Keys>{range(0, 3), range(0, 3), range(0, 3), range(1, 4), range(2, 5),
                               range(3, 6), range(4, 7), range(4, 7)}));
  EXPECT_EQ(axis(10, 3, 1, 2, false),
            (std::vector<Keys>{{0, 2, 4}, {1, 3, 5}, {0, 2, 4}, {1, 3, 5}, {2, 4, 6}, {3, 5, 7},
                               {4, 6, 8}, {5, 7, 9}, {4, 6, 8}, {5, 7, 9}}));
  EXPECT_EQ(axis(11, 3, 1, 3, false),
            (std::vector<Keys>{{0, 3, 6}, {1, 4, 7}, {2, 5, 8}, {0, 3, 6}, {1, 4, 7}, {2, 5, 8},
                               {3, 6, 9}, {4, 7, 10}, {2, 5, 8}, {3, 6, 9}, {4, 7, 10}}));
  EXPECT_EQ(axis(9, 5, 2, 1, false),
            (std::vector<Keys>{range(0, 4), range(0, 4), range(1, 5), range(1, 5), range(3, 7),
                               range(3, 7), range(4, 8), range(4, 8), range(4, 8)}));
  EXPECT_EQ(axis(9, 4, 3, 1, false),
            (std::vector<Keys>{range(0, 3), range(0, 3), range(0, 3), range(2, 5), range(2, 5),
                               range(2, 5), range(5, 8), range(5, 8), range(5, 8)}));
  EXPECT_EQ(axis(6, 3, 1, 1, true), (std::vector<Keys>{{0}, {0, 1}, range(0, 2), range(1, 3),
                                                       range(2, 4), range(3, 5)}));
  EXPECT_EQ(axis(7, 3, 2, 1, true),
            (std::vector<Keys>{{0}, {0, 1}, {1, 2}, range(1, 3), {3, 4}, range(3, 5),
                               range(4, 6)}));
  EXPECT_EQ(axis(10, 4, 1, 2, true),
            (std::vector<Keys>{{0}, {1}, {0, 2}, {1, 3}, {0, 2, 4}, {1, 3, 5}, {0, 2, 4, 6},
                               {1, 3, 5, 7}, {2, 4, 6, 8}, {3, 5, 7, 9}}));
}

// Kernel = length on every axis is plain softmax attention over the whole grid.
TEST(ReferenceSpec, FullKernelIsSelfAttention) {
  NaCase c;
  c.problem.rank = 2;
  c.problem.spatial[0] = 3;
  c.problem.spatial[1] = 4;
  c.problem.kernel_size[0] = 3;
  c.problem.kernel_size[1] = 4;
  c.problem.batch = 1;
  c.problem.heads = 2;
  c.problem.heads_kv = 1;
  c.problem.head_dim = 5;
  c.problem.head_dim_v = 3;
  c.problem.dtype = OPENNA_F32;
  const CaseData d = make_inputs(c);
  const RefForward f = reference_forward(c.problem, d.qd, d.kd, d.vd);
  const int N = 12, H = 2, D = 5, DV = 3;
  const double scale = static_cast<float>(1.0 / std::sqrt(5.0));  // the problem's scale is a float
  for (int i = 0; i < N; ++i)
    for (int h = 0; h < H; ++h) {
      std::vector<double> s(N);
      double mx = -1e300, sum = 0;
      for (int j = 0; j < N; ++j) {
        double dot = 0;
        for (int e = 0; e < D; ++e) dot += d.qd[(i * H + h) * D + e] * d.kd[j * D + e];
        s[j] = scale * dot;
        mx = std::max(mx, s[j]);
      }
      for (int j = 0; j < N; ++j) sum += std::exp(s[j] - mx);
      EXPECT_NEAR(f.lse[i * H + h], mx + std::log(sum), 1e-12);
      for (int e = 0; e < DV; ++e) {
        double o = 0;
        for (int j = 0; j < N; ++j) o += std::exp(s[j] - mx) / sum * d.vd[j * DV + e];
        EXPECT_NEAR(f.out[(i * H + h) * DV + e], o, 1e-12);
      }
    }
}

// d/dx of L = sum(out * d_out), by central differences, for every input element.
void finite_difference_check(const NaCase& c) {
  const CaseData d = make_inputs(c);
  const RefBackward g = reference_backward(c.problem, d.qd, d.kd, d.vd, d.d_outd);
  auto loss = [&](const std::vector<double>& q, const std::vector<double>& k,
                  const std::vector<double>& v) {
    const RefForward f = reference_forward(c.problem, q, k, v);
    double l = 0;
    for (std::size_t i = 0; i < f.out.size(); ++i) l += f.out[i] * d.d_outd[i];
    return l;
  };
  const double h = 1e-5;
  auto check = [&](const std::vector<double>& grad, int which, const char* name) {
    for (std::size_t i = 0; i < grad.size(); ++i) {
      std::vector<double> q = d.qd, k = d.kd, v = d.vd;
      std::vector<double>& x = which == 0 ? q : which == 1 ? k : v;
      const double x0 = x[i];
      x[i] = x0 + h;
      const double lp = loss(q, k, v);
      x[i] = x0 - h;
      const double lm = loss(q, k, v);
      EXPECT_NEAR(grad[i], (lp - lm) / (2 * h), 1e-7) << name << "[" << i << "] of " << c.name();
    }
  };
  check(g.d_q, 0, "d_q");
  check(g.d_k, 1, "d_k");
  check(g.d_v, 2, "d_v");
}

TEST(ReferenceBackward, FiniteDifferences) {
  // Every option once: even kernel with stride, dilation, causal with stride, GQA, hd != hdv,
  // custom scale.
  NaCase a;
  a.problem = {OPENNA_F32, 2, 1, {5, 4, 0}, 2, 1, 3, 2, {4, 3, 0}, {2, 1, 0}, {1, 1, 0},
               {0, 1, 0}, 0.0f};
  a.seed = 7;
  finite_difference_check(a);
  NaCase b;
  b.problem = {OPENNA_F32, 1, 2, {9, 0, 0}, 2, 2, 4, 0, {3, 0, 0}, {2, 0, 0}, {2, 0, 0},
               {1, 0, 0}, 0.7f};
  b.seed = 8;
  finite_difference_check(b);
  NaCase c3;
  c3.problem = {OPENNA_F32, 3, 1, {3, 4, 3, }, 1, 1, 2, 3, {2, 3, 3}, {1, 2, 1}, {1, 1, 1},
                {1, 0, 0}, 0.0f};
  c3.seed = 9;
  finite_difference_check(c3);
}

}  // namespace
}  // namespace openna::testing
