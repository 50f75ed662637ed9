/* The fused forward (flash-attention style), portable OpenCL C 1.2 with no extensions.
 * A work-group owns a box of queries on the grid inside one dilation group (TQ0 x TQ1 x TQ2) and
 * one (batch, head). The keys its queries see form one box too; it is visited in chunks of TK keys
 * staged through local memory: S = Q K^T for the chunk (masked to each query's window), an online
 * softmax update per row, O += P V. Scores never leave local memory; out and lse are written once.
 *
 * Work-items form a TR x TC grid: item (r, c) owns query rows [r*RQ, r*RQ + RQ); in the S phase
 * the RK = TK / TC consecutive keys from c*RK, in the O phase RD = HDVP / TC value columns in
 * vectors of VW interleaved across the TC items (conflict-free local reads on GPUs). Register
 * tiles are VW-wide vectors: explicit SIMD for CPU compilers, 16-byte local loads on GPUs.
 * Scores are kept in log2 units (q is pre-scaled by scale * log2(e)) so the softmax uses exp2. */
#include "na_tile.h"
#include "na_vec.h"

#ifndef TQ0
#define TQ0 8 /* query tile extent on axis 0 (group coordinates) */
#endif
#ifndef TQ1
#define TQ1 1 /* ... on axis 1 */
#endif
#ifndef TQ2
#define TQ2 1 /* ... on axis 2 */
#endif
#ifndef TK
#define TK 16 /* keys per chunk staged in local memory */
#endif
#ifndef RQ
#define RQ 2 /* query rows per work-item */
#endif
#ifndef TC
#define TC 4 /* work-item columns (keys and value dims are split among them) */
#endif
#ifndef HDP
#define HDP HD /* head_dim bucket: q/k rows are zero-padded to it in local memory */
#endif
#ifndef HDVP
#define HDVP HDV /* head_dim_v bucket */
#endif

#define BQ (TQ0 * TQ1 * TQ2)
#define TR (BQ / RQ)
#define NT (TR * TC)
#define RK (TK / TC)
#define RD (HDVP / TC)
#define NKV (RK / VW) /* key vectors per item and row */
#define NDV (RD / VW) /* value-column vectors per item and row */
#define VEL ((TK * HDVP + NT - 1) / NT)
#define KV_FLOATS (HDP * TK > TK * HDVP ? HDP * TK : TK * HDVP)

#if BQ % RQ != 0 || TK % (TC * VW) != 0 || HDVP % (TC * VW) != 0
#error "tile configuration: RQ must divide the tile, TC * VW must divide TK and HDVP"
#endif

/* ---- VW-wide vectors ----------------------------------------------------------------------- */


__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void na_fused_fwd(
    __global const stor_t* q, __global const stor_t* k, __global const stor_t* v,
    __global stor_t* out, __global float* lse, int B, int L0, int L1, int L2, int H, int HKV,
    int hd, int hdv, float scale, int nt0, int nt1, int nt2) {
  __local float Qs[HDP * BQ] __attribute__((aligned(16)));   /* Qs[d][row], pre-scaled */
  __local float KVs[KV_FLOATS] __attribute__((aligned(16))); /* Kt[d][key] (S), Vs[key][d] (O) */
  __local float Ps[BQ * TK] __attribute__((aligned(16)));    /* scores, then P: Ps[row][key] */
  __local float m_row[BQ], l_row[BQ], a_row[BQ];
  __local int key_tok[TK];       /* token of each key of the chunk, -1 past the box */
  __local int key_y[3][TK];      /* its coordinates in the key box (FAR past the box) */

  const int lid = get_local_id(0);
  const int r = lid / TC, c = lid % TC;
  const int N = L0 * L1 * L2;
  const int tiles = nt0 * nt1 * nt2;
  const int wg = get_group_id(0);
  const int tile = wg % tiles;
  const int h = (wg / tiles) % H;
  const int b = wg / (tiles * H);
  const int hk = h / (H / HKV);
  (void)B;

  const na_tile t = na_tile_of(tile, L0, L1, L2, nt0, nt1, nt2, TQ0, TQ1, TQ2);
  if (!t.live) return; /* uniform across the work-group: before any barrier */
  const int *grp = t.grp, *first = t.first, *valid = t.valid, *glen = t.glen, *kst = t.kst,
            *kcnt = t.kcnt;
  const int kbox = kcnt[0] * kcnt[1] * kcnt[2];

  /* Windows of this item's rows, relative to the key box. Rows past the valid part of the tile
     borrow the last valid query's window (computed, never written). */
  int qlo[RQ][3], qhi[RQ][3];
#pragma unroll
  for (int i = 0; i < RQ; ++i) {
    const int row = r * RQ + i;
    const int x[3] = {row / (TQ1 * TQ2), (row / TQ2) % TQ1, row % TQ2};
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      const int qi = first[a] + NA_MIN(x[a], valid[a] - 1);
      qlo[i][a] = na_win_start(qi, glen[a], AX_K(a), AX_S(a), AX_C(a)) - kst[a];
      qhi[i][a] = na_win_end(qi, glen[a], AX_K(a), AX_S(a), AX_C(a)) - kst[a];
    }
  }

  /* Stage the query tile, pre-scaled into log2 units. */
  const float qscale = scale * LOG2E;
  for (int idx = lid; idx < BQ * HDP; idx += NT) {
    const int row = idx / HDP, d = idx % HDP;
    const int x0 = row / (TQ1 * TQ2), x1 = (row / TQ2) % TQ1, x2 = row % TQ2;
    float val = 0.0f;
    if (d < hd && x0 < valid[0] && x1 < valid[1] && x2 < valid[2]) {
      const int tok = NA_TOKEN(x0, x1, x2, first, grp, L1, L2);
      val = LOADF(q, ((b * N + tok) * H + h) * hd + d) * qscale;
    }
    Qs[d * BQ + row] = val;
  }
  for (int row = lid; row < BQ; row += NT) {
    m_row[row] = -INFINITY;
    l_row[row] = 0.0f;
  }

  vec_t acc[RQ][NDV];
#pragma unroll
  for (int i = 0; i < RQ; ++i)
#pragma unroll
    for (int j = 0; j < NDV; ++j) acc[i][j] = (vec_t)(0.0f);

  for (int k0 = 0; k0 < kbox; k0 += TK) {
    /* Locate the chunk's keys once (the integer divisions stay out of the copy loops). */
    for (int kk = lid; kk < TK; kk += NT) {
      const int f = k0 + kk;
      const int y2 = f % kcnt[2], y1 = (f / kcnt[2]) % kcnt[1], y0 = f / (kcnt[2] * kcnt[1]);
      const int live = f < kbox;
      key_y[0][kk] = live ? y0 : FAR;
      key_y[1][kk] = y1;
      key_y[2][kk] = y2;
      key_tok[kk] = live ? NA_TOKEN(y0, y1, y2, kst, grp, L1, L2) : -1;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* Stage K^T for the chunk (zero past the box end and the head dim). */
    for (int idx = lid; idx < TK * HDP; idx += NT) {
      const int kk = idx / HDP, d = idx % HDP;
      const int tok = key_tok[kk];
      KVs[d * TK + kk] =
          (tok >= 0 && d < hd) ? LOADF(k, ((b * N + tok) * HKV + hk) * hd + d) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* Issue this chunk's V loads now; they land in registers while S is computed and go to
       local memory after it (their latency hides behind the S product). */
    float vreg[VEL];
#pragma unroll
    for (int j = 0; j < VEL; ++j) {
      const int idx = lid + j * NT, kk = idx / HDVP, d = idx % HDVP;
      const int tok = idx < TK * HDVP ? key_tok[kk] : -1;
      vreg[j] = (tok >= 0 && d < hdv) ? LOADF(v, ((b * N + tok) * HKV + hk) * hdv + d) : 0.0f;
    }

    /* S = Q K^T on this item's rows x keys, masked to each row's window. */
    {
      vec_t s[RQ][NKV];
#pragma unroll
      for (int i = 0; i < RQ; ++i)
#pragma unroll
        for (int j = 0; j < NKV; ++j) s[i][j] = (vec_t)(0.0f);
      for (int d = 0; d < HDP; ++d) {
        vec_t kv[NKV];
#pragma unroll
        for (int j = 0; j < NKV; ++j) kv[j] = VLOAD(&KVs[d * TK + c * RK + j * VW]);
#pragma unroll
        for (int i = 0; i < RQ; ++i) {
          const float qv = Qs[d * BQ + r * RQ + i];
#pragma unroll
          for (int j = 0; j < NKV; ++j) s[i][j] = fma((vec_t)(qv), kv[j], s[i][j]);
        }
      }
#pragma unroll
      for (int j = 0; j < NKV; ++j) {
        const int kk = c * RK + j * VW;
        const ivec_t y0 = VLOAD(&key_y[0][kk]);
#if RANK >= 2
        const ivec_t y1 = VLOAD(&key_y[1][kk]);
#endif
#if RANK >= 3
        const ivec_t y2 = VLOAD(&key_y[2][kk]);
#endif
#pragma unroll
        for (int i = 0; i < RQ; ++i) {
          const ivec_t in = NA_IN_BOX(y0, y1, y2, qlo[i][0], qhi[i][0],
                                     qlo[i][1], qhi[i][1], qlo[i][2], qhi[i][2]);
          VSTORE(select((vec_t)(-INFINITY), s[i][j], in), &Ps[(r * RQ + i) * TK + kk]);
        }
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* Stage V for the chunk into the K buffer (the S phase is done with it) ... */
#pragma unroll
    for (int j = 0; j < VEL; ++j) {
      const int idx = lid + j * NT;
      if (idx < TK * HDVP) KVs[idx] = vreg[j];
    }
    /* ... and, meanwhile, the online softmax update of each row. */
    for (int row = lid; row < BQ; row += NT) {
      const float m_old = m_row[row];
      vec_t mv = (vec_t)(m_old);
      for (int j = 0; j < TK; j += VW) mv = fmax(mv, VLOAD(&Ps[row * TK + j]));
      const float mx = VMAX(mv);
      /* A row with no key in its window so far keeps m = -inf: use 0 so exp2 gives 0, not NaN. */
      const float m_use = mx == -INFINITY ? 0.0f : mx;
      vec_t sv = (vec_t)(0.0f);
      for (int j = 0; j < TK; j += VW) {
        const vec_t p = exp2(VLOAD(&Ps[row * TK + j]) - (vec_t)(m_use));
        VSTORE(p, &Ps[row * TK + j]);
        sv += p;
      }
      const float alpha = exp2(m_old - m_use);
      a_row[row] = alpha;
      l_row[row] = l_row[row] * alpha + VSUM(sv);
      m_row[row] = mx;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* O = diag(alpha) O + P V on this item's rows x value columns. */
#pragma unroll
    for (int i = 0; i < RQ; ++i) {
      const vec_t alpha = (vec_t)(a_row[r * RQ + i]);
#pragma unroll
      for (int j = 0; j < NDV; ++j) acc[i][j] *= alpha;
    }
    for (int kk = 0; kk < TK; ++kk) {
      vec_t vv[NDV];
#pragma unroll
      for (int j = 0; j < NDV; ++j) vv[j] = VLOAD(&KVs[kk * HDVP + (j * TC + c) * VW]);
#pragma unroll
      for (int i = 0; i < RQ; ++i) {
        const vec_t pv = (vec_t)(Ps[(r * RQ + i) * TK + kk]);
#pragma unroll
        for (int j = 0; j < NDV; ++j) acc[i][j] = fma(pv, vv[j], acc[i][j]);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  /* Normalize and write this item's rows; the first column item also writes lse. */
#pragma unroll
  for (int i = 0; i < RQ; ++i) {
    const int row = r * RQ + i;
    const int x0 = row / (TQ1 * TQ2), x1 = (row / TQ2) % TQ1, x2 = row % TQ2;
    if (x0 >= valid[0] || x1 >= valid[1] || x2 >= valid[2]) continue;
    const int tok = NA_TOKEN(x0, x1, x2, first, grp, L1, L2);
    const float l = l_row[row];
    const float inv_l = 1.0f / l;
    const int ob = ((b * N + tok) * H + h) * hdv;
#pragma unroll
    for (int j = 0; j < NDV; ++j) {
      float o[VW];
      VSTORE(acc[i][j] * inv_l, o);
#pragma unroll
      for (int e = 0; e < VW; ++e) {
        const int d = (j * TC + c) * VW + e;
        if (d < hdv) STOREF(out, ob + d, o[e]);
      }
    }
    if (c == 0 && lse) lse[(b * N + tok) * H + h] = (m_row[row] + log2(l)) * LN2;
  }
}
