/* The inner products of the lanes-form kernels (na_fused_*_lanes.cl), where a tile's queries (or
 * keys) sit in the lanes of NV vectors of VW and the other side is read row by row as broadcast
 * scalars: one definition of each loop nest for the forward, dQ and dK/dV kernels. They need
 * TK, NV, VW and BQ of the including kernel, defined before it is included. */
#ifndef NA_LANES_H
#define NA_LANES_H

#include "na_vec.h"

/* acc[j][n] += sum_{d < dim} row_j[d] * lanes[d][n]: TK rows (global pointers rows[j]) against a
   transposed tile in private memory (lanes[d * BQ + n * VW], NV vectors per d). */
#define LANES_DOT(acc, rows, lanes, dim)                                    \
  {                                                                         \
  vec_t acc2_[TK][NV];                                                      \
  _Pragma("unroll") for (int j_ = 0; j_ < TK; ++j_)                         \
  _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_) acc2_[j_][n_] = (vec_t)(0.0f); \
  int d_ = 0;                                                               \
  for (; d_ + 2 <= (dim); d_ += 2) {                                        \
    vec_t lv_[NV], lw_[NV];                                                 \
    _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_) {                     \
        lv_[n_] = VLOAD(&(lanes)[d_ * BQ + n_ * VW]);                       \
        lw_[n_] = VLOAD(&(lanes)[(d_ + 1) * BQ + n_ * VW]); }               \
    _Pragma("unroll") for (int j_ = 0; j_ < TK; ++j_) {                     \
      const vec_t r_ = (vec_t)(LOADF((rows)[j_], d_));                      \
      const vec_t w_ = (vec_t)(LOADF((rows)[j_], d_ + 1));                  \
      _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_) {                   \
          (acc)[j_][n_] = fma(r_, lv_[n_], (acc)[j_][n_]);                  \
          acc2_[j_][n_] = fma(w_, lw_[n_], acc2_[j_][n_]); }                \
    }                                                                       \
  }                                                                         \
  _Pragma("unroll") for (int j_ = 0; j_ < TK; ++j_)                         \
  _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_) (acc)[j_][n_] += acc2_[j_][n_]; \
  for (; d_ < (dim); ++d_) {                                                \
    vec_t lv_[NV];                                                          \
    _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_)                       \
        lv_[n_] = VLOAD(&(lanes)[d_ * BQ + n_ * VW]);                       \
    _Pragma("unroll") for (int j_ = 0; j_ < TK; ++j_) {                     \
      const vec_t r_ = (vec_t)(LOADF((rows)[j_], d_));                      \
      _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_)                     \
          (acc)[j_][n_] = fma(r_, lv_[n_], (acc)[j_][n_]);                  \
    }                                                                       \
  } \
  }

/* out[d][n] += sum_j row_j[d] * coef[j][n] for d < dim (out in private memory, NV vectors per d):
   the rows weighted by per-lane coefficients (the backward's). Unrolled where dim is a
   constant, so that several dimensions' TK-long FMA chains interleave. */
#define LANES_ACCUMULATE(out, rows, coef, dim)                              \
  _Pragma("unroll") for (int d_ = 0; d_ < (dim); ++d_) {                    \
    float r_[TK];                                                           \
    _Pragma("unroll") for (int j_ = 0; j_ < TK; ++j_)                       \
        r_[j_] = LOADF((rows)[j_], d_);                                     \
    _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_) {                     \
      vec_t a_ = (out)[d_ * NV + n_];                                       \
      _Pragma("unroll") for (int j_ = 0; j_ < TK; ++j_)                     \
          a_ = fma((vec_t)(r_[j_]), (coef)[j_][n_], a_);                    \
      (out)[d_ * NV + n_] = a_;                                             \
    }                                                                       \
  }

/* out = op(src[0][n], op(src[1][n], ...)) over the TK vectors, as a balanced tree (pairs at
   distance 1, then 2, 4, ...): depth log2(TK) instead of a chain of TK - 1. */
#define NA_ADD(a, b) ((a) + (b))
/* The larger of a and b, b where either is NaN: a compare and a blend (fmax's NaN rule costs
   two more instructions per pair on AVX-512). A NaN score needs no help from the maximum to
   reach the results: its probability is NaN (LANES_SOFTMAX_UPDATE). */
#define NA_VMAX(a, b) select((b), (a), (a) > (b))
#define LANES_TREE(op, out, src, n)                                          \
  do {                                                                      \
    vec_t t_[TK];                                                           \
    _Pragma("unroll") for (int j_ = 0; j_ < TK; ++j_) t_[j_] = (src)[j_][n]; \
    _Pragma("unroll") for (int w_ = 1; w_ < TK; w_ *= 2)                    \
        _Pragma("unroll") for (int j_ = 0; j_ + w_ < TK; j_ += 2 * w_)      \
            t_[j_] = op(t_[j_], t_[j_ + w_]);                               \
    (out) = t_[0];                                                          \
  } while (0)

/* The online softmax's update for lane vector n after a step's scores s[j][n] (log2 units)
   were masked to -inf: the reference m[n] and sum l[n] move on, s[j][n] becomes the step's
   probabilities (unnormalized, relative to the reference) and alpha[n] the factor that
   rescales the accumulators. The reference moves to the step's maximum only where that exceeds
   it by more than LANES_SLACK (and from -inf), not at every new maximum: the results do not
   depend on the reference (probabilities of up to 2^LANES_SLACK cost no precision in f32, and
   out and lse are formed from m and l together), and most steps then leave every lane's
   reference alone, so alpha is exactly 1 and the accumulators' rescale is skipped (small-cpu,
   one PoCL thread: 2% faster). The step's maximum and sum are balanced trees: a chain of TK
   dependent maxima or adds would sit on every step's critical path. Lanes with no key in their
   window so far keep m = -inf and use 0 as the reference, so exp2 gives 0. A NaN score never
   moves the reference (the comparison is false) and turns its probability, the sum and so the
   lane's results into NaN. */
/* HDX = 1 (set by the host) when the problem's head dims equal their buckets HDP and HDVP: the
   kernels then call their tile with those constants (loops of constant length, which the
   unrolled loops need) and compile no other copy; else with the run-time hd and hdv. */
#ifndef HDX
#define HDX 0
#endif
#if HDX
#define LANES_HD HDP
#define LANES_HDV HDVP
#else
#define LANES_HD hd
#define LANES_HDV hdv
#endif

#ifndef LANES_SLACK
#define LANES_SLACK 8.0f /* log2 units a step's maximum may pass the reference before it moves */
#endif
#define LANES_SOFTMAX_UPDATE(s, n, m, l, alpha)                                      \
  do {                                                                              \
    vec_t mx_, sum_;                                                                \
    LANES_TREE(NA_VMAX, mx_, s, n);                                                 \
    const vec_t m_new_ = select((m)[n], mx_, mx_ > (m)[n] + (vec_t)(LANES_SLACK));   \
    const vec_t m_use_ = select(m_new_, (vec_t)(0.0f), m_new_ == (vec_t)(-INFINITY)); \
    _Pragma("unroll") for (int j_ = 0; j_ < TK; ++j_)(s)[j_][n] =                   \
        na_exp2v((s)[j_][n] - m_use_);                                              \
    LANES_TREE(NA_ADD, sum_, s, n);                                                 \
    (alpha)[n] = select(na_exp2v((m)[n] - m_use_), (vec_t)(1.0f), m_new_ == (m)[n]);  \
    (l)[n] = (l)[n] * (alpha)[n] + sum_;                                            \
    (m)[n] = m_new_;                                                                \
  } while (0)

/* A query tile's key box spans at most TQ + K + S keys per axis (the tile's windows): the
   sizes of its mask tables (below), axis 0's with one more, zero, entry for keys past the box.
   Used by the forward and the backward's dQ kernel. */
#define MB0 (TQ0 + K0 + S0 + 1)
#define MB1 (TQ1 + K1 + S1)
#define MB2 (TQ2 + K2 + S2)

/* Walks the box of tile t (kst, kcnt) in row-major order by counting: box coordinates
   (c0, c1, c2) and the row index of the token there (per rows per token: HKV or H), with no
   divisions or token arithmetic per member (a step along axis a moves DIL_a tokens of that
   axis). ROW_WALK_INIT declares the strides (it needs L1 and L2 in scope), ROW_WALK_NEXT moves
   coordinates and row to the next member. */
#define ROW_WALK_INIT(t, per)                                                                \
  const int st2_ = DIL2 * (per), st1_ = DIL1 * L2 * (per), st0_ = DIL0 * L1 * L2 * (per); \
  const int wrap2_ = st1_ - ((t).kcnt[2] - 1) * st2_, wrap1_ = st0_ - (t).kcnt[1] * st1_
#define ROW_WALK_NEXT(t, c0, c1, c2, row) \
  do {                                    \
    if (++(c2) == (t).kcnt[2]) {          \
      (c2) = 0;                           \
      (row) += wrap2_;                    \
      if (++(c1) == (t).kcnt[1]) {        \
        (c1) = 0;                         \
        (row) += wrap1_;                  \
        ++(c0);                           \
      }                                   \
    } else {                              \
      (row) += st2_;                      \
    }                                     \
  } while (0)

/* The lanes kernels' separable window test: a lane's window holds a coordinate (y0, y1, y2)
   iff it holds y_a on every axis, so each kernel keeps per axis a table of lane masks over the
   box coordinate, mt0, mt1, mt2 (ivec_t [NV][size]), and a mask is one or two ANDs of loaded
   vectors. LANES_MASK_TABLE fills one: tab[n][y] = IN (a lane-mask expression of n and y) for
   y < count, zero up to size. Tables of unused axes are neither filled nor read. */
#define LANES_MASK_TABLE(tab, size, count, IN)                    \
  _Pragma("unroll") for (int n = 0; n < NV; ++n)                  \
    for (int y = 0; y < (size); ++y) (tab)[n][y] = y < (count) ? (IN) : (ivec_t)(0)
#if RANK == 1
#define LANES_MASK_AT(n, y0, y1, y2) (mt0[n][y0])
#elif RANK == 2
#define LANES_MASK_AT(n, y0, y1, y2) (mt0[n][y0] & mt1[n][y1])
#else
#define LANES_MASK_AT(n, y0, y1, y2) (mt0[n][y0] & mt1[n][y1] & mt2[n][y2])
#endif

/* The forward's start: accumulators (acc[dv * NV + n]) 0, and every lane's running maximum
   m[n] -inf and sum l[n] 0, as LANES_SOFTMAX_UPDATE and LANES_FWD_STORE expect them. */
/* Declares and fills a query tile's tables mt0, mt1, mt2 (sizes MB0..MB2) from its lanes'
   window bounds lo[n][a], hi[n][a] (box coordinates), for the tile t. */
#define LANES_LANE_IN(a) (((ivec_t)(y) >= lo[n][a]) & ((ivec_t)(y) < hi[n][a]))
#define LANES_QUERY_MASK_TABLES(t)                                         \
  ivec_t mt0[NV][MB0], mt1[NV][MB1], mt2[NV][MB2];                         \
  LANES_MASK_TABLE(mt0, MB0, (t).kcnt[0], LANES_LANE_IN(0));               \
  if (RANK >= 2) LANES_MASK_TABLE(mt1, MB1, (t).kcnt[1], LANES_LANE_IN(1)); \
  if (RANK >= 3) LANES_MASK_TABLE(mt2, MB2, (t).kcnt[2], LANES_LANE_IN(2))

#define LANES_FWD_INIT(acc, m, l)                                                   \
  do {                                                                              \
    for (int i_ = 0; i_ < HDVP * NV; ++i_) (acc)[i_] = (vec_t)(0.0f);               \
    _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_) {                             \
      (m)[n_] = (vec_t)(-INFINITY);                                                 \
      (l)[n_] = (vec_t)(0.0f);                                                      \
    }                                                                               \
  } while (0)

/* The forward's end: normalize the accumulators (acc[dv * NV + n], lane e of vector n is query
   row n * VW + e), write them row by row through their own memory (16 x 16 blocks at a time),
   and the lse of the rows with qin[row] at lse[qrows[row]] when lse is given. */
#define LANES_FWD_STORE(acc, m, l, out, lse, ooff, qin, qrows, hdv)                 \
  do {                                                                              \
    vec_t inv_l_[NV];                                                               \
    _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_) inv_l_[n_] = (vec_t)(1.0f) / (l)[n_]; \
    for (int i_ = 0; i_ < HDVP * NV; ++i_) (acc)[i_] *= inv_l_[i_ % NV];            \
    na_lanes_to_rows(out, (__private const float*)(acc), ooff, qin, hdv, 1.0f);     \
    if (lse) {                                                                      \
      float lane_lse_[BQ];                                                          \
      _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_)                             \
          VSTORE(((m)[n_] + na_log2v((l)[n_])) * LN2, &lane_lse_[n_ * VW]);             \
      for (int row_ = 0; row_ < BQ; ++row_)                                         \
        if ((qin)[row_]) (lse)[(qrows)[row_]] = lane_lse_[row_];                    \
    }                                                                               \
  } while (0)

/* A float16 into 16 consecutive storage elements (f32, f16, bf16); the load, LOADF16, is in
   na_common.h. */
#if DTYPE == 0
#define STOREF16(x, p, i) vstore16((x), 0, (p) + (i))
#elif DTYPE == 1
#define STOREF16(x, p, i) vstore_half16_rte((x), 0, (p) + (i))
#else
#define STOREF16(x, p, i) vstore16(na_f32_to_bf16_16(x), 0, (p) + (i))
/* na_f32_to_bf16 (na_common.h) on 16 lanes. */
NA_FN ushort16 na_f32_to_bf16_16(float16 f) {
  const uint16 u = as_uint16(f);
  const uint16 r = (u + (uint16)(0x7fffu) + ((u >> 16) & (uint16)(1u))) >> 16;
  const uint16 n = (u >> 16) | (uint16)(0x40u);
  return convert_ushort16(select(r, n, (u & (uint16)(0x7fffffffu)) > (uint16)(0x7f800000u)));
}
#endif

/* Transposes 16 rows of 16 in place: four rounds of pairing the even and the odd elements of
   neighbouring rows (after round k, bit k of the column index has moved into the row index).
   Always inlined: as a call, PoCL 3.1 passed the rows through the stack (4.6% of the lanes
   forward's samples on small-cpu; inlined, 3% faster). */
NA_FN __attribute__((always_inline)) void na_transpose16(__private float16* r) {
#pragma unroll
  for (int round = 0; round < 4; ++round) {
    float16 t[16];
#pragma unroll
    for (int m = 0; m < 8; ++m) {
      t[m] = (float16)(r[2 * m].even, r[2 * m + 1].even);
      t[m + 8] = (float16)(r[2 * m].odd, r[2 * m + 1].odd);
    }
#pragma unroll
    for (int i = 0; i < 16; ++i) r[i] = t[i];
  }
}

/* A tile's rows into lanes: lanes[d * BQ + row] = in[row] ? src[off[row] + d] * mult : 0 for
   d < dim. off[row] must address a readable row even where in[row] is 0 (the value is dropped).
   With 16 lanes, blocks of 16 rows x 16 columns go through registers (16 vector loads, the
   shuffle transpose, 16 vector stores) instead of 256 scalar stores 64 bytes apart; the
   columns past the last full block go one by one. */
NA_FN void na_rows_to_lanes(__private float* lanes, __global const stor_t* src,
                            const __private int* off, const __private int* in, int dim,
                            float mult) {
  int d0 = 0;
#if VW == 16
  for (; d0 + 16 <= dim; d0 += 16)
#pragma unroll
    for (int n = 0; n < NV; ++n) {
      float16 r[16];
#pragma unroll
      for (int e = 0; e < 16; ++e) {
        const float16 x = LOADF16(src, off[n * 16 + e] + d0) * mult;
        r[e] = in[n * 16 + e] ? x : (float16)(0.0f);
      }
      na_transpose16(r);
#pragma unroll
      for (int i = 0; i < 16; ++i) vstore16(r[i], 0, &lanes[(d0 + i) * BQ + n * 16]);
    }
#endif
  for (int d = d0; d < dim; ++d)
    for (int row = 0; row < BQ; ++row)
      lanes[d * BQ + row] = in[row] ? LOADF(src, off[row] + d) * mult : 0.0f;
}

/* The inverse: dst[off[row] + d] = lanes[d * BQ + row] * mult for the rows with in[row], d < dim. */
NA_FN void na_lanes_to_rows(__global stor_t* dst, const __private float* lanes,
                            const __private int* off, const __private int* in, int dim,
                            float mult) {
  int d0 = 0;
#if VW == 16
  for (; d0 + 16 <= dim; d0 += 16)
#pragma unroll
    for (int n = 0; n < NV; ++n) {
      float16 r[16];
#pragma unroll
      for (int i = 0; i < 16; ++i) r[i] = vload16(0, &lanes[(d0 + i) * BQ + n * 16]) * mult;
      na_transpose16(r);
#pragma unroll
      for (int e = 0; e < 16; ++e)
        if (in[n * 16 + e]) STOREF16(r[e], dst, off[n * 16 + e] + d0);
    }
#endif
  for (int row = 0; row < BQ; ++row)
    if (in[row])
      for (int d = d0; d < dim; ++d) STOREF(dst, off[row] + d, lanes[d * BQ + row] * mult);
}

/* The next TK keys of the row walk (ROW_WALK_*): their K and V rows and box coordinates, for
   the forward and the backward's dQ kernel. Keys past the box (k0 + j >= kbox) read the box's
   first row (finite values) and are masked by their coordinate: FAR, or the mask tables' zero
   entry MB0 - 1 where `tables`. Uses k, v, hd, hdv, k0, kbox, krow, row0 and c0..c2. */
#define LANES_STEP_KEYS(kp, vp, y0, y1, y2, tables)                               \
  _Pragma("unroll") for (int j = 0; j < TK; ++j) {                                \
    const int live = k0 + j < kbox;                                               \
    const int r = live ? krow : row0;                                             \
    kp[j] = k + r * hd;                                                           \
    vp[j] = v + r * hdv;                                                          \
    y0[j] = live ? c0 : ((tables) ? MB0 - 1 : FAR);                               \
    y1[j] = c1;                                                                   \
    y2[j] = c2;                                                                   \
    ROW_WALK_NEXT(t, c0, c1, c2, krow);                                           \
  }

#ifndef LANES_CHUNK
#define LANES_CHUNK 8 /* neighbouring tiles per counter step (they share most key rows) */
#endif

/* The lanes kernels run a few work-groups per compute unit (the host sizes the launch), each
   taking tiles from a shared counter until none is left: on CPU drivers that hand out
   work-groups in large chunks (PoCL: 64 at a time), a thread that starts late no longer leaves
   its chunk to finish after the others. next[0] starts at 0 (a fresh buffer per call). Which
   work-group runs a tile does not change what it computes, so results stay bit-identical.
   Runs `body` with `wg` set to each tile of [0, total), `chunk` tiles per counter step
   (LANES_FOR_EACH_TILE: LANES_CHUNK). */
#define LANES_FOR_EACH_TILE_BY(wg, total, next, chunk, body)                     \
  for (int c_ = atomic_inc(next) * (chunk); c_ < (total);                          \
       c_ = atomic_inc(next) * (chunk))                                            \
    for (int wg = c_; wg < NA_MIN(c_ + (chunk), (total)); ++wg) {                 \
      body;                                                                        \
    }
#define LANES_FOR_EACH_TILE(wg, total, next, body) \
  LANES_FOR_EACH_TILE_BY(wg, total, next, LANES_CHUNK, body)

#endif /* NA_LANES_H */
