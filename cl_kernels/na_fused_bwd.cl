/* The fused backward in work-group form (GPUs), portable OpenCL C 1.2; the tiling and the
 * work-item grid are those of na_fused_fwd.cl. FlashAttention-2 style on the forward's lse,
 * no atomics, so results are bit-identical from run to run:
 *  - na_fused_bwd_dq: a query tile walks the union of its windows in chunks of TK keys:
 *    S = Q K^T and dP = dO V^T on the item's rows x keys, P = exp2(S - lse), dS = P (dP - D)
 *    into local memory, then dQ += dS K on the item's rows x head dims;
 *  - na_fused_bwd_dkdv: a key tile walks its inverse neighborhood (one box of queries per tile,
 *    closed form in na_window.h) for each query head of its kv head, in chunks of TK queries:
 *    S^T = K Q^T, dP^T = V dO^T on the item's keys x queries, then dV += P^T dO and
 *    dK += dS^T Q on the item's keys x head dims.
 * With DQP=1 (5 products) the dQ kernel is not run: na_fused_bwd_dkdv also forms each chunk's
 * dQ partials, dS K over the tile's keys, into the tile's slot of a scratch buffer, and
 * na_fused_bwd_dq_reduce (na_dq_reduce.h) sums each query's slots in a fixed order.
 * Both kernels load the next chunk's rows (and metadata) into registers while the current chunk
 * is computed (three barriers per chunk), and keep their large local arrays 16-byte aligned,
 * which lets the compiler merge neighbouring local loads (session 11, docs/PERFORMANCE.md).
 * D_i = dot(dO_i, O_i) comes from na_delta.cl. */
#include "na_tile.h"
#include "na_vec.h"

#ifndef TQ0
#define TQ0 8 /* tile extent on axis 0 (query tiles for dQ, key tiles for dK/dV) */
#endif
#ifndef TQ1
#define TQ1 1 /* ... on axis 1 */
#endif
#ifndef TQ2
#define TQ2 1 /* ... on axis 2 */
#endif
#ifndef TK
#define TK 16 /* rows of the other side per chunk (keys for dQ, queries for dK/dV) */
#endif
#ifndef RQ
#define RQ 2 /* tile rows per work-item */
#endif
#ifndef TC
#define TC 4 /* work-item columns */
#endif
#ifndef HDP
#define HDP HD
#endif
#ifndef DQP
#define DQP 0 /* 1: na_fused_bwd_dkdv writes dQ partials for the reduce (5 products) */
#endif
#ifndef HDVP
#define HDVP HDV
#endif

#define BQ (TQ0 * TQ1 * TQ2)
#define TR (BQ / RQ)
#define NT (TR * TC)
#define RK (TK / TC)
#define NKV (RK / VW)
#define NDQ (HDP / (TC * VW))  /* head-dim vectors per item and row (dQ, dK) */
#define NDV (HDVP / (TC * VW)) /* value-dim vectors per item and row (dV) */
/* The dK/dV kernel's K rows in local memory: Ks[d * KSTR + key]. With DQP two floats of padding
   per head dim, so that the dQ partials' items (4 queries x PD head dims each) spread over the
   banks, and the stride stays even: an item's RQ neighbouring keys are then one 8- or 16-byte
   load (the local arrays are 16-byte aligned; with 4-byte alignment every load was a scalar one,
   and the dK/dV kernel took 15-25% longer on the H100, docs/PERFORMANCE.md, session 11). */
#define KSTR (BQ + 2 * DQP)

#if BQ % RQ != 0 || TK % (TC * VW) != 0 || HDVP % (TC * VW) != 0 || HDP % (TC * VW) != 0
#error "tile configuration: RQ | tile, TC * VW | TK, HDP and HDVP"
#endif
#if DQP && (TK % 4 != 0 || HDP % 4 != 0)
#error "DQP: TK and HDP multiples of 4 (the partials' 4 x 4 blocks)"
#endif

/* The VW elements of column `kk` of a [dims][TK] local array at dims d0..d0+VW-1. */
NA_FN vec_t na_gather(__local const float* a, int d0, int kk) {
  float g[VW];
#pragma unroll
  for (int e = 0; e < VW; ++e) g[e] = a[(d0 + e) * TK + kk];
  return VLOAD(g);
}

/* The chunk loads of both kernels, per item: NLQ values of the chunk's rows of q (dK/dV) or k
   (dQ), NLO of d_out or v, and the metadata of NM of its rows. */
#define NLQ ((TK * HDP + NT - 1) / NT)
#define NLO ((TK * HDVP + NT - 1) / NT)
#define NM ((TK + NT - 1) / NT)
#if DQP /* head dims per dQ-partial block: enough blocks for every item */
#if (TK / 4) * (HDP / 4) >= NT
#define PD 4
#elif (TK / 4) * (HDP / 2) >= NT
#define PD 2
#else
#define PD 1
#endif
#endif

/* One query row of a dK/dV chunk: its row of q / d_out / lse (-1 past the box or the last
   chunk), lse in log2 units, D, and its window per axis (FAR when dead). */
typedef struct {
  int tok;
  float lse, d;
  int lo[3], hi[3];
} na_qmeta;

/* Row qq of chunk n of a key tile t (na_fused_bwd_dkdv): row (n % nch) * TK + qq of the tile's
   inverse box, query head h0 + n / nch. */
NA_FN na_qmeta na_chunk_meta(int n, int qq, int nch, int nchunks, int qbox, na_tile t, int b, int N,
                             int H, int h0, __global const float* lse, __global const float* delta,
                             int L1, int L2) {
  const int nn = NA_MIN(n, nchunks - 1);
  const int f = (nn % nch) * TK + qq;
  const int live = n < nchunks && qq < TK && f < qbox;
  const int ff = live ? f : 0;
  const int cc[3] = {ff / (t.kcnt[2] * t.kcnt[1]), (ff / t.kcnt[2]) % t.kcnt[1], ff % t.kcnt[2]};
  const int qrow =
      (b * N + NA_TOKEN(cc[0], cc[1], cc[2], t.kst, t.grp, L1, L2)) * H + h0 + nn / nch;
  na_qmeta m;
  m.tok = live ? qrow : -1;
  m.lse = lse[qrow] * LOG2E;
  m.d = delta[qrow];
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const int qi = t.kst[a] + cc[a];
    m.lo[a] = live ? na_win_start(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) : FAR;
    m.hi[a] = live ? na_win_end(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) : FAR;
  }
  return m;
}

/* Inside na_fused_bwd_dkdv: metadata m[u] (row lid + u * NT) into buffer buf. */
#define PUT_META(buf)                                   \
  do {                                                  \
    _Pragma("unroll") for (int u = 0; u < NM; ++u) {    \
      const int qq = lid + u * NT;                      \
      if (NM * NT == TK || qq < TK) {                   \
        lse_q[buf][qq] = m[u].lse;                      \
        d_q_[buf][qq] = m[u].d;                         \
        q_tok[buf][qq] = m[u].tok;                      \
        _Pragma("unroll") for (int a = 0; a < 3; ++a) { \
          q_lo[buf][a][qq] = m[u].lo[a];                \
          q_hi[buf][a][qq] = m[u].hi[a];                \
        }                                               \
      }                                                 \
    }                                                   \
  } while (0)

/* ... the metadata of chunk n into m (issues its lse and D loads). */
#define GET_META(n)                                                                     \
  do {                                                                                  \
    _Pragma("unroll") for (int u = 0; u < NM; ++u) m[u] = na_chunk_meta(                \
        (n), lid + u * NT, nch, nchunks, qbox, t, b, N, H, hk * G, lse, delta, L1, L2); \
  } while (0)

/* One key of a dQ chunk: its row of k / v (-1 past the box or the last chunk) and its
   coordinates in the tile's key box (FAR on axis 0 when dead). */
typedef struct {
  int row;
  int y[3];
} na_kmeta;

/* Key kk of chunk n of a query tile t (na_fused_bwd_dq): key n * TK + kk of the tile's box. */
NA_FN na_kmeta na_key_meta(int n, int kk, int nchunks, int kbox, na_tile t, int b, int N, int HKV,
                           int hk, int L1, int L2) {
  const int f = NA_MIN(n, nchunks - 1) * TK + kk;
  const int live = n < nchunks && kk < TK && f < kbox;
  const int y2 = f % t.kcnt[2], y1 = (f / t.kcnt[2]) % t.kcnt[1], y0 = f / (t.kcnt[2] * t.kcnt[1]);
  na_kmeta m;
  m.row = live ? (b * N + NA_TOKEN(y0, y1, y2, t.kst, t.grp, L1, L2)) * HKV + hk : -1;
  m.y[0] = live ? y0 : FAR;
  m.y[1] = y1;
  m.y[2] = y2;
  return m;
}

/* Inside na_fused_bwd_dq: key metadata m[u] (key lid + u * NT) into buffer buf. */
#define PUT_KMETA(buf)                                                                  \
  do {                                                                                  \
    _Pragma("unroll") for (int u = 0; u < NM; ++u) {                                    \
      const int kk = lid + u * NT;                                                      \
      if (NM * NT == TK || kk < TK) {                                                   \
        key_row[buf][kk] = m[u].row;                                                    \
        _Pragma("unroll") for (int a = 0; a < 3; ++a) key_y[buf][a][kk] = m[u].y[a];    \
      }                                                                                 \
    }                                                                                   \
  } while (0)

/* ... the metadata of chunk n's keys into m. */
#define GET_KMETA(n)                                                                          \
  do {                                                                                        \
    _Pragma("unroll") for (int u = 0; u < NM; ++u) m[u] =                                     \
        na_key_meta((n), lid + u * NT, nchunks, kbox, t, b, N, HKV, hk, L1, L2);              \
  } while (0)

/* Both kernels: the rows of a chunk (the other side's: keys for dQ, queries for dK/dV) whose
   row indices are in rows[buf] (-1 past the box) from pa (HDP head dims) and pb (HDVP) into
   registers ra, rb (NLQ and NLO values per item: issued, not waited for; zeros past the box
   and the head dims). */
#define LOAD_ROWS(buf, rows, ra, rb, pa, pb)                                           \
  do {                                                                                 \
    _Pragma("unroll") for (int u = 0; u < NLQ; ++u) {                                  \
      const int idx = lid + u * NT, rr = idx / HDP, d = idx % HDP;                     \
      const int row = (NLQ * NT == TK * HDP || idx < TK * HDP) ? rows[buf][rr] : -1;   \
      ra[u] = (row >= 0 && d < hd) ? LOADF(pa, row * hd + d) : 0.0f;                   \
    }                                                                                  \
    _Pragma("unroll") for (int u = 0; u < NLO; ++u) {                                  \
      const int idx = lid + u * NT, rr = idx / HDVP, d = idx % HDVP;                   \
      const int row = (NLO * NT == TK * HDVP || idx < TK * HDVP) ? rows[buf][rr] : -1; \
      rb[u] = (row >= 0 && d < hdv) ? LOADF(pb, row * hdv + d) : 0.0f;                 \
    }                                                                                  \
  } while (0)

/* ... and ra, rb into the chunk's local copies A, B (head-dim major: A[d * TK + row]). */
#define STORE_ROWS(ra, rb, A, B)                                                               \
  do {                                                                                         \
    _Pragma("unroll") for (int u = 0; u < NLQ; ++u) {                                          \
      const int idx = lid + u * NT;                                                            \
      if (NLQ * NT == TK * HDP || idx < TK * HDP) A[(idx % HDP) * TK + idx / HDP] = ra[u];     \
    }                                                                                          \
    _Pragma("unroll") for (int u = 0; u < NLO; ++u) {                                          \
      const int idx = lid + u * NT;                                                            \
      if (NLO * NT == TK * HDVP || idx < TK * HDVP) B[(idx % HDVP) * TK + idx / HDVP] = rb[u]; \
    }                                                                                          \
  } while (0)

__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void na_fused_bwd_dq(
    __global const stor_t* q, __global const stor_t* k, __global const stor_t* v,
    __global const stor_t* d_out, __global const float* lse, __global const float* delta,
    __global stor_t* d_q, int B, int L0, int L1, int L2, int H, int HKV, int hd, int hdv,
    float scale, int nt0, int nt1, int nt2) {
  __local float Qs[HDP * BQ] __attribute__((aligned(16)));  /* Qs[d][row], log2 units */
  __local float Os[HDVP * BQ] __attribute__((aligned(16))); /* dO^T: Os[d][row] */
  __local float Kt[HDP * TK] __attribute__((aligned(16)));  /* Kt[d][key] */
  __local float Vt[HDVP * TK] __attribute__((aligned(16))); /* Vt[d][key] */
  __local float Ps[BQ * TK] __attribute__((aligned(16)));   /* dS[row][key] */
  __local float lse_r[BQ], d_r[BQ];
  /* Each chunk's key metadata, double-buffered as the dK/dV kernel's query metadata (below;
     PUT_KMETA, GET_KMETA as its PUT_META, GET_META). */
  __local int key_row[2][TK];
  __local int key_y[2][3][TK];

  const int lid = get_local_id(0);
  const int r = lid / TC, c = lid % TC;
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

  int qlo[RQ][3], qhi[RQ][3];
#pragma unroll
  for (int i = 0; i < RQ; ++i) {
    ROW_X(r * RQ + i, x0, x1, x2);
    const int x[3] = {x0, x1, x2};
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      const int qi = t.first[a] + NA_MIN(x[a], t.valid[a] - 1);
      qlo[i][a] = na_win_start(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
      qhi[i][a] = na_win_end(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
    }
  }
  const float qscale = scale * LOG2E;
  for (int idx = lid; idx < BQ * HDP; idx += NT) {
    const int row = idx / HDP, d = idx % HDP;
    ROW_X(row, x0, x1, x2);
    const int in = d < hd && x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2];
    const int qrow = (b * N + NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2)) * H + h;
    Qs[d * BQ + row] = in ? LOADF(q, qrow * hd + d) * qscale : 0.0f;
  }
  for (int idx = lid; idx < BQ * HDVP; idx += NT) {
    const int row = idx / HDVP, d = idx % HDVP;
    ROW_X(row, x0, x1, x2);
    const int in = d < hdv && x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2];
    const int qrow = (b * N + NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2)) * H + h;
    Os[d * BQ + row] = in ? LOADF(d_out, qrow * hdv + d) : 0.0f;
  }
  for (int row = lid; row < BQ; row += NT) {
    ROW_X(row, x0, x1, x2);
    const int in = x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2];
    const int qrow = (b * N + NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2)) * H + h;
    lse_r[row] = in ? lse[qrow] * LOG2E : 0.0f;
    d_r[row] = in ? delta[qrow] : 0.0f;
  }

  vec_t acc[RQ][NDQ];
#pragma unroll
  for (int i = 0; i < RQ; ++i)
#pragma unroll
    for (int j = 0; j < NDQ; ++j) acc[i][j] = (vec_t)(0.0f);

  /* As in na_fused_bwd_dkdv: chunk n + 1's K and V rows are loaded into registers during chunk
     n's dQ product, and chunk n + 2's metadata; pass n = -1 only stages chunk 0. */
  const int nchunks = (kbox + TK - 1) / TK;
  na_kmeta m[NM];
  float rk[NLQ], rv[NLO];
  GET_KMETA(0);
  for (int n = -1; n < nchunks; ++n) {
    const int cb = n & 1; /* chunk n's metadata buffer */
    barrier(CLK_LOCAL_MEM_FENCE);
    if (n >= 0) STORE_ROWS(rk, rv, Kt, Vt);
    PUT_KMETA(cb ^ 1);
    barrier(CLK_LOCAL_MEM_FENCE);
    if (n >= 0) {
      vec_t s[RQ][NKV], dp[RQ][NKV];
#pragma unroll
      for (int i = 0; i < RQ; ++i)
#pragma unroll
        for (int j = 0; j < NKV; ++j) s[i][j] = dp[i][j] = (vec_t)(0.0f);
      for (int d = 0; d < HDP; ++d) {
        vec_t kv[NKV];
#pragma unroll
        for (int j = 0; j < NKV; ++j) kv[j] = VLOAD(&Kt[d * TK + c * RK + j * VW]);
#pragma unroll
        for (int i = 0; i < RQ; ++i) {
          const vec_t qv = (vec_t)(Qs[d * BQ + r * RQ + i]);
#pragma unroll
          for (int j = 0; j < NKV; ++j) s[i][j] = fma(qv, kv[j], s[i][j]);
        }
      }
      for (int d = 0; d < HDVP; ++d) {
        vec_t vv[NKV];
#pragma unroll
        for (int j = 0; j < NKV; ++j) vv[j] = VLOAD(&Vt[d * TK + c * RK + j * VW]);
#pragma unroll
        for (int i = 0; i < RQ; ++i) {
          const vec_t ov = (vec_t)(Os[d * BQ + r * RQ + i]);
#pragma unroll
          for (int j = 0; j < NKV; ++j) dp[i][j] = fma(ov, vv[j], dp[i][j]);
        }
      }
#pragma unroll
      for (int j = 0; j < NKV; ++j) {
        const int kk = c * RK + j * VW;
        const ivec_t y0 = VLOAD(&key_y[cb][0][kk]);
#if RANK >= 2
        const ivec_t y1 = VLOAD(&key_y[cb][1][kk]);
#endif
#if RANK >= 3
        const ivec_t y2 = VLOAD(&key_y[cb][2][kk]);
#endif
#pragma unroll
        for (int i = 0; i < RQ; ++i) {
          const ivec_t in = NA_IN_BOX(y0, y1, y2, qlo[i][0], qhi[i][0], qlo[i][1], qhi[i][1],
                                      qlo[i][2], qhi[i][2]);
          const int row = r * RQ + i;
          const vec_t p = select((vec_t)(0.0f), exp2(s[i][j] - (vec_t)(lse_r[row])), in);
          VSTORE(p * (dp[i][j] - (vec_t)(d_r[row])), &Ps[row * TK + kk]);
        }
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    LOAD_ROWS(cb ^ 1, key_row, rk, rv, k, v);
    GET_KMETA(n + 2);
    if (n >= 0)
      for (int kk = 0; kk < TK; ++kk) {
        vec_t kv[NDQ];
#pragma unroll
        for (int j = 0; j < NDQ; ++j) kv[j] = na_gather(Kt, (j * TC + c) * VW, kk);
#pragma unroll
        for (int i = 0; i < RQ; ++i) {
          const vec_t ds = (vec_t)(Ps[(r * RQ + i) * TK + kk]);
#pragma unroll
          for (int j = 0; j < NDQ; ++j) acc[i][j] = fma(ds, kv[j], acc[i][j]);
        }
      }
  }

#pragma unroll
  for (int i = 0; i < RQ; ++i) {
    ROW_X(r * RQ + i, x0, x1, x2);
    if (x0 >= t.valid[0] || x1 >= t.valid[1] || x2 >= t.valid[2]) continue;
    const int qrow = (b * N + NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2)) * H + h;
#pragma unroll
    for (int j = 0; j < NDQ; ++j) {
      float o[VW];
      VSTORE(acc[i][j] * scale, o);
#pragma unroll
      for (int e = 0; e < VW; ++e) {
        const int d = (j * TC + c) * VW + e;
        if (d < hd) STOREF(d_q, qrow * hd + d, o[e]);
      }
    }
  }
}

__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void na_fused_bwd_dkdv(
    __global const stor_t* q, __global const stor_t* k, __global const stor_t* v,
    __global const stor_t* d_out, __global const float* lse, __global const float* delta,
    __global stor_t* d_k, __global stor_t* d_v,
#if DQP
    /* dQ partials: per (batch, head, key tile) a slot of HDP head dims of QB floats (QB, the
       slot's rows, a multiple of 4; head-dim major, unlike the lanes form's slots); CT is 1
       (one tile per slot, the argument list of the lanes form's kernel) */
    __global float* dq_part, int QB, int CT,
#endif
    int B, int L0, int L1, int L2, int H, int HKV, int hd, int hdv, float scale, int nt0, int nt1,
    int nt2) {
  __local float Ks[HDP * KSTR] __attribute__((aligned(16))); /* Ks[d][key], log2 units */
  __local float Vs[HDVP * BQ] __attribute__((aligned(16)));  /* Vs[d][key] */
  __local float Qt[HDP * TK] __attribute__((aligned(16)));   /* Qt[d][query] */
  __local float Ot[HDVP * TK] __attribute__((aligned(16)));  /* dO^T: Ot[d][query] */
  __local float Ps[BQ * TK] __attribute__((aligned(16)));    /* P^T[key][query] */
  __local float Ss[BQ * TK] __attribute__((aligned(16)));    /* dS^T[key][query] */
  /* Each chunk's query metadata, double-buffered (chunk n in buffer n & 1): pass n writes chunk
     n + 1's after its first barrier, while chunk n's is read from the other buffer. */
  __local float lse_q[2][TK], d_q_[2][TK];
  __local int q_tok[2][TK];
  __local int q_lo[2][3][TK], q_hi[2][3][TK];

  const int lid = get_local_id(0);
  const int r = lid / TC, c = lid % TC;
  const int N = L0 * L1 * L2;
  (void)B; /* the tiled backward kernels share one argument list (variant.hpp) */
  const int tiles = nt0 * nt1 * nt2;
  const int wg = get_group_id(0);
  const int hk = (wg / tiles) % HKV;
  const int b = wg / (tiles * HKV);
  const int G = H / HKV;
#if DQP
  (void)CT;
#endif
  na_tile t = na_tile_of(wg % tiles, L0, L1, L2, nt0, nt1, nt2, TQ0, TQ1, TQ2);
  if (!t.live) return;
  /* The inverse neighborhood of the key tile, per axis (group coordinates). */
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const int lo = na_inv_lo(t.first[a], t.glen[a], AX_K(a), AX_S(a), AX_C(a));
    t.kst[a] = lo;
    t.kcnt[a] =
        na_inv_hi(t.first[a] + t.valid[a] - 1, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - lo + 1;
  }
  const int qbox = t.kcnt[0] * t.kcnt[1] * t.kcnt[2];

  /* This item's keys: group coordinates (FAR past the tile). */
  int ky[RQ][3];
#pragma unroll
  for (int i = 0; i < RQ; ++i) {
    ROW_X(r * RQ + i, x0, x1, x2);
    const int in = x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2];
    ky[i][0] = in ? t.first[0] + x0 : FAR;
    ky[i][1] = t.first[1] + x1;
    ky[i][2] = t.first[2] + x2;
  }
  const float kscale = scale * LOG2E;
  for (int idx = lid; idx < BQ * HDP; idx += NT) {
    const int row = idx / HDP, d = idx % HDP;
    ROW_X(row, x0, x1, x2);
    const int in = d < hd && x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2];
    const int krow = (b * N + NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2)) * HKV + hk;
    Ks[d * KSTR + row] = in ? LOADF(k, krow * hd + d) * kscale : 0.0f;
  }
  for (int idx = lid; idx < BQ * HDVP; idx += NT) {
    const int row = idx / HDVP, d = idx % HDVP;
    ROW_X(row, x0, x1, x2);
    const int in = d < hdv && x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2];
    const int krow = (b * N + NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2)) * HKV + hk;
    Vs[d * BQ + row] = in ? LOADF(v, krow * hdv + d) : 0.0f;
  }

  vec_t dk[RQ][NDQ], dv[RQ][NDV];
#pragma unroll
  for (int i = 0; i < RQ; ++i) {
#pragma unroll
    for (int j = 0; j < NDQ; ++j) dk[i][j] = (vec_t)(0.0f);
#pragma unroll
    for (int j = 0; j < NDV; ++j) dv[i][j] = (vec_t)(0.0f);
  }

  /* The chunks of every query head of the group in one sequence: chunk n is rows
     (n % nch) * TK.. of head hk * G + n / nch's box. Each pass n: (barrier) chunk n's Q and dO
     rows from registers into Qt, Ot and chunk n + 1's metadata into its buffer; (barrier)
     S^T, dP^T, P^T and dS^T; (barrier) chunk n + 1's rows are loaded into registers and chunk
     n + 2's metadata computed (its lse and D loads issued), then dV, dK and the dQ partials:
     the loads' latency hides behind the products instead of being waited for between two
     barriers (one barrier fewer per chunk, too). */
  const int nch = (qbox + TK - 1) / TK, nchunks = G * nch;
  na_qmeta m[NM];
  float rq[NLQ], ro[NLO];
  GET_META(0);
  /* Pass n = -1 only stages chunk 0. Every value carried from one pass to the next is set after
     the pass's second barrier: PoCL 3.1 ran forms that set them before the loop's first barrier,
     or between the body's barriers, wrongly (docs/DESIGN.md). */
  for (int n = -1; n < nchunks; ++n) {
    const int cb = n & 1; /* chunk n's metadata buffer */
#if DQP
    const int h = hk * G + n / nch, i0 = (n % nch) * TK;
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
    if (n >= 0) STORE_ROWS(rq, ro, Qt, Ot);
    PUT_META(cb ^ 1);
    barrier(CLK_LOCAL_MEM_FENCE);
    if (n >= 0) {
      vec_t s[RQ][NKV], dp[RQ][NKV];
#pragma unroll
      for (int i = 0; i < RQ; ++i)
#pragma unroll
        for (int j = 0; j < NKV; ++j) s[i][j] = dp[i][j] = (vec_t)(0.0f);
      for (int d = 0; d < HDP; ++d) {
        vec_t qv[NKV];
#pragma unroll
        for (int j = 0; j < NKV; ++j) qv[j] = VLOAD(&Qt[d * TK + c * RK + j * VW]);
#pragma unroll
        for (int i = 0; i < RQ; ++i) {
          const vec_t kv = (vec_t)(Ks[d * KSTR + r * RQ + i]);
#pragma unroll
          for (int j = 0; j < NKV; ++j) s[i][j] = fma(kv, qv[j], s[i][j]);
        }
      }
      for (int d = 0; d < HDVP; ++d) {
        vec_t ov[NKV];
#pragma unroll
        for (int j = 0; j < NKV; ++j) ov[j] = VLOAD(&Ot[d * TK + c * RK + j * VW]);
#pragma unroll
        for (int i = 0; i < RQ; ++i) {
          const vec_t vv = (vec_t)(Vs[d * BQ + r * RQ + i]);
#pragma unroll
          for (int j = 0; j < NKV; ++j) dp[i][j] = fma(vv, ov[j], dp[i][j]);
        }
      }
#pragma unroll
      for (int j = 0; j < NKV; ++j) {
        const int qq = c * RK + j * VW;
        const vec_t l2 = VLOAD(&lse_q[cb][qq]);
        const vec_t dd = VLOAD(&d_q_[cb][qq]);
        const ivec_t lo0 = VLOAD(&q_lo[cb][0][qq]), hi0 = VLOAD(&q_hi[cb][0][qq]);
#if RANK >= 2
        const ivec_t lo1 = VLOAD(&q_lo[cb][1][qq]), hi1 = VLOAD(&q_hi[cb][1][qq]);
#endif
#if RANK >= 3
        const ivec_t lo2 = VLOAD(&q_lo[cb][2][qq]), hi2 = VLOAD(&q_hi[cb][2][qq]);
#endif
#pragma unroll
        for (int i = 0; i < RQ; ++i) {
          const ivec_t in = NA_IN_BOX(ky[i][0], ky[i][1], ky[i][2], lo0, hi0, lo1, hi1, lo2, hi2);
          const vec_t p = select((vec_t)(0.0f), exp2(s[i][j] - l2), in);
          const int row = r * RQ + i;
          VSTORE(p, &Ps[row * TK + qq]);
          VSTORE(p * (dp[i][j] - dd), &Ss[row * TK + qq]);
        }
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    LOAD_ROWS(cb ^ 1, q_tok, rq, ro, q, d_out);
    GET_META(n + 2);
    if (n >= 0) {
      for (int qq = 0; qq < TK; ++qq) {
        vec_t ov[NDV], qv[NDQ];
#pragma unroll
        for (int j = 0; j < NDV; ++j) ov[j] = na_gather(Ot, (j * TC + c) * VW, qq);
#pragma unroll
        for (int j = 0; j < NDQ; ++j) qv[j] = na_gather(Qt, (j * TC + c) * VW, qq);
#pragma unroll
        for (int i = 0; i < RQ; ++i) {
          const vec_t p = (vec_t)(Ps[(r * RQ + i) * TK + qq]);
          const vec_t ds = (vec_t)(Ss[(r * RQ + i) * TK + qq]);
#pragma unroll
          for (int j = 0; j < NDV; ++j) dv[i][j] = fma(p, ov[j], dv[i][j]);
#pragma unroll
          for (int j = 0; j < NDQ; ++j) dk[i][j] = fma(ds, qv[j], dk[i][j]);
        }
      }
#if DQP
      /* dQ partials of the chunk's queries: scale * sum over the tile's keys of dS^T[key][q]
         K[key] (Ks holds K * scale * LOG2E, hence LN2), in blocks of 4 queries x PD head dims,
         one block per item at a time (query blocks fastest), each written as PD float4 rows of
         4 queries to the tile's slot (head-dim major: 64 contiguous bytes per head dim for 4
         neighbouring items). Rows past qbox hold zeros (their dS^T is 0) and stay in the slot
         (QB is a multiple of 4, at least qbox). */
      {
        __global float* slot = dq_part + ((b * H + h) * tiles + wg % tiles) * QB * HDP;
        for (int blk = lid; blk < (TK / 4) * (HDP / PD); blk += NT) {
          const int q0 = (blk % (TK / 4)) * 4, d0 = (blk / (TK / 4)) * PD;
          float4 a[PD];
#pragma unroll
          for (int e = 0; e < PD; ++e) a[e] = (float4)(0.0f);
          for (int l = 0; l < BQ; ++l) {
            const float4 sv = vload4(0, &Ss[l * TK + q0]);
#pragma unroll
            for (int e = 0; e < PD; ++e) a[e] = fma((float4)(Ks[(d0 + e) * KSTR + l]), sv, a[e]);
          }
          const int f = i0 + q0;
          if (f < qbox) {
#pragma unroll
            for (int e = 0; e < PD; ++e) vstore4(a[e] * LN2, 0, &slot[(d0 + e) * QB + f]);
          }
        }
      }
#endif
    }
  }

#pragma unroll
  for (int i = 0; i < RQ; ++i) {
    ROW_X(r * RQ + i, x0, x1, x2);
    if (x0 >= t.valid[0] || x1 >= t.valid[1] || x2 >= t.valid[2]) continue;
    const int krow = (b * N + NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2)) * HKV + hk;
    float o[VW];
#pragma unroll
    for (int j = 0; j < NDQ; ++j) {
      VSTORE(dk[i][j] * scale, o);
#pragma unroll
      for (int e = 0; e < VW; ++e) {
        const int d = (j * TC + c) * VW + e;
        if (d < hd) STOREF(d_k, krow * hd + d, o[e]);
      }
    }
#pragma unroll
    for (int j = 0; j < NDV; ++j) {
      VSTORE(dv[i][j], o);
#pragma unroll
      for (int e = 0; e < VW; ++e) {
        const int d = (j * TC + c) * VW + e;
        if (d < hdv) STOREF(d_v, krow * hdv + d, o[e]);
      }
    }
  }
}

#if DQP
#define DQ_DMAJOR 1 /* the slots are head-dim major (above) */
#include "na_dq_reduce.h" /* na_fused_bwd_dq_reduce, the second pass of the 5-product backward */
#endif
