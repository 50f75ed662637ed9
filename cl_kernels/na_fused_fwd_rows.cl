/* The fused forward in "rows" (offset) form, for CPUs, portable OpenCL C 1.2 (no extensions).
 * One work-item per segment of 16 consecutive queries along the last axis (axis RANK-1, inside
 * one dilation group) in the lanes of a float16, times NR such segments on consecutive rows of
 * axis RANK-2. On every axis but the last, all lanes share their window; on the last axis, lane
 * e's keys are addressed by their offset o = key - query, so the 16 lanes' keys at one offset
 * are 16 consecutive keys: one vector load from K and V transposed by na_rows_kv_transpose
 * (head dim outermost, tokens of a row innermost, rows padded with zeros). Design and layout:
 * docs/DESIGN.md ("The rows form"). */
#include "na_tile.h"

/* The last used axis holds the lanes (TQ of that axis must be 16); axis RANK-2 holds NR rows. */
#if RANK == 1
#define LA 0
#define TQ_LA TQ0
#define NR 1
#elif RANK == 2
#define LA 1
#define RA 0
#define TQ_LA TQ1
#define NR TQ0
#else
#define LA 2
#define RA 1
#define TQ_LA TQ2
#define NR TQ1
#endif

#ifndef TQ0
#define TQ0 (RANK == 1 ? 16 : 1) /* query tile on axis 0 (16 when it is the last axis) */
#endif
#ifndef TQ1
#define TQ1 (RANK == 2 ? 16 : 1) /* ... axis 1 */
#endif
#ifndef TQ2
#define TQ2 (RANK == 3 ? 16 : 1) /* ... axis 2 */
#endif
#ifndef TK
#define TK 8 /* (key row, offset) items per step: TK x NR score vectors stay in registers */
#endif
#ifndef HDP
#define HDP HD /* head_dim bucket (bounds the private query copy) */
#endif
#ifndef HDVP
#define HDVP HDV /* head_dim_v bucket (bounds the private accumulator) */
#endif
#ifndef CB
#define CB 4 /* 16-token blocks per work-item of the transposing pre-pass */
#endif

#undef VW
#define VW 16
#define BQ (TQ0 * TQ1 * TQ2)
#define NV NR
#if TQ_LA != 16 || BQ != 16 * NR
#error "the rows form needs 16 queries on the last axis and 1 on axes before RANK-2"
#endif

#include "na_lanes.h" /* needs BQ, NV, VW, TK */

/* K and V with the last axis innermost, one block of bs floats per (batch, kv head, dilation
 * group g of the last axis), inside it one line of rs floats per (row, dimension): the hd
 * dimensions of K, then the hdv of V,
 *   block[16 + (row * (hd + hdv) + d) * rs + c]          K, dimension d, group coordinate c
 *   block[16 + (row * (hd + hdv) + hd + dv) * rs + c]    V, dimension dv
 * `row` is the token's position on the other axes (row-major, every group), rs = 16 + the
 * longest group rounded up to 16, so every line is followed by 16 zeros (the next line's left
 * padding) and the block starts with 16: a load of 16 lanes at c in [-15, longest + 15) reads
 * only this line's keys or zeros. Groups shorter than the longest are zero past their end. A
 * key row's K and V are contiguous, so a step's items stream through the cache in order. One
 * work-item per (b, hk, g, row, CB blocks of 16 tokens); the pad after a line is block
 * rs / 16 - 1. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void na_rows_kv_transpose(
    __global const stor_t* k, __global const stor_t* v, __global float* kvt, int L0, int L1,
    int L2, int HKV, int hd, int hdv, int rows, int rs, int bs) {
  const int nblk = rs / 16, nchunk = (nblk + CB - 1) / CB;
  int w = get_group_id(0);
  const int chunk = w % nchunk;
  w /= nchunk;
  const int row = w % rows;
  w /= rows;
  const int g = w % AX_D(LA);
  w /= AX_D(LA);
  const int hk = w % HKV;
  const int b = w / HKV;
  const int N = L0 * L1 * L2;
  const int Lx[3] = {L0, L1, L2};
  const int llen = Lx[LA];
  const int lg = na_group_len(llen, AX_D(LA), g);
  __global float* block = kvt + ((b * HKV + hk) * AX_D(LA) + g) * bs;
  if (row == 0 && chunk == 0) vstore16((float16)(0.0f), 0, block);
  for (int part = 0; part < 2; ++part) {
    const int dim = part ? hdv : hd;
    __global const stor_t* src = part ? v : k;
    __global float* dst = block + 16 + (row * (hd + hdv) + (part ? hd : 0)) * rs;
    for (int blk = chunk * CB; blk < NA_MIN(nblk, chunk * CB + CB); ++blk) {
      __global float* o = dst + blk * 16;
      int off[16], in[16];
#pragma unroll
      for (int e = 0; e < 16; ++e) {
        const int c = blk * 16 + e;
        in[e] = c < lg && blk < nblk - 1;
        off[e] = ((b * N + row * llen + (in[e] ? c * AX_D(LA) + g : 0)) * HKV + hk) * dim;
      }
      int d0 = 0;
      for (; d0 + 16 <= dim; d0 += 16) {
        float16 r[16];
#pragma unroll
        for (int e = 0; e < 16; ++e) r[e] = in[e] ? LOADF16(src, off[e] + d0) : (float16)(0.0f);
        na_transpose16(r);
#pragma unroll
        for (int i = 0; i < 16; ++i) vstore16(r[i], 0, o + (d0 + i) * rs);
      }
      for (int d = d0; d < dim; ++d) {
        float t[16];
#pragma unroll
        for (int e = 0; e < 16; ++e) t[e] = in[e] ? LOADF(src, off[e] + d) : 0.0f;
        vstore16(vload16(0, t), 0, o + d * rs);
      }
    }
  }
}

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void na_fused_fwd_rows(
    __global const stor_t* q, __global const float* kvt, __global stor_t* out,
    __global float* lse, int B, int L0, int L1, int L2, int H, int HKV, int hd, int hdv,
    float scale, int nt0, int nt1, int nt2, int rs, int bs) {
  const int N = L0 * L1 * L2;
  const int tiles = nt0 * nt1 * nt2;
  const int wg = get_group_id(0);
  const int h = (wg / tiles) % H;
  const int b = wg / (tiles * H);
  const int hk = h / (H / HKV);
  (void)B;
  const na_tile t = na_tile_of(wg % tiles, L0, L1, L2, nt0, nt1, nt2, TQ0, TQ1, TQ2);
  if (!t.live) return;
  __global const float* kt = kvt + ((b * HKV + hk) * AX_D(LA) + t.grp[LA]) * bs;
  __global const float* vt = kt + hd * rs;
  const int rstep = (hd + hdv) * rs; /* from one key row to the next */

  /* Lane e's window on the last axis as offsets [lo_e, hi_e) from its query; the tile's
     offsets [omin, omax] cover every valid lane's. Lanes past the group's end see every
     offset (finite values that are never written). */
  const int x = t.first[LA], lg = t.glen[LA];
  int lo_s[16], hi_s[16], omin = 1 << 29, omax = -(1 << 29);
#pragma unroll
  for (int e = 0; e < 16; ++e) {
    const int qe = x + e;
    if (qe < lg) {
      lo_s[e] = na_win_start(qe, lg, AX_K(LA), AX_S(LA), AX_C(LA)) - qe;
      hi_s[e] = na_win_end(qe, lg, AX_K(LA), AX_S(LA), AX_C(LA)) - qe;
      omin = NA_MIN(omin, lo_s[e]);
      omax = NA_MAX(omax, hi_s[e] - 1);
    } else {
      lo_s[e] = -FAR;
      hi_s[e] = FAR;
    }
  }
  const ivec_t lo = vload16(0, lo_s), hi = vload16(0, hi_s);
  const int nofs = omax - omin + 1;

  /* The queries (row n of axis RANK-2, lane e), transposed into lanes; rows past the valid
     part of the tile borrow the last valid row (their lanes are zero, nothing is written). */
  float qs[HDP * BQ];
  int qrows[BQ], qoff[BQ], ooff[BQ], qin[BQ];
  for (int row = 0; row < BQ; ++row) {
    const int x0 = row / (TQ1 * TQ2), x1 = (row / TQ2) % TQ1, x2 = row % TQ2;
    const int xs[3] = {x0, x1, x2};
    int in = 1, xc[3];
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      in &= xs[a] < t.valid[a];
      xc[a] = NA_MIN(xs[a], t.valid[a] - 1);
    }
    const int qrow = (b * N + NA_TOKEN(xc[0], xc[1], xc[2], t.first, t.grp, L1, L2)) * H + h;
    qin[row] = in;
    qrows[row] = qrow;
    qoff[row] = qrow * hd;
    ooff[row] = qrow * hdv;
  }
  na_rows_to_lanes(qs, q, qoff, qin, hd, scale * LOG2E);

#if NR > 1
  /* Each row's window on axis RANK-2, relative to the key box (the union of the rows'). */
  int ylo[NR], yhi[NR];
#pragma unroll
  for (int n = 0; n < NR; ++n) {
    const int y = t.first[RA] + NA_MIN(n, t.valid[RA] - 1);
    ylo[n] = na_win_start(y, t.glen[RA], AX_K(RA), AX_S(RA), AX_C(RA)) - t.kst[RA];
    yhi[n] = na_win_end(y, t.glen[RA], AX_K(RA), AX_S(RA), AX_C(RA)) - t.kst[RA];
  }
#endif

  vec_t acc[HDVP * NV], m[NV], l[NV];
  LANES_FWD_INIT(acc, m, l);

  /* Items: (key row of the box on the other axes, offset), offsets fastest, counted without
     divisions. rb is the plane index of the current key row's offset omin for lane 0. */
#if RANK == 1
  const int nitems = nofs;
#define ROW_BASE(cz, cr) (16 + x + omin)
#elif RANK == 2
  const int nitems = t.kcnt[0] * nofs;
#define ROW_BASE(cz, cr) (16 + ((t.kst[0] + (cr)) * DIL0 + t.grp[0]) * rstep + x + omin)
#else
  const int nitems = t.kcnt[0] * t.kcnt[1] * nofs;
#define ROW_BASE(cz, cr)                                                                  \
  (16 + (((t.kst[0] + (cz)) * DIL0 + t.grp[0]) * L1 + (t.kst[1] + (cr)) * DIL1 + t.grp[1]) * \
            rstep + x + omin)
#endif
#if RANK == 3
  const int ncr = t.kcnt[1];
#elif RANK == 2
  const int ncr = t.kcnt[0];
#else
  const int ncr = 1;
#endif
  const int rb0 = ROW_BASE(0, 0);
  int co = 0, cr = 0, cz = 0, rb = rb0;
  for (int i0 = 0; i0 < nitems; i0 += TK) {
    /* The step's items: plane index of lane 0's key, the offset (FAR past the last item, whose
       loads read the first item's keys) and the key row's box coordinate on axis RANK-2. */
    int kb[TK], oc[TK], ry[TK];
#pragma unroll
    for (int j = 0; j < TK; ++j) {
      const int live = i0 + j < nitems;
      kb[j] = live ? rb + co : rb0;
      oc[j] = live ? omin + co : FAR;
      ry[j] = cr;
      if (++co == nofs) {
        co = 0;
        if (++cr == ncr) {
          cr = 0;
          ++cz;
        }
        rb = ROW_BASE(cz, cr);
      }
    }
    (void)ry;
    /* Scores: s[j][n] = sum_d q[n, lanes][d] * k[key of lane at item j][d]. */
    vec_t s[TK][NV];
#pragma unroll
    for (int j = 0; j < TK; ++j)
#pragma unroll
      for (int n = 0; n < NV; ++n) s[j][n] = (vec_t)(0.0f);
    for (int d = 0; d < hd; ++d) {
      __global const float* kd = kt + d * rs;
      vec_t qv[NV];
#pragma unroll
      for (int n = 0; n < NV; ++n) qv[n] = vload16(0, &qs[d * BQ + n * 16]);
#pragma unroll
      for (int j = 0; j < TK; ++j) {
        const vec_t kv = vload16(0, kd + kb[j]);
#pragma unroll
        for (int n = 0; n < NV; ++n) s[j][n] = fma(qv[n], kv, s[j][n]);
      }
    }
    /* Mask (offset per lane; key row per row of queries), then the online softmax. */
    vec_t alpha[NV];
#pragma unroll
    for (int n = 0; n < NV; ++n) {
#pragma unroll
      for (int j = 0; j < TK; ++j) {
        ivec_t in = ((ivec_t)(oc[j]) >= lo) & ((ivec_t)(oc[j]) < hi);
#if NR > 1
        in &= (ivec_t)(-(int)((ry[j] >= ylo[n]) & (ry[j] < yhi[n])));
#endif
        s[j][n] = select((vec_t)(-INFINITY), s[j][n], in);
      }
      LANES_SOFTMAX_UPDATE(s, n, m, l, alpha);
    }
    /* O = diag(alpha) O + P V (the rescale is skipped once every lane's maximum settled). */
    int rescale = 0;
#pragma unroll
    for (int n = 0; n < NV; ++n) rescale |= VANY(alpha[n] != (vec_t)(1.0f));
    for (int dv = 0; dv < hdv; ++dv) {
      __global const float* vd = vt + dv * rs;
      vec_t vv[TK];
#pragma unroll
      for (int j = 0; j < TK; ++j) vv[j] = vload16(0, vd + kb[j]);
#pragma unroll
      for (int n = 0; n < NV; ++n) {
        /* Two partial sums: halves the chain of dependent fma per accumulator. */
        vec_t a = rescale ? acc[dv * NV + n] * alpha[n] : acc[dv * NV + n];
        vec_t a2 = (vec_t)(0.0f);
#pragma unroll
        for (int j = 0; j < TK; j += 2) {
          a = fma(s[j][n], vv[j], a);
          if (j + 1 < TK) a2 = fma(s[j + 1][n], vv[j + 1], a2);
        }
        acc[dv * NV + n] = a + a2;
      }
    }
  }
#undef ROW_BASE

  LANES_FWD_STORE(acc, m, l, out, lse, ooff, qin, qrows, hdv);
}
