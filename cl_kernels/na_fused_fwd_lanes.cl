/* The fused forward in "lanes" form, for CPUs (PoCL and other CPU OpenCL drivers), portable
 * OpenCL C 1.2. Same tiling as na_fused_fwd.cl (a box of queries inside one dilation group, the
 * union of their windows visited in chunks of TK keys, online softmax, out and lse written
 * once), but one work-item per tile with the tile's queries in the lanes of VW-wide vectors:
 * every score, max, exp2 and accumulator update is lane-parallel over queries, so no horizontal
 * reductions or transposes are needed, and keys and values are read row by row through the
 * cache (on a CPU, local memory is that same cache) as broadcast scalars. */
#include "na_tile.h"

#ifndef TQ0
#define TQ0 4 /* query tile extent on axis 0 (group coordinates) */
#endif
#ifndef TQ1
#define TQ1 4 /* ... on axis 1 */
#endif
#ifndef TQ2
#define TQ2 1 /* ... on axis 2 */
#endif
#ifndef TK
#define TK 8 /* keys per step: scores of TK keys x the tile stay in registers */
#endif
#ifndef HDP
#define HDP HD /* head_dim bucket (bounds the private query copy) */
#endif
#ifndef HDVP
#define HDVP HDV /* head_dim_v bucket (bounds the private accumulator) */
#endif

#define BQ (TQ0 * TQ1 * TQ2)
#define NV (BQ / VW) /* vectors per tile */
#if BQ % VW != 0
#error "VW must divide the query tile"
#endif

#include "na_lanes.h" /* needs BQ, NV, VW, TK */

/* Mask tables (below) where every axis's key box is short (sizes MB0..MB2, na_lanes.h). */
#ifndef LANES_MASK_TABLES
#define LANES_MASK_TABLES (MB0 <= 64 && MB1 <= 64 && MB2 <= 64)
#endif



/* One (batch, head, query tile): wg is its index in the launch's order. Always inlined, so a
   call with constant head dims (the kernel below) compiles its own copy with fixed loop counts. */
NA_FN __attribute__((always_inline)) void na_fwd_lanes_tile(
    int wg, __global const stor_t* q, __global const stor_t* k, __global const stor_t* v,
    __global stor_t* out, __global float* lse, int L0, int L1, int L2, int H, int HKV, int hd,
    int hdv, float scale, int nt0, int nt1, int nt2) {
  const int N = L0 * L1 * L2;
  const int tiles = nt0 * nt1 * nt2;
  const int h = (wg / tiles) % H;
  const int b = wg / (tiles * H);
  const int hk = h / (H / HKV);
  const na_tile t = na_tile_of(wg % tiles, L0, L1, L2, nt0, nt1, nt2, TQ0, TQ1, TQ2);
  if (!t.live) return;
  const int kbox = t.kcnt[0] * t.kcnt[1] * t.kcnt[2];

  /* Per-lane windows relative to the key box, and the query tile transposed (lanes = rows).
     Rows past the valid part of the tile borrow the last valid query's window and row (their
     lanes are zero and nothing is written for them). */
  float qs[HDP * BQ];
  int lo_s[3][BQ], hi_s[3][BQ], qrows[BQ], qoff[BQ], ooff[BQ], qin[BQ];
  for (int row = 0; row < BQ; ++row) {
    const int x[3] = {row / (TQ1 * TQ2), (row / TQ2) % TQ1, row % TQ2};
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
    qrows[row] = qrow;
    qoff[row] = qrow * hd;
    ooff[row] = qrow * hdv;
  }
  na_rows_to_lanes(qs, q, qoff, qin, hd, scale * LOG2E);
  ivec_t lo[NV][3], hi[NV][3];
#pragma unroll
  for (int n = 0; n < NV; ++n)
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      lo[n][a] = VLOAD(&lo_s[a][n * VW]);
      hi[n][a] = VLOAD(&hi_s[a][n * VW]);
    }

#if LANES_MASK_TABLES
  /* The window test is separable: key (y0, y1, y2) is in lane e's window iff y_a is in its
     range on every axis. Per axis a table of lane masks, one vector per box coordinate (and a
     zero entry past the box for the keys past its end), so a key's mask is one or two ANDs of
     loaded vectors instead of two compares per axis. */
  LANES_QUERY_MASK_TABLES(t);
#endif

  vec_t acc[HDVP * NV], m[NV], l[NV];
  LANES_FWD_INIT(acc, m, l);

  /* Box coordinates of the next key and its K/V row, both advanced by counting (ROW_WALK). */
  int c0 = 0, c1 = 0, c2 = 0;
  const int row0 = (b * N + NA_TOKEN(0, 0, 0, t.kst, t.grp, L1, L2)) * HKV + hk;
  ROW_WALK_INIT(t, HKV);
  int krow = row0;
  for (int k0 = 0; k0 < kbox; k0 += TK) {
    /* The step's keys: their k and v rows, and box coordinates (LANES_STEP_KEYS). */
    __global const stor_t* kp[TK];
    __global const stor_t* vp[TK];
    int y0[TK], y1[TK], y2[TK];
    LANES_STEP_KEYS(kp, vp, y0, y1, y2, LANES_MASK_TABLES);
    /* Scores: s[j][n] = sum_d k[j][d] * q[lanes][d]. */
    vec_t s[TK][NV];
#pragma unroll
    for (int j = 0; j < TK; ++j)
#pragma unroll
      for (int n = 0; n < NV; ++n) s[j][n] = (vec_t)(0.0f);
    LANES_DOT(s, kp, qs, hd);
    /* Mask, then the online softmax update, lane by lane. */
    vec_t alpha[NV];
#pragma unroll
    for (int n = 0; n < NV; ++n) {
#pragma unroll
      for (int j = 0; j < TK; ++j) {
#if LANES_MASK_TABLES
        const ivec_t in = LANES_MASK_AT(n, y0[j], y1[j], y2[j]);
#else
        const ivec_t in = NA_IN_BOX(y0[j], y1[j], y2[j], lo[n][0], hi[n][0],
                                   lo[n][1], hi[n][1], lo[n][2], hi[n][2]);
#endif
        s[j][n] = select((vec_t)(-INFINITY), s[j][n], in);
      }
      LANES_SOFTMAX_UPDATE(s, n, m, l, alpha);
    }
    (void)y1;
    (void)y2;
    /* O = diag(alpha) O + P V (the rescale is skipped once every lane's maximum settled). */
    int rescale = 0;
#pragma unroll
    for (int n = 0; n < NV; ++n) rescale |= VANY(alpha[n] != (vec_t)(1.0f));
    /* Unrolled where hdv is a constant (the kernel below): the compiler then interleaves
       several dimensions' TK-long FMA chains and drops the loop's index arithmetic (PoCL 3.1,
       small-cpu, one thread, fastest of 50 calls: 0.538 -> 0.483 ms). */
#pragma unroll
    for (int dv = 0; dv < hdv; ++dv) {
      float vd[TK];
#pragma unroll
      for (int j = 0; j < TK; ++j) vd[j] = LOADF(vp[j], dv);
#pragma unroll
      for (int n = 0; n < NV; ++n) {
        vec_t a = rescale ? acc[dv * NV + n] * alpha[n] : acc[dv * NV + n];
#pragma unroll
        for (int j = 0; j < TK; ++j) a = fma((vec_t)(vd[j]), s[j][n], a);
        acc[dv * NV + n] = a;
      }
    }
  }

  LANES_FWD_STORE(acc, m, l, out, lse, ooff, qin, qrows, hdv);
}

/* Tiles from a counter (LANES_FOR_EACH_TILE, na_lanes.h). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void na_fused_fwd_lanes(
    __global const stor_t* q, __global const stor_t* k, __global const stor_t* v,
    __global stor_t* out, __global float* lse, int B, int L0, int L1, int L2, int H, int HKV,
    int hd, int hdv, float scale, int nt0, int nt1, int nt2, __global int* next) {
  const int total = B * H * nt0 * nt1 * nt2;
  /* Head dims equal to their buckets (the common case, HDX) run the tile with loops of
     constant length, which the P.V loop's unrolling needs (small-cpu, one PoCL thread,
     fastest of 50 calls: 0.551 -> 0.538 ms before that unrolling). */
  LANES_FOR_EACH_TILE(wg, total, next,
                      na_fwd_lanes_tile(wg, q, k, v, out, lse, L0, L1, L2, H, HKV, LANES_HD,
                                        LANES_HDV, scale, nt0, nt1, nt2));
}
