// Host reference for neighborhood attention (see reference.hpp). Plain loops, double
// accumulation, one query at a time; meant to be obviously right, not fast.
#include "testing/reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/problem.hpp"

namespace openna::testing {

std::vector<int> spec_axis_window(int L, int K, int s, int d, bool causal, int i) {
  // Dilation: group g = i mod d, index i' = i div d, group length ceil((L - g) / d).
  const int g = i % d;
  const int ii = i / d;
  const int lg = (L - g + d - 1) / d;
  int start, end;
  if (!causal) {
    const int left = K / 2;
    const int right = K / 2 + (K % 2) - 1;
    const int leader = std::min((ii / s) * s + s / 2, lg - 1);
    start = std::max(leader - left, 0) + (leader + right >= lg ? lg - right - leader - 1 : 0);
    end = start + K;
  } else {
    const int leader = std::min((ii / s) * s + s - 1, lg - 1);
    start = std::max(leader - K + 1, 0);
    end = std::min(ii + 1, lg);
  }
  std::vector<int> keys;
  for (int j = start; j < end; ++j) keys.push_back(j * d + g);
  return keys;
}

namespace {

// Everything the loops need: per-axis window lists and strides of the token index.
struct Geometry {
  Problem p;
  int n_tokens = 1;
  std::vector<std::vector<int>> windows[3];  // windows[a][i] = key positions on axis a

  explicit Geometry(const openna_problem& cp) : p(normalize(&cp)) {
    n_tokens = static_cast<int>(p.tokens());
    for (int a = 0; a < 3; ++a) {
      const Axis& ax = p.axis[a];
      const int len = a < p.rank ? ax.length : 1;
      windows[a].resize(len);
      for (int i = 0; i < len; ++i) {
        windows[a][i] = a < p.rank ? spec_axis_window(ax.length, ax.kernel, ax.stride,
                                                      ax.dilation, ax.causal, i)
                                   : std::vector<int>{0};
      }
    }
  }
  int len(int a) const { return a < p.rank ? p.axis[a].length : 1; }
  // Token indices of the neighborhood of token t (row-major over the used axes).
  std::vector<int> neighbors(int t) const {
    const int c2 = t % len(2), c1 = (t / len(2)) % len(1), c0 = t / (len(2) * len(1));
    std::vector<int> out;
    for (int j0 : windows[0][c0])
      for (int j1 : windows[1][c1])
        for (int j2 : windows[2][c2]) out.push_back((j0 * len(1) + j1) * len(2) + j2);
    return out;
  }
  std::size_t qi(int b, int t, int h) const {
    return ((static_cast<std::size_t>(b) * n_tokens + t) * p.heads + h) * p.head_dim;
  }
  std::size_t ki(int b, int t, int hk) const {
    return ((static_cast<std::size_t>(b) * n_tokens + t) * p.heads_kv + hk) * p.head_dim;
  }
  std::size_t vi(int b, int t, int hk) const {
    return ((static_cast<std::size_t>(b) * n_tokens + t) * p.heads_kv + hk) * p.head_dim_v;
  }
  std::size_t oi(int b, int t, int h) const {
    return ((static_cast<std::size_t>(b) * n_tokens + t) * p.heads + h) * p.head_dim_v;
  }
  int kv_head(int h) const { return h / (p.heads / p.heads_kv); }
};

// Scores and probabilities of one query row.
struct Row {
  std::vector<int> keys;
  std::vector<double> prob;
  double lse = 0;
};

Row softmax_row(const Geometry& g, const std::vector<double>& q, const std::vector<double>& k,
                int b, int t, int h) {
  Row r;
  r.keys = g.neighbors(t);
  const int hk = g.kv_head(h);
  std::vector<double> s(r.keys.size());
  double mx = -std::numeric_limits<double>::infinity();
  for (std::size_t n = 0; n < r.keys.size(); ++n) {
    double dot = 0;
    const std::size_t qo = g.qi(b, t, h), ko = g.ki(b, r.keys[n], hk);
    for (int d = 0; d < g.p.head_dim; ++d) dot += q[qo + d] * k[ko + d];
    s[n] = static_cast<double>(g.p.scale) * dot;
    mx = std::max(mx, s[n]);
  }
  double sum = 0;
  for (double x : s) sum += std::exp(x - mx);
  r.lse = mx + std::log(sum);
  r.prob.resize(s.size());
  for (std::size_t n = 0; n < s.size(); ++n) r.prob[n] = std::exp(s[n] - r.lse);
  return r;
}

}  // namespace

RefForward reference_forward(const openna_problem& cp, const std::vector<double>& q,
                             const std::vector<double>& k, const std::vector<double>& v) {
  const Geometry g(cp);
  const Problem& p = g.p;
  RefForward f;
  f.out.assign(static_cast<std::size_t>(p.out_elems()), 0.0);
  f.lse.assign(static_cast<std::size_t>(p.lse_elems()), 0.0);
  for (int b = 0; b < p.batch; ++b)
    for (int t = 0; t < g.n_tokens; ++t)
      for (int h = 0; h < p.heads; ++h) {
        const Row r = softmax_row(g, q, k, b, t, h);
        f.lse[(static_cast<std::size_t>(b) * g.n_tokens + t) * p.heads + h] = r.lse;
        const std::size_t oo = g.oi(b, t, h);
        for (std::size_t n = 0; n < r.keys.size(); ++n) {
          const std::size_t vo = g.vi(b, r.keys[n], g.kv_head(h));
          for (int d = 0; d < p.head_dim_v; ++d) f.out[oo + d] += r.prob[n] * v[vo + d];
        }
      }
  return f;
}

RefBackward reference_backward(const openna_problem& cp, const std::vector<double>& q,
                               const std::vector<double>& k, const std::vector<double>& v,
                               const std::vector<double>& d_out) {
  const Geometry g(cp);
  const Problem& p = g.p;
  const RefForward f = reference_forward(cp, q, k, v);
  RefBackward r;
  r.d_q.assign(q.size(), 0.0);
  r.d_k.assign(k.size(), 0.0);
  r.d_v.assign(v.size(), 0.0);
  const double scale = p.scale;
  for (int b = 0; b < p.batch; ++b)
    for (int t = 0; t < g.n_tokens; ++t)
      for (int h = 0; h < p.heads; ++h) {
        const Row row = softmax_row(g, q, k, b, t, h);
        const int hk = g.kv_head(h);
        const std::size_t oo = g.oi(b, t, h), qo = g.qi(b, t, h);
        double big_d = 0;  // D_i = dot(d_out_i, out_i)
        for (int d = 0; d < p.head_dim_v; ++d) big_d += d_out[oo + d] * f.out[oo + d];
        for (std::size_t n = 0; n < row.keys.size(); ++n) {
          const int j = row.keys[n];
          const std::size_t ko = g.ki(b, j, hk), vo = g.vi(b, j, hk);
          double dp = 0;
          for (int d = 0; d < p.head_dim_v; ++d) dp += d_out[oo + d] * v[vo + d];
          const double ds = row.prob[n] * (dp - big_d);
          for (int d = 0; d < p.head_dim; ++d) {
            r.d_q[qo + d] += scale * ds * k[ko + d];
            r.d_k[ko + d] += scale * ds * q[qo + d];
          }
          for (int d = 0; d < p.head_dim_v; ++d) r.d_v[vo + d] += row.prob[n] * d_out[oo + d];
        }
      }
  return r;
}

}  // namespace openna::testing
