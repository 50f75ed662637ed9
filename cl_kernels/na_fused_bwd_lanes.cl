/* The fused backward in "lanes" form, for CPUs, portable OpenCL C 1.2 (see
 * na_fused_fwd_lanes.cl for the form). FlashAttention-2 style on the forward's lse, and no
 * atomics anywhere, so results are bit-identical from run to run:
 *  - na_fused_bwd_dq_lanes: one work-item per query tile (queries in lanes) walks the union of
 *    its windows, recomputing P = exp(S - lse), dP = dO V^T, dS = P (dP - D), dQ += dS K;
 *  - na_fused_bwd_dkdv_lanes: one work-item per key tile (keys in lanes) walks its inverse
 *    neighborhood (the queries whose windows hold its keys, one box per tile, from the closed
 *    form in na_window.h) for every query head of its kv head: dV += P^T dO, dK += dS^T Q.
 * D_i = dot(dO_i, O_i) comes from na_fused_delta in na_fused_bwd.cl. */
#include "na_tile.h"
#include "na_lanes.h"

#ifndef TQ0
#define TQ0 4 /* tile extent on axis 0 (query tiles for dQ, key tiles for dK/dV) */
#endif
#ifndef TQ1
#define TQ1 4 /* ... on axis 1 */
#endif
#ifndef TQ2
#define TQ2 1 /* ... on axis 2 */
#endif
#ifndef TK
#define TK 8 /* rows of the other side per step (keys for dQ, queries for dK/dV) */
#endif
#ifndef HDP
#define HDP HD
#endif
#ifndef HDVP
#define HDVP HDV
#endif

#define BQ (TQ0 * TQ1 * TQ2)
#define NV (BQ / VW)
#if BQ % VW != 0
#error "VW must divide the tile"
#endif



/* Row r of a tile to its box coordinates. */

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void na_fused_bwd_dq_lanes(
    __global const stor_t* q, __global const stor_t* k, __global const stor_t* v,
    __global const stor_t* d_out, __global const float* lse, __global const float* delta,
    __global stor_t* d_q, int B, int L0, int L1, int L2, int H, int HKV, int hd, int hdv,
    float scale, int nt0, int nt1, int nt2) {
  const int N = L0 * L1 * L2;
  (void)B; /* the tiled backward kernels share one argument list (variant.hpp) */
  const int tiles = nt0 * nt1 * nt2;
  const int wg = get_group_id(0);
  const int h = (wg / tiles) % H;
  const int b = wg / (tiles * H);
  const int hk = h / (H / HKV);
  const na_tile t = na_tile_of(wg % tiles, L0, L1, L2, nt0, nt1, nt2, TQ0, TQ1, TQ2);
  if (!t.live) return;
  const int kbox = t.kcnt[0] * t.kcnt[1] * t.kcnt[2];

  /* Per lane: window (key-box coordinates), q (log2 units), dO, lse (log2 units) and D. */
  float qs[HDP * BQ], dos[HDVP * BQ], lse_s[BQ], d_s[BQ];
  int lo_s[3][BQ], hi_s[3][BQ];
  const float qscale = scale * LOG2E;
  for (int row = 0; row < BQ; ++row) {
    ROW_X(row, x0, x1, x2);
    const int x[3] = {x0, x1, x2};
    int in = 1;
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      in &= x[a] < t.valid[a];
      const int qi = t.first[a] + NA_MIN(x[a], t.valid[a] - 1);
      lo_s[a][row] = na_win_start(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
      hi_s[a][row] = na_win_end(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
    }
    const int qrow = (b * N + NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2)) * H + h;
    for (int d = 0; d < hd; ++d) qs[d * BQ + row] = in ? LOADF(q, qrow * hd + d) * qscale : 0.0f;
    for (int d = 0; d < hdv; ++d) dos[d * BQ + row] = in ? LOADF(d_out, qrow * hdv + d) : 0.0f;
    lse_s[row] = in ? lse[qrow] * LOG2E : 0.0f;
    d_s[row] = in ? delta[qrow] : 0.0f;
  }
  ivec_t lo[NV][3], hi[NV][3];
  vec_t lse2[NV], dd[NV];
#pragma unroll
  for (int n = 0; n < NV; ++n) {
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      lo[n][a] = VLOAD(&lo_s[a][n * VW]);
      hi[n][a] = VLOAD(&hi_s[a][n * VW]);
    }
    lse2[n] = VLOAD(&lse_s[n * VW]);
    dd[n] = VLOAD(&d_s[n * VW]);
  }

  vec_t acc[HDP * NV];
  for (int i = 0; i < HDP * NV; ++i) acc[i] = (vec_t)(0.0f);

  int c0 = 0, c1 = 0, c2 = 0;
  for (int k0 = 0; k0 < kbox; k0 += TK) {
    __global const stor_t* kp[TK];
    __global const stor_t* vp[TK];
    int y0[TK], y1[TK], y2[TK];
#pragma unroll
    for (int j = 0; j < TK; ++j) {
      const int live = k0 + j < kbox;
      const int tok = live ? NA_TOKEN(c0, c1, c2, t.kst, t.grp, L1, L2)
                           : NA_TOKEN(0, 0, 0, t.kst, t.grp, L1, L2);
      kp[j] = k + ((b * N + tok) * HKV + hk) * hd;
      vp[j] = v + ((b * N + tok) * HKV + hk) * hdv;
      y0[j] = live ? c0 : FAR;
      y1[j] = c1;
      y2[j] = c2;
      NEXT_COORDS(c0, c1, c2, t.kcnt[1], t.kcnt[2]);
    }
    vec_t s[TK][NV], dp[TK][NV];
#pragma unroll
    for (int j = 0; j < TK; ++j)
#pragma unroll
      for (int n = 0; n < NV; ++n) s[j][n] = dp[j][n] = (vec_t)(0.0f);
    LANES_DOT(s, kp, qs, hd);
    LANES_DOT(dp, vp, dos, hdv);
    /* dS = P (dP - D), zero outside each lane's window. */
#pragma unroll
    for (int j = 0; j < TK; ++j)
#pragma unroll
      for (int n = 0; n < NV; ++n) {
        const ivec_t in = NA_IN_BOX(y0[j], y1[j], y2[j], lo[n][0], hi[n][0],
                                   lo[n][1], hi[n][1], lo[n][2], hi[n][2]);
        const vec_t p = select((vec_t)(0.0f), na_exp2v(s[j][n] - lse2[n]), in);
        s[j][n] = p * (dp[j][n] - dd[n]);
      }
    (void)y1;
    (void)y2;
    LANES_ACCUMULATE(acc, kp, s, hd);
  }

  /* Lanes back to rows (as in the dK/dV kernel below): contiguous stores per query row. */
  for (int i = 0; i < HDP * NV; ++i) acc[i] *= scale;
  __private const float* dqt = (__private const float*)acc;
  for (int row = 0; row < BQ; ++row) {
    ROW_X(row, x0, x1, x2);
    if (x0 >= t.valid[0] || x1 >= t.valid[1] || x2 >= t.valid[2]) continue;
    const int qrow = (b * N + NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2)) * H + h;
    for (int d = 0; d < hd; ++d) STOREF(d_q, qrow * hd + d, dqt[d * BQ + row]);
  }
}

/* Key tiles: the same boxes as query tiles (TQ0 x TQ1 x TQ2 inside one dilation group), with
   the inverse neighborhood as their "key range": the queries that see any key of the tile. */
NA_FN na_tile na_key_tile_of(int tile, int L0, int L1, int L2, int nt0, int nt1, int nt2) {
  na_tile t = na_tile_of(tile, L0, L1, L2, nt0, nt1, nt2, TQ0, TQ1, TQ2);
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const int lo = na_inv_lo(t.first[a], t.glen[a], AX_K(a), AX_S(a), AX_C(a));
    const int hi =
        na_inv_hi(t.first[a] + t.valid[a] - 1, t.glen[a], AX_K(a), AX_S(a), AX_C(a));
    t.kst[a] = lo;
    t.kcnt[a] = hi - lo + 1;
  }
  return t;
}

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void na_fused_bwd_dkdv_lanes(
    __global const stor_t* q, __global const stor_t* k, __global const stor_t* v,
    __global const stor_t* d_out, __global const float* lse, __global const float* delta,
    __global stor_t* d_k, __global stor_t* d_v, int B, int L0, int L1, int L2, int H, int HKV,
    int hd, int hdv, float scale, int nt0, int nt1, int nt2) {
  const int N = L0 * L1 * L2;
  (void)B; /* the tiled backward kernels share one argument list (variant.hpp) */
  const int tiles = nt0 * nt1 * nt2;
  const int wg = get_group_id(0);
  const int hk = (wg / tiles) % HKV;
  const int b = wg / (tiles * HKV);
  const int G = H / HKV;
  const na_tile t = na_key_tile_of(wg % tiles, L0, L1, L2, nt0, nt1, nt2);
  if (!t.live) return;
  const int qbox = t.kcnt[0] * t.kcnt[1] * t.kcnt[2];

  /* Per lane: the key's coordinates (group coordinates; FAR when past the tile), k scaled into
     log2 units, and v. */
  float ks[HDP * BQ], vs[HDVP * BQ];
  int y_s[3][BQ];
  const float kscale = scale * LOG2E;
  for (int row = 0; row < BQ; ++row) {
    ROW_X(row, x0, x1, x2);
    const int in = x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2];
    y_s[0][row] = in ? t.first[0] + x0 : FAR;
    y_s[1][row] = t.first[1] + x1;
    y_s[2][row] = t.first[2] + x2;
    const int krow = (b * N + NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2)) * HKV + hk;
    for (int d = 0; d < hd; ++d) ks[d * BQ + row] = in ? LOADF(k, krow * hd + d) * kscale : 0.0f;
    for (int d = 0; d < hdv; ++d) vs[d * BQ + row] = in ? LOADF(v, krow * hdv + d) : 0.0f;
  }
  ivec_t ky[NV][3];
#pragma unroll
  for (int n = 0; n < NV; ++n)
#pragma unroll
    for (int a = 0; a < 3; ++a) ky[n][a] = VLOAD(&y_s[a][n * VW]);

  vec_t dk[HDP * NV], dv[HDVP * NV];
  for (int i = 0; i < HDP * NV; ++i) dk[i] = (vec_t)(0.0f);
  for (int i = 0; i < HDVP * NV; ++i) dv[i] = (vec_t)(0.0f);

  for (int h = hk * G; h < (hk + 1) * G; ++h) {
    int c0 = 0, c1 = 0, c2 = 0;
    for (int i0 = 0; i0 < qbox; i0 += TK) {
      /* The step's queries: rows, windows (group coordinates), lse (log2 units) and D. */
      __global const stor_t* qp[TK];
      __global const stor_t* op[TK];
      int wlo[TK][3], whi[TK][3];
      float lse2[TK], dd[TK];
#pragma unroll
      for (int j = 0; j < TK; ++j) {
        const int live = i0 + j < qbox;
        const int cc[3] = {c0, c1, c2};
        const int tok = live ? NA_TOKEN(c0, c1, c2, t.kst, t.grp, L1, L2)
                             : NA_TOKEN(0, 0, 0, t.kst, t.grp, L1, L2);
        const int qrow = (b * N + tok) * H + h;
        qp[j] = q + qrow * hd;
        op[j] = d_out + qrow * hdv;
        lse2[j] = lse[qrow] * LOG2E;
        dd[j] = delta[qrow];
#pragma unroll
        for (int a = 0; a < 3; ++a) {
          const int qi = t.kst[a] + cc[a];
          wlo[j][a] = live ? na_win_start(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) : FAR;
          whi[j][a] = live ? na_win_end(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) : FAR;
        }
        NEXT_COORDS(c0, c1, c2, t.kcnt[1], t.kcnt[2]);
      }
      vec_t s[TK][NV], dp[TK][NV];
#pragma unroll
      for (int j = 0; j < TK; ++j)
#pragma unroll
        for (int n = 0; n < NV; ++n) s[j][n] = dp[j][n] = (vec_t)(0.0f);
      LANES_DOT(s, qp, ks, hd);
      LANES_DOT(dp, op, vs, hdv);
      /* P (kept in dp's place) and dS (in s's place), zero where the key is outside the
         query's window. */
#pragma unroll
      for (int j = 0; j < TK; ++j)
#pragma unroll
        for (int n = 0; n < NV; ++n) {
          const ivec_t in = NA_IN_BOX(ky[n][0], ky[n][1], ky[n][2], wlo[j][0], whi[j][0],
                                     wlo[j][1], whi[j][1], wlo[j][2], whi[j][2]);
          const vec_t p = select((vec_t)(0.0f), na_exp2v(s[j][n] - (vec_t)(lse2[j])), in);
          s[j][n] = p * (dp[j][n] - (vec_t)(dd[j]));
          dp[j][n] = p;
        }
      LANES_ACCUMULATE(dv, op, dp, hdv);
      LANES_ACCUMULATE(dk, qp, s, hd);
    }
  }

  /* Lanes back to rows through the accumulators' own memory (dk[d * NV + n] lane e is float
     d * BQ + row), so each key row's stores are contiguous. */
  for (int i = 0; i < HDP * NV; ++i) dk[i] *= scale;
  __private const float* dkt = (__private const float*)dk;
  __private const float* dvt = (__private const float*)dv;
  for (int row = 0; row < BQ; ++row) {
    ROW_X(row, x0, x1, x2);
    if (x0 >= t.valid[0] || x1 >= t.valid[1] || x2 >= t.valid[2]) continue;
    const int krow = (b * N + NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2)) * HKV + hk;
    for (int d = 0; d < hd; ++d) STOREF(d_k, krow * hd + d, dkt[d * BQ + row]);
    for (int d = 0; d < hdv; ++d) STOREF(d_v, krow * hdv + d, dvt[d * BQ + row]);
  }
}
