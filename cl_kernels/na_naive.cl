/* The naive variant: one work-item per (batch, token, head), straight loops over the window,
 * online softmax in registers. Correct for every option of SPEC.md and never fast; the baseline
 * every other variant is measured against. Backward: a D_i pass, a dQ kernel over windows and a
 * dK/dV kernel over inverse windows (one work-item per key and kv-head, summing every query head
 * of its group): no atomics, so results are bit-identical from run to run. */
#include "na_common.h"

/* Token t (row-major over the used axes) to coordinates. */
#define DECOMPOSE(t, L1, L2, c0, c1, c2) \
  const int c2 = (t) % (L2);             \
  const int c1 = ((t) / (L2)) % (L1);    \
  const int c0 = (t) / ((L2) * (L1))

__kernel void na_naive_fwd(__global const stor_t* q, __global const stor_t* k,
                           __global const stor_t* v, __global stor_t* out, __global float* lse,
                           int B, int L0, int L1, int L2, int H, int HKV, float scale) {
  const int N = L0 * L1 * L2;
  const int gid = get_global_id(0);
  if (gid >= B * N * H) return;
  const int h = gid % H;
  const int t = (gid / H) % N;
  const int b = gid / (H * N);
  const int hk = h / (H / HKV);
  DECOMPOSE(t, L1, L2, c0, c1, c2);
  int f0, n0, f1, n1, f2, n2;
  na_axis_window(c0, L0, K0, S0, DIL0, CAUSAL0, &f0, &n0);
  na_axis_window(c1, L1, K1, S1, DIL1, CAUSAL1, &f1, &n1);
  na_axis_window(c2, L2, K2, S2, DIL2, CAUSAL2, &f2, &n2);

  float qv[HD];
  const int qo = ((b * N + t) * H + h) * HD;
  for (int d = 0; d < HD; ++d) qv[d] = LOADF(q, qo + d) * scale;
  float acc[HDV];
  for (int d = 0; d < HDV; ++d) acc[d] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  for (int a0 = 0; a0 < n0; ++a0)
    for (int a1 = 0; a1 < n1; ++a1)
      for (int a2 = 0; a2 < n2; ++a2) {
        const int j = ((f0 + a0 * DIL0) * L1 + (f1 + a1 * DIL1)) * L2 + (f2 + a2 * DIL2);
        const int ko = ((b * N + j) * HKV + hk) * HD;
        float s = 0.0f;
        for (int d = 0; d < HD; ++d) s += qv[d] * LOADF(k, ko + d);
        const float m_new = fmax(m, s);
        const float corr = exp(m - m_new);
        const float p = exp(s - m_new);
        l = l * corr + p;
        const int vo = ((b * N + j) * HKV + hk) * HDV;
        for (int d = 0; d < HDV; ++d) acc[d] = acc[d] * corr + p * LOADF(v, vo + d);
        m = m_new;
      }
  const float inv_l = 1.0f / l;
  const int oo = ((b * N + t) * H + h) * HDV;
  for (int d = 0; d < HDV; ++d) STOREF(out, oo + d, acc[d] * inv_l);
  if (lse) lse[(b * N + t) * H + h] = m + log(l);
}

/* D_i = dot(d_out_i, out_i) per (batch, token, head). */
__kernel void na_naive_delta(__global const stor_t* out, __global const stor_t* d_out,
                             __global float* delta, int total) {
  const int gid = get_global_id(0);
  if (gid >= total) return;
  float s = 0.0f;
  for (int d = 0; d < HDV; ++d) s += LOADF(out, gid * HDV + d) * LOADF(d_out, gid * HDV + d);
  delta[gid] = s;
}

__kernel void na_naive_bwd_dq(__global const stor_t* q, __global const stor_t* k,
                              __global const stor_t* v, __global const stor_t* d_out,
                              __global const float* lse, __global const float* delta,
                              __global stor_t* d_q, int B, int L0, int L1, int L2, int H,
                              int HKV, float scale) {
  const int N = L0 * L1 * L2;
  const int gid = get_global_id(0);
  if (gid >= B * N * H) return;
  const int h = gid % H;
  const int t = (gid / H) % N;
  const int b = gid / (H * N);
  const int hk = h / (H / HKV);
  DECOMPOSE(t, L1, L2, c0, c1, c2);
  int f0, n0, f1, n1, f2, n2;
  na_axis_window(c0, L0, K0, S0, DIL0, CAUSAL0, &f0, &n0);
  na_axis_window(c1, L1, K1, S1, DIL1, CAUSAL1, &f1, &n1);
  na_axis_window(c2, L2, K2, S2, DIL2, CAUSAL2, &f2, &n2);

  float qv[HD], dq[HD], dov[HDV];
  const int qo = ((b * N + t) * H + h) * HD;
  const int oo = ((b * N + t) * H + h) * HDV;
  for (int d = 0; d < HD; ++d) {
    qv[d] = LOADF(q, qo + d);
    dq[d] = 0.0f;
  }
  for (int d = 0; d < HDV; ++d) dov[d] = LOADF(d_out, oo + d);
  const float lse_i = lse[gid];
  const float delta_i = delta[gid];

  for (int a0 = 0; a0 < n0; ++a0)
    for (int a1 = 0; a1 < n1; ++a1)
      for (int a2 = 0; a2 < n2; ++a2) {
        const int j = ((f0 + a0 * DIL0) * L1 + (f1 + a1 * DIL1)) * L2 + (f2 + a2 * DIL2);
        const int ko = ((b * N + j) * HKV + hk) * HD;
        const int vo = ((b * N + j) * HKV + hk) * HDV;
        float s = 0.0f, dp = 0.0f;
        for (int d = 0; d < HD; ++d) s += qv[d] * LOADF(k, ko + d);
        for (int d = 0; d < HDV; ++d) dp += dov[d] * LOADF(v, vo + d);
        const float p = exp(s * scale - lse_i);
        const float ds = p * (dp - delta_i) * scale;
        for (int d = 0; d < HD; ++d) dq[d] += ds * LOADF(k, ko + d);
      }
  for (int d = 0; d < HD; ++d) STOREF(d_q, qo + d, dq[d]);
}

__kernel void na_naive_bwd_dkdv(__global const stor_t* q, __global const stor_t* k,
                                __global const stor_t* v, __global const stor_t* d_out,
                                __global const float* lse, __global const float* delta,
                                __global stor_t* d_k, __global stor_t* d_v, int B, int L0, int L1,
                                int L2, int H, int HKV, float scale) {
  const int N = L0 * L1 * L2;
  const int gid = get_global_id(0);
  if (gid >= B * N * HKV) return;
  const int hk = gid % HKV;
  const int j = (gid / HKV) % N;
  const int b = gid / (HKV * N);
  const int G = H / HKV;
  DECOMPOSE(j, L1, L2, c0, c1, c2);
  int f0, n0, f1, n1, f2, n2;
  na_axis_inverse(c0, L0, K0, S0, DIL0, CAUSAL0, &f0, &n0);
  na_axis_inverse(c1, L1, K1, S1, DIL1, CAUSAL1, &f1, &n1);
  na_axis_inverse(c2, L2, K2, S2, DIL2, CAUSAL2, &f2, &n2);

  float kv[HD], vv[HDV], dk[HD], dv[HDV];
  const int ko = gid * HD;
  const int vo = gid * HDV;
  for (int d = 0; d < HD; ++d) {
    kv[d] = LOADF(k, ko + d);
    dk[d] = 0.0f;
  }
  for (int d = 0; d < HDV; ++d) {
    vv[d] = LOADF(v, vo + d);
    dv[d] = 0.0f;
  }
  for (int h = hk * G; h < (hk + 1) * G; ++h)
    for (int a0 = 0; a0 < n0; ++a0)
      for (int a1 = 0; a1 < n1; ++a1)
        for (int a2 = 0; a2 < n2; ++a2) {
          const int i = ((f0 + a0 * DIL0) * L1 + (f1 + a1 * DIL1)) * L2 + (f2 + a2 * DIL2);
          const int row = (b * N + i) * H + h;
          float s = 0.0f, dp = 0.0f;
          for (int d = 0; d < HD; ++d) s += LOADF(q, row * HD + d) * kv[d];
          for (int d = 0; d < HDV; ++d) dp += LOADF(d_out, row * HDV + d) * vv[d];
          const float p = exp(s * scale - lse[row]);
          const float ds = p * (dp - delta[row]) * scale;
          for (int d = 0; d < HD; ++d) dk[d] += ds * LOADF(q, row * HD + d);
          for (int d = 0; d < HDV; ++d) dv[d] += p * LOADF(d_out, row * HDV + d);
        }
  for (int d = 0; d < HD; ++d) STOREF(d_k, ko + d, dk[d]);
  for (int d = 0; d < HDV; ++d) STOREF(d_v, vo + d, dv[d]);
}
