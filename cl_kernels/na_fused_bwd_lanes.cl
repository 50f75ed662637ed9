/* The fused backward in "lanes" form, for CPUs, portable OpenCL C 1.2 (see
 * na_fused_fwd_lanes.cl for the form). FlashAttention-2 style on the forward's lse, and no
 * atomics anywhere, so results are bit-identical from run to run. Two ways to get dQ:
 *  - 7 products (DQP=0): na_fused_bwd_dq_lanes, one work-item per query tile (queries in
 *    lanes), walks the union of its windows recomputing P = exp(S - lse), dP = dO V^T,
 *    dS = P (dP - D), dQ += dS K; na_fused_bwd_dkdv_lanes, one work-item per key tile (keys in
 *    lanes), walks its inverse neighborhood (the queries whose windows hold its keys, one box
 *    per tile, from the closed form in na_window.h) for every query head of its kv head:
 *    dV += P^T dO, dK += dS^T Q. Both recompute S and dP.
 *  - 5 products (DQP=1): na_fused_bwd_dkdv_lanes also writes dS K, the partial dQ of every
 *    query of its box from its keys, into a scratch slot per (batch, head, key tile); then
 *    na_fused_bwd_dq_reduce (na_dq_reduce.h) sums, for each query, the slots of the key tiles
 *    its window touches, always in the same (row-major tile) order. The scratch holds
 *    tiles x (largest inverse box) rows of HDP floats per (batch, head).
 * D_i = dot(dO_i, O_i) comes from na_delta.cl. */
#include "na_tile.h"

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
#ifndef DQP
#define DQP 0 /* 1: the dK/dV kernel also writes dQ partials for na_fused_bwd_dq_reduce */
#endif

#define BQ (TQ0 * TQ1 * TQ2)
#define NV (BQ / VW)
#if BQ % VW != 0
#error "VW must divide the tile"
#endif

#include "na_lanes.h" /* needs BQ, NV, VW, TK */

/* The dK/dV kernel's mask tables (below): per axis one lane-mask vector per coordinate of the
   inverse box, which spans at most about TQ + 2 K + 2 S queries (sizes with a margin; a box
   past them, which the window rule should not produce, takes the compare path). */
#define MI0 (TQ0 + 2 * K0 + 2 * S0 + 3)
#define MI1 (TQ1 + 2 * K1 + 2 * S1 + 2)
#define MI2 (TQ2 + 2 * K2 + 2 * S2 + 2)
#ifndef LANES_MASK_TABLES
#define LANES_MASK_TABLES (MI0 <= 64 && MI1 <= 64 && MI2 <= 64)
#endif
/* The dQ kernel's mask tables, as the forward's (sizes MB0..MB2, na_lanes.h). */
#ifndef DQ_MASK_TABLES
#define DQ_MASK_TABLES (MB0 <= 64 && MB1 <= 64 && MB2 <= 64)
#endif
/* 1: the dK/dV kernel forms P from S before the dP product rather than after it (the same
   arithmetic). Early, S's two accumulator sets (LANES_DOT) are summed and consumed before
   dP's are live; late, PoCL 3.1's LLVM kept both sets across the dP product in the 5-product
   kernel and spilled two of its accumulators every iteration (the kernel 6% slower on
   64x64 k13); in the 7-product kernel early measured 2-3% slower in one set of A/B pairs and
   within noise in another, so that kernel keeps the late order it had (docs/PERFORMANCE.md,
   2026-11-26, session 7). */
#ifndef BWD_P_EARLY
#define BWD_P_EARLY DQP
#endif
/* Head-dim vectors per pass of the dK/dV kernel's dQ partials (DQP=1): two where they divide
   the bucket, so each broadcast dS value feeds two FMAs. */
#ifndef DQ_PB
#define DQ_PB (HDP % (2 * VW) == 0 ? 2 : 1)
#endif




/* One query tile of the dQ kernel (below). Always inlined, so the kernel's call with constant
   head dims compiles its own copy with loops of fixed length. */
NA_FN __attribute__((always_inline)) void na_bwd_dq_lanes_tile(
    int wg, __global const stor_t* q, __global const stor_t* k, __global const stor_t* v,
    __global const stor_t* d_out, __global const float* lse, __global const float* delta,
    __global stor_t* d_q, int L0, int L1, int L2, int H, int HKV, int hd, int hdv, float scale,
    int nt0, int nt1, int nt2) {
  const int N = L0 * L1 * L2;
  const int tiles = nt0 * nt1 * nt2;
  const int h = (wg / tiles) % H;
  const int b = wg / (tiles * H);
  const int hk = h / (H / HKV);
  const na_tile t = na_tile_of(wg % tiles, L0, L1, L2, nt0, nt1, nt2, TQ0, TQ1, TQ2);
  if (!t.live) return;
  const int kbox = t.kcnt[0] * t.kcnt[1] * t.kcnt[2];

  /* Per lane: window (key-box coordinates), q (log2 units), dO, lse (log2 units) and D. Rows
     past the valid part of the tile borrow the last valid query's window and row. */
  float qs[HDP * BQ], dos[HDVP * BQ], lse_s[BQ], d_s[BQ];
  int lo_s[3][BQ], hi_s[3][BQ], qoff[BQ], ooff[BQ], qin[BQ];
  for (int row = 0; row < BQ; ++row) {
    ROW_X(row, x0, x1, x2);
    const int x[3] = {x0, x1, x2};
    int in = 1, xc[3];
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      in &= x[a] < t.valid[a];
      xc[a] = NA_MIN(x[a], t.valid[a] - 1);
      const int qi = t.first[a] + xc[a];
      lo_s[a][row] = na_win_start(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
      hi_s[a][row] = na_win_end(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
    }
    const int qrow = (b * N + NA_TOKEN(xc[0], xc[1], xc[2], t.first, t.grp, L1, L2)) * H + h;
    qin[row] = in;
    qoff[row] = qrow * hd;
    ooff[row] = qrow * hdv;
    lse_s[row] = in ? lse[qrow] * LOG2E : 0.0f;
    d_s[row] = in ? delta[qrow] : 0.0f;
  }
  na_rows_to_lanes(qs, q, qoff, qin, hd, scale * LOG2E);
  na_rows_to_lanes(dos, d_out, ooff, qin, hdv, 1.0f);
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
#if DQ_MASK_TABLES
  /* Per axis a table of lane masks over the key box coordinate (na_lanes.h). */
  LANES_QUERY_MASK_TABLES(t);
#endif

  vec_t acc[HDP * NV];
  for (int i = 0; i < HDP * NV; ++i) acc[i] = (vec_t)(0.0f);

  int c0 = 0, c1 = 0, c2 = 0;
  const int row0 = (b * N + NA_TOKEN(0, 0, 0, t.kst, t.grp, L1, L2)) * HKV + hk;
  ROW_WALK_INIT(t, HKV);
  int krow = row0;
  for (int k0 = 0; k0 < kbox; k0 += TK) {
    __global const stor_t* kp[TK];
    __global const stor_t* vp[TK];
    int y0[TK], y1[TK], y2[TK];
    LANES_STEP_KEYS(kp, vp, y0, y1, y2, DQ_MASK_TABLES);
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
#if DQ_MASK_TABLES
        const ivec_t in = LANES_MASK_AT(n, y0[j], y1[j], y2[j]);
#else
        const ivec_t in = NA_IN_BOX(y0[j], y1[j], y2[j], lo[n][0], hi[n][0],
                                   lo[n][1], hi[n][1], lo[n][2], hi[n][2]);
#endif
        const vec_t p = select((vec_t)(0.0f), na_exp2v(s[j][n] - lse2[n]), in);
        s[j][n] = p * (dp[j][n] - dd[n]);
      }
    (void)y1;
    (void)y2;
    LANES_ACCUMULATE(acc, kp, s, hd);
  }

  /* Lanes back to rows: contiguous stores per query row. */
  na_lanes_to_rows(d_q, (__private const float*)acc, qoff, qin, hd, scale);
}

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void na_fused_bwd_dq_lanes(
    __global const stor_t* q, __global const stor_t* k, __global const stor_t* v,
    __global const stor_t* d_out, __global const float* lse, __global const float* delta,
    __global stor_t* d_q, int B, int L0, int L1, int L2, int H, int HKV, int hd, int hdv,
    float scale, int nt0, int nt1, int nt2, __global int* next) {
  /* Tiles from a counter (LANES_FOR_EACH_TILE, na_lanes.h); head dims equal to their buckets
     (the common case, HDX): constant loop lengths. */
  const int total = B * H * nt0 * nt1 * nt2;
  LANES_FOR_EACH_TILE(wg, total, next,
                      na_bwd_dq_lanes_tile(wg, q, k, v, d_out, lse, delta, d_q, L0, L1, L2, H,
                                           HKV, LANES_HD, LANES_HDV, scale, nt0, nt1, nt2));
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

/* One key tile of the dK/dV kernel (below); always inlined like na_bwd_dq_lanes_tile. With
   DQP, the dQ partials go to slot `slot` (of `nslots` per (batch, head)) of its column
   (na_bwd_dkdv_lanes_column): the slot holds the union of the column's inverse boxes, from
   query col_lo on axis 0, and the rows of this tile's box below acc_end on axis 0 (group
   coordinates) already hold the column's earlier tiles' sums, so they are added to (read, add,
   write), the others written. Returns the end of the tile's inverse box on axis 0 (the next
   tile's acc_end), or -1 for a tile past the end of a short dilation group. */
NA_FN __attribute__((always_inline)) int na_bwd_dkdv_lanes_tile(
    int wg, __global const stor_t* q, __global const stor_t* k, __global const stor_t* v,
    __global const stor_t* d_out, __global const float* lse, __global const float* delta,
    __global stor_t* d_k, __global stor_t* d_v, __global float* dq_part, int QB, int nslots,
    int slot, int col_lo, int acc_end, int L0, int L1, int L2, int H, int HKV, int hd, int hdv,
    float scale, int nt0, int nt1, int nt2) {
  const int N = L0 * L1 * L2;
  const int tiles = nt0 * nt1 * nt2;
  const int hk = (wg / tiles) % HKV;
  const int b = wg / (tiles * HKV);
  const int G = H / HKV;
  const na_tile t = na_key_tile_of(wg % tiles, L0, L1, L2, nt0, nt1, nt2);
  if (!t.live) return -1;
  const int qbox = t.kcnt[0] * t.kcnt[1] * t.kcnt[2];
#if DQP
  /* The box's rows (row-major, axis 0 slowest) are one run of the slot's rows; the first
     acc_rows of them hold earlier tiles' partials. */
  const int plane = t.kcnt[1] * t.kcnt[2];
  const int row_off = (t.kst[0] - col_lo) * plane;
  const int acc_rows = NA_MAX(0, acc_end - t.kst[0]) * plane;
#endif

  /* Per lane: the key's coordinates (group coordinates; FAR when past the tile), k scaled into
     log2 units, and v. Rows past the valid part of the tile read the last valid key's row
     (zeroed in the lanes) and write nothing. */
  float ks[HDP * BQ], vs[HDVP * BQ];
  int y_s[3][BQ], koff[BQ], voff[BQ], kin[BQ];
  for (int row = 0; row < BQ; ++row) {
    ROW_X(row, x0, x1, x2);
    const int in = x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2];
    y_s[0][row] = in ? t.first[0] + x0 : FAR;
    y_s[1][row] = t.first[1] + x1;
    y_s[2][row] = t.first[2] + x2;
    const int krow = (b * N + NA_TOKEN(NA_MIN(x0, t.valid[0] - 1), NA_MIN(x1, t.valid[1] - 1),
                                       NA_MIN(x2, t.valid[2] - 1), t.first, t.grp, L1, L2)) *
                         HKV + hk;
    kin[row] = in;
    koff[row] = krow * hd;
    voff[row] = krow * hdv;
  }
  na_rows_to_lanes(ks, k, koff, kin, hd, scale * LOG2E);
  na_rows_to_lanes(vs, v, voff, kin, hdv, 1.0f);
  ivec_t ky[NV][3];
#pragma unroll
  for (int n = 0; n < NV; ++n)
#pragma unroll
    for (int a = 0; a < 3; ++a) ky[n][a] = VLOAD(&y_s[a][n * VW]);
#if DQP
  /* The tile's k rows as they are (row form, zero past hd and past the tile) for dS K. */
  float kr[BQ * HDP];
  for (int row = 0; row < BQ; ++row) {
    int d = 0;
#if VW == 16
    if (kin[row]) /* whole blocks of 16 as vectors */
      for (; d + 16 <= hd; d += 16) vstore16(LOADF16(k, koff[row] + d), 0, &kr[row * HDP + d]);
#endif
    for (; d < HDP; ++d)
      kr[row * HDP + d] = kin[row] && d < hd ? LOADF(k, koff[row] + d) : 0.0f;
  }
#endif

#if LANES_MASK_TABLES
  /* Query (box coordinates y0, y1, y2) sees lane e's key iff on every axis the query's window
     range holds the key's coordinate: per axis a table over the box coordinate, with a zero
     entry (MI0 - 1) for the queries past the box; the query windows are computed once per
     coordinate instead of once per query and step. */
  const int tab = t.kcnt[0] < MI0 - 1 && t.kcnt[1] <= MI1 && t.kcnt[2] <= MI2;
  ivec_t mt0[NV][MI0], mt1[NV][MI1], mt2[NV][MI2];
#define QUERY_SEES(a)                                                                           \
  ((ky[n][a] >= (ivec_t)(na_win_start(t.kst[a] + y, t.glen[a], AX_K(a), AX_S(a), AX_C(a)))) & \
   (ky[n][a] < (ivec_t)(na_win_end(t.kst[a] + y, t.glen[a], AX_K(a), AX_S(a), AX_C(a)))))
  if (tab) {
    LANES_MASK_TABLE(mt0, MI0, t.kcnt[0], QUERY_SEES(0));
    if (RANK >= 2) LANES_MASK_TABLE(mt1, MI1, t.kcnt[1], QUERY_SEES(1));
    if (RANK >= 3) LANES_MASK_TABLE(mt2, MI2, t.kcnt[2], QUERY_SEES(2));
#undef QUERY_SEES
  }
#endif

  vec_t dk[HDP * NV], dv[HDVP * NV];
  for (int i = 0; i < HDP * NV; ++i) dk[i] = (vec_t)(0.0f);
  for (int i = 0; i < HDVP * NV; ++i) dv[i] = (vec_t)(0.0f);

  ROW_WALK_INIT(t, H);
  for (int h = hk * G; h < (hk + 1) * G; ++h) {
#if DQP
    /* This (batch, head, column)'s slot: row i of the box (row-major) at row row_off + i. */
    __global float* part = dq_part + (((b * H + h) * nslots + slot) * QB + row_off) * HDP;
#endif
    int c0 = 0, c1 = 0, c2 = 0;
    const int row0 = (b * N + NA_TOKEN(0, 0, 0, t.kst, t.grp, L1, L2)) * H + h;
    int qrow_next = row0;
    for (int i0 = 0; i0 < qbox; i0 += TK) {
      /* The step's queries: rows, windows (group coordinates), lse (log2 units) and D. */
      __global const stor_t* qp[TK];
      __global const stor_t* op[TK];
      int wlo[TK][3], whi[TK][3];
#if LANES_MASK_TABLES
      int yc[TK][3];
#endif
      float lse2[TK], dd[TK];
#pragma unroll
      for (int j = 0; j < TK; ++j) {
        const int live = i0 + j < qbox;
        const int cc[3] = {c0, c1, c2};
        const int qrow = live ? qrow_next : row0;
        qp[j] = q + qrow * hd;
        op[j] = d_out + qrow * hdv;
        lse2[j] = lse[qrow] * LOG2E;
        dd[j] = delta[qrow];
#if LANES_MASK_TABLES
        yc[j][0] = live ? c0 : MI0 - 1;
        yc[j][1] = c1;
        yc[j][2] = c2;
        if (!tab)
#endif
#pragma unroll
          for (int a = 0; a < 3; ++a) {
            const int qi = t.kst[a] + cc[a];
            wlo[j][a] = live ? na_win_start(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) : FAR;
            whi[j][a] = live ? na_win_end(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) : FAR;
          }
        ROW_WALK_NEXT(t, c0, c1, c2, qrow_next);
      }
      vec_t s[TK][NV], dp[TK][NV];
#pragma unroll
      for (int j = 0; j < TK; ++j)
#pragma unroll
        for (int n = 0; n < NV; ++n) s[j][n] = dp[j][n] = (vec_t)(0.0f);
      /* P (in s's place until dP is known), zero where the key is outside the query's window
         (IN: the lane mask of step row j and lane vector n; the choice of mask is made once
         per step, outside the loop). */
#define BWD_P(IN)                                                                          \
  _Pragma("unroll") for (int j = 0; j < TK; ++j)                                           \
  _Pragma("unroll") for (int n = 0; n < NV; ++n) {                                         \
    const ivec_t in = (IN);                                                                \
    s[j][n] = select((vec_t)(0.0f), na_exp2v(s[j][n] - (vec_t)(lse2[j])), in);             \
  }
#if LANES_MASK_TABLES
#define BWD_P_MASKED                                                                     \
  if (tab) {                                                                             \
    BWD_P(LANES_MASK_AT(n, yc[j][0], yc[j][1], yc[j][2]));                               \
  } else {                                                                               \
    BWD_P(NA_IN_BOX(ky[n][0], ky[n][1], ky[n][2], wlo[j][0], whi[j][0], wlo[j][1],       \
                    whi[j][1], wlo[j][2], whi[j][2]));                                   \
  }
#else
#define BWD_P_MASKED                                                                     \
  BWD_P(NA_IN_BOX(ky[n][0], ky[n][1], ky[n][2], wlo[j][0], whi[j][0], wlo[j][1],         \
                  whi[j][1], wlo[j][2], whi[j][2]))
#endif
      LANES_DOT(s, qp, ks, hd);
#if BWD_P_EARLY
      BWD_P_MASKED;
#endif
      LANES_DOT(dp, op, vs, hdv);
#if !BWD_P_EARLY
      BWD_P_MASKED;
#endif
#undef BWD_P_MASKED
#undef BWD_P
      /* dS = P (dP - D) in s's place, P in dp's. */
#pragma unroll
      for (int j = 0; j < TK; ++j)
#pragma unroll
        for (int n = 0; n < NV; ++n) {
          const vec_t p = s[j][n];
          s[j][n] = p * (dp[j][n] - (vec_t)(dd[j]));
          dp[j][n] = p;
        }
      LANES_ACCUMULATE(dv, op, dp, hdv);
      LANES_ACCUMULATE(dk, qp, s, hd);
#if DQP
      /* dQ partials of the step's queries: row j gets sum over the tile's keys l of
         dS[j][l] k[l] (head dims in lanes; dS read back as broadcast scalars). */
      float dss[TK * BQ];
#pragma unroll
      for (int j = 0; j < TK; ++j)
#pragma unroll
        for (int n = 0; n < NV; ++n) VSTORE(s[j][n], &dss[j * BQ + n * VW]);
      for (int d0 = 0; d0 < hd; d0 += DQ_PB * VW) {
        vec_t a[TK][DQ_PB];
#pragma unroll
        for (int j = 0; j < TK; ++j)
#pragma unroll
          for (int p = 0; p < DQ_PB; ++p) a[j][p] = (vec_t)(0.0f);
        for (int l = 0; l < BQ; ++l) {
          vec_t kv[DQ_PB];
#pragma unroll
          for (int p = 0; p < DQ_PB; ++p) kv[p] = VLOAD(&kr[l * HDP + d0 + p * VW]);
#pragma unroll
          for (int j = 0; j < TK; ++j) {
            const vec_t sj = (vec_t)(dss[j * BQ + l]);
#pragma unroll
            for (int p = 0; p < DQ_PB; ++p) a[j][p] = fma(sj, kv[p], a[j][p]);
          }
        }
#pragma unroll
        for (int j = 0; j < TK; ++j)
          if (i0 + j < qbox) {
            __global float* dst = &part[(i0 + j) * HDP + d0];
            if (i0 + j < acc_rows)
#pragma unroll
              for (int p = 0; p < DQ_PB; ++p) a[j][p] += VLOAD(&dst[p * VW]);
#pragma unroll
            for (int p = 0; p < DQ_PB; ++p) VSTORE(a[j][p], &dst[p * VW]);
          }
      }
#endif
    }
  }

  /* Lanes back to rows: contiguous stores per key row. */
  na_lanes_to_rows(d_k, (__private const float*)dk, koff, kin, hd, scale);
  na_lanes_to_rows(d_v, (__private const float*)dv, voff, kin, hdv, 1.0f);
  return t.kst[0] + t.kcnt[0];
}

#if DQP
/* One column of the 5-product dK/dV kernel: CT consecutive key tiles on axis 0 (inside one
   dilation group; fewer at the group's end) with the same tile on axes 1 and 2, one after the
   other, summing their dQ partials into one slot per (batch, head, column). Neighbouring
   tiles' inverse boxes overlap on axis 0 (by about K - 1 of TQ0 + K - 1 queries), so each
   tile's rows were mostly written by the tile before and are still in cache, and the scratch
   holds about (TQ0 CT + K - 1) / (TQ0 CT) instead of (TQ0 + K - 1) / TQ0 times the queries on
   axis 0. Columns are task `col_task` of B x HKV x columns x (tiles on axes 1, 2). */
NA_FN __attribute__((always_inline)) void na_bwd_dkdv_lanes_column(
    int col_task, __global const stor_t* q, __global const stor_t* k, __global const stor_t* v,
    __global const stor_t* d_out, __global const float* lse, __global const float* delta,
    __global stor_t* d_k, __global stor_t* d_v, __global float* dq_part, int QB, int CT,
    int L0, int L1, int L2, int H, int HKV, int hd, int hdv, float scale, int nt0, int nt1,
    int nt2) {
  const int nt12 = nt1 * nt2;
  const int tpg = nt0 / DIL0, cpg = (tpg + CT - 1) / CT, ncol = DIL0 * cpg;
  const int t12 = col_task % nt12;
  const int col = (col_task / nt12) % ncol;
  const int bk = col_task / (nt12 * ncol); /* b * HKV + hk */
  const int grp = col / cpg, w = (col % cpg) * CT;
  const int t0 = grp * tpg + w, t0_end = grp * tpg + NA_MIN(w + CT, tpg);
  const int col_lo = na_key_tile_of(t0 * nt12 + t12, L0, L1, L2, nt0, nt1, nt2).kst[0];
  int acc_end = col_lo;
  for (int ti = t0; ti < t0_end && acc_end >= 0; ++ti)
    acc_end = na_bwd_dkdv_lanes_tile((bk * nt0 + ti) * nt12 + t12, q, k, v, d_out, lse, delta,
                                     d_k, d_v, dq_part, QB, ncol * nt12, col * nt12 + t12,
                                     col_lo, acc_end, L0, L1, L2, H, HKV, hd, hdv, scale, nt0,
                                     nt1, nt2);
}
#endif

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void na_fused_bwd_dkdv_lanes(
    __global const stor_t* q, __global const stor_t* k, __global const stor_t* v,
    __global const stor_t* d_out, __global const float* lse, __global const float* delta,
    __global stor_t* d_k, __global stor_t* d_v,
#if DQP
    /* dQ partials: QB rows of HDP floats per slot, a slot per (batch, head, column of CT key
       tiles on axis 0) */
    __global float* dq_part, int QB, int CT,
#endif
    int B, int L0, int L1, int L2, int H, int HKV, int hd, int hdv, float scale, int nt0,
    int nt1, int nt2, __global int* next) {
  /* Key tiles (DQP: columns of them) from a counter (LANES_FOR_EACH_TILE, na_lanes.h); head
     dims equal to their buckets (the common case, HDX): constant loop lengths. */
#if DQP
  /* A column is CT tiles: LANES_CHUNK / CT columns per counter step (at least one). */
  const int total = B * HKV * DIL0 * ((nt0 / DIL0 + CT - 1) / CT) * nt1 * nt2;
  LANES_FOR_EACH_TILE_BY(task, total, next, NA_MAX(1, LANES_CHUNK / CT),
                         na_bwd_dkdv_lanes_column(task, q, k, v, d_out, lse, delta, d_k, d_v,
                                                  dq_part, QB, CT, L0, L1, L2, H, HKV,
                                                  LANES_HD, LANES_HDV, scale, nt0, nt1, nt2));
#else
  const int total = B * HKV * nt0 * nt1 * nt2;
  LANES_FOR_EACH_TILE(wg, total, next,
                      na_bwd_dkdv_lanes_tile(wg, q, k, v, d_out, lse, delta, d_k, d_v, 0, 0, 0,
                                             0, 0, 0, L0, L1, L2, H, HKV, LANES_HD, LANES_HDV,
                                             scale, nt0, nt1, nt2));
#endif
}

#include "na_dq_reduce.h" /* na_fused_bwd_dq_reduce, DQP=1's second pass */
