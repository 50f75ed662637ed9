/* The tensor-core forward (variant mma): NVIDIA GPUs through NVIDIA's OpenCL driver, f16/bf16
 * storage, f32 accumulation, inline PTX (na_mma_common.h). Tiling as in the fused variant: a
 * work-group owns a box of BQ = 16 * NW queries inside one dilation group and one (batch, head),
 * and visits the union of their windows in chunks of TK keys. Warp w owns query rows
 * [16w, 16w + 16): its Q fragments stay in registers; per chunk it computes S = Q K^T with
 * mma.sync (K rows read as B fragments from shared memory), masks S to each row's window only
 * when the chunk is not entirely inside every window of the tile, updates the online softmax in
 * registers (quad shuffles for the row max), and adds P V with mma.sync (P reused from the S
 * accumulators, V through ldmatrix.trans). K and V chunks arrive by cp.async into STAGES
 * shared-memory buffers, so the next chunk loads while this one computes.
 *
 * Compiled with MMA_DQ=1 the same tiling gives the backward's dQ kernel (na_mma_bwd_dq): dO
 * fragments join Q's in registers, each chunk computes S, dP = dO V^T (V as B fragments),
 * P = exp2(S - lse), dS = P (dP - D), and dQ += dS K (K by ldmatrix.trans); no online softmax. */
#include "na_mma_common.h"
#include "na_tile.h"

#ifndef TQ0
#define TQ0 64 /* query tile extent on axis 0; TQ0 * TQ1 * TQ2 = 16 * NW */
#endif
#ifndef TQ1
#define TQ1 1
#endif
#ifndef TQ2
#define TQ2 1
#endif
#ifndef NW
#define NW 4 /* warps per work-group, 16 query rows each */
#endif
#ifndef TK
#define TK 32 /* keys per chunk (multiple of 16) */
#endif
#ifndef STAGES
#define STAGES 2 /* shared-memory buffers for K/V chunks (1 or 2) */
#endif
#ifndef HDP
#define HDP 64 /* head_dim bucket (multiple of 16, <= 128: Q fragments live in registers) */
#endif
#ifndef HDVP
#define HDVP HDP /* head_dim_v bucket (multiple of 16) */
#endif
#ifndef MMA_DQ
#define MMA_DQ 0 /* 1: build the backward's dQ kernel instead of the forward */
#endif

#define NT (32 * NW)
#define BQ (16 * NW)
#define SK ((HDP + 8) / 2)  /* K row stride in 32-bit words (+16 bytes: conflict-free) */
#define SV ((HDVP + 8) / 2) /* V row stride in words */
#define KSEG (HDP / 8)      /* 16-byte segments per K row */
#define VSEG (HDVP / 8)
#define NKB (TK / 8)        /* n8 key blocks per chunk */
#define NDB (HDVP / 8)      /* n8 value-dim blocks */
#define STAGE_WORDS (TK * (SK + SV))
#define QTILE_WORDS (MMA_DQ && SV > SK ? BQ * SV : BQ * SK) /* Q (and dO) staging */
#define SMEM_WORDS (QTILE_WORDS > STAGES * STAGE_WORDS ? QTILE_WORDS : STAGES * STAGE_WORDS)

#if TQ0 * TQ1 * TQ2 != BQ || TK % 16 != 0 || HDP % 16 != 0 || HDVP % 16 != 0 || HDP > 128
#error "mma tile configuration"
#endif

#if MMA_DQ
__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void na_mma_bwd_dq(
    __global const ushort* q, __global const ushort* k, __global const ushort* v,
    __global const ushort* d_out, __global const float* lse, __global const float* delta,
    __global ushort* d_q, int B, int L0, int L1, int L2, int H, int HKV, int hd, int hdv,
    float scale, int nt0, int nt1, int nt2) {
#else
__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void na_mma_fwd(
    __global const ushort* q, __global const ushort* k, __global const ushort* v,
    __global ushort* out, __global float* lse, int B, int L0, int L1, int L2, int H, int HKV,
    int hd, int hdv, float scale, int nt0, int nt1, int nt2) {
#endif
  /* Q staging, then STAGES x (K chunk, V chunk); 16-byte aligned for cp.async and ldmatrix */
  __local uint smem[SMEM_WORDS] __attribute__((aligned(16)));
  __local int key_y[STAGES][3][TK]; /* box coordinates of each chunk's keys (FAR past the box) */
  __local int key_in[STAGES][TK];   /* 1 when the key is in every row's window of the tile */

  const int lid = get_local_id(0);
  const int lane = lid & 31, warp = lid >> 5;
  const int g = lane >> 2, tq = lane & 3;
  const int N = L0 * L1 * L2;
  const int tiles = nt0 * nt1 * nt2;
  const int wg = get_group_id(0);
  const int h = (wg / tiles) % H;
  const int b = wg / (tiles * H);
  const int hk = h / (H / HKV);
  (void)B;
  const na_tile t = na_tile_of(wg % tiles, L0, L1, L2, nt0, nt1, nt2, TQ0, TQ1, TQ2);
  if (!t.live) return;
  const int kbox = t.kcnt[0] * t.kcnt[1] * t.kcnt[2];
  const int nchunks = (kbox + TK - 1) / TK;

  /* This thread's two rows (g and g + 8 of its warp): windows relative to the key box. */
  int wlo[2][3], whi[2][3], rvalid[2], rtok[2];
  /* The intersection of all windows of the tile: a chunk inside it needs no mask. */
  int ilo[3], ihi[3];
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const int last = t.first[a] + t.valid[a] - 1;
    ilo[a] = na_win_start(last, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
    ihi[a] = na_win_end(t.first[a], t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
  }
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    ROW_X(warp * 16 + g + 8 * i, x0, x1, x2);
    const int x[3] = {x0, x1, x2};
    rvalid[i] = x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2];
    rtok[i] = NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2);
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      const int qi = t.first[a] + NA_MIN(x[a], t.valid[a] - 1);
      wlo[i][a] = na_win_start(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
      whi[i][a] = na_win_end(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
    }
  }

  /* Stage the query tile (zeros past the tile and the head dim) and take Q fragments. */
  for (int idx = lid; idx < BQ * KSEG; idx += NT) {
    const int row = idx / KSEG, seg = idx % KSEG;
    ROW_X(row, x0, x1, x2);
    const int live = x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2] && seg * 8 < hd;
    const int tok = live ? NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2) : 0;
    CP_ASYNC_16(SMEM_ADDR(&smem[row * SK + seg * 4]), q + ((b * N + tok) * H + h) * hd + seg * 8,
                live ? 16 : 0);
  }
  CP_ASYNC_COMMIT();
  CP_ASYNC_WAIT(0);
  barrier(CLK_LOCAL_MEM_FENCE);
  uint qa[HDP / 16][4];
#pragma unroll
  for (int kk = 0; kk < HDP / 16; ++kk) {
    const int r0 = (warp * 16 + g) * SK + kk * 8 + tq;
    qa[kk][0] = smem[r0];
    qa[kk][1] = smem[r0 + 8 * SK];
    qa[kk][2] = smem[r0 + 4];
    qa[kk][3] = smem[r0 + 8 * SK + 4];
  }
  barrier(CLK_LOCAL_MEM_FENCE);
#if MMA_DQ
  /* The same for dO (A operand of dP = dO V^T), and each row's lse (log2 units) and D. */
  for (int idx = lid; idx < BQ * VSEG; idx += NT) {
    const int row = idx / VSEG, seg = idx % VSEG;
    ROW_X(row, x0, x1, x2);
    const int live = x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2] && seg * 8 < hdv;
    const int tok = live ? NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2) : 0;
    CP_ASYNC_16(SMEM_ADDR(&smem[row * SV + seg * 4]),
                d_out + ((b * N + tok) * H + h) * hdv + seg * 8, live ? 16 : 0);
  }
  CP_ASYNC_COMMIT();
  CP_ASYNC_WAIT(0);
  barrier(CLK_LOCAL_MEM_FENCE);
  uint oa[HDVP / 16][4];
#pragma unroll
  for (int kk = 0; kk < HDVP / 16; ++kk) {
    const int r0 = (warp * 16 + g) * SV + kk * 8 + tq;
    oa[kk][0] = smem[r0];
    oa[kk][1] = smem[r0 + 8 * SV];
    oa[kk][2] = smem[r0 + 4];
    oa[kk][3] = smem[r0 + 8 * SV + 4];
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  float lse2[2], dd[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int row = (b * N + rtok[i]) * H + h;
    lse2[i] = rvalid[i] ? lse[row] * LOG2E : 0.0f;
    dd[i] = rvalid[i] ? delta[row] : 0.0f;
  }
#endif

  /* Each thread copies fixed 16-byte segments (slot j: segment lid + j * NT of the chunk) of
     every chunk; it follows its slots' box coordinates by counting (no divisions in the loop). */
#define KSLOTS ((TK * KSEG + NT - 1) / NT)
#define VSLOTS ((TK * VSEG + NT - 1) / NT)
  int kc[KSLOTS][3];
#if KSEG == VSEG
#define vc kc /* same segments per row: the V slots are the K slots (saves registers) */
#else
  int vc[VSLOTS][3];
#endif
#pragma unroll
  for (int j = 0; j < KSLOTS; ++j) {
    const int f = (lid + j * NT) / KSEG;
    kc[j][2] = f % t.kcnt[2];
    kc[j][1] = (f / t.kcnt[2]) % t.kcnt[1];
    kc[j][0] = f / (t.kcnt[2] * t.kcnt[1]);
  }
#if KSEG != VSEG
#pragma unroll
  for (int j = 0; j < VSLOTS; ++j) {
    const int f = (lid + j * NT) / VSEG;
    vc[j][2] = f % t.kcnt[2];
    vc[j][1] = (f / t.kcnt[2]) % t.kcnt[1];
    vc[j][0] = f / (t.kcnt[2] * t.kcnt[1]);
  }
#endif

/* Issues the copies (and writes the key coordinates) of chunk `ci` into stage `st`, then
   advances the slot coordinates to the next chunk. */
#define LOAD_CHUNK(ci, st)                                                                    \
  do {                                                                                        \
    __local uint* ks_ = smem + (st) * STAGE_WORDS;                                            \
    __local uint* vs_ = ks_ + TK * SK;                                                        \
    _Pragma("unroll") for (int j = 0; j < KSLOTS; ++j) {                                      \
      const int idx = lid + j * NT, kk = idx / KSEG, seg = idx % KSEG;                        \
      const int live = (ci) * TK + kk < kbox && idx < TK * KSEG;                              \
      const int tok = NA_TOKEN(kc[j][0], kc[j][1], kc[j][2], t.kst, t.grp, L1, L2);           \
      if (idx < TK * KSEG)                                                                    \
        CP_ASYNC_16(SMEM_ADDR(&ks_[kk * SK + seg * 4]),                                       \
                    k + ((b * N + (live ? tok : 0)) * HKV + hk) * hd + seg * 8,               \
                    (live && seg * 8 < hd) ? 16 : 0);                                         \
      if (seg == 0 && idx < TK * KSEG) {                                                      \
        key_y[st][0][kk] = live ? kc[j][0] : FAR;                                             \
        key_y[st][1][kk] = kc[j][1];                                                          \
        key_y[st][2][kk] = kc[j][2];                                                          \
        key_in[st][kk] = live && kc[j][0] >= ilo[0] && kc[j][0] < ihi[0] &&                   \
                         kc[j][1] >= ilo[1] && kc[j][1] < ihi[1] && kc[j][2] >= ilo[2] &&     \
                         kc[j][2] < ihi[2];                                                   \
      }                                                                                       \
      if (KSEG != VSEG) ADVANCE(kc[j][0], kc[j][1], kc[j][2], TK, t.kcnt[1], t.kcnt[2]);      \
    }                                                                                         \
    _Pragma("unroll") for (int j = 0; j < VSLOTS; ++j) {                                      \
      const int idx = lid + j * NT, kk = idx / VSEG, seg = idx % VSEG;                        \
      const int live = (ci) * TK + kk < kbox && idx < TK * VSEG;                              \
      const int tok = NA_TOKEN(vc[j][0], vc[j][1], vc[j][2], t.kst, t.grp, L1, L2);           \
      if (idx < TK * VSEG)                                                                    \
        CP_ASYNC_16(SMEM_ADDR(&vs_[kk * SV + seg * 4]),                                       \
                    v + ((b * N + (live ? tok : 0)) * HKV + hk) * hdv + seg * 8,              \
                    (live && seg * 8 < hdv) ? 16 : 0);                                        \
      ADVANCE(vc[j][0], vc[j][1], vc[j][2], TK, t.kcnt[1], t.kcnt[2]);                        \
    }                                                                                         \
  } while (0)

#if MMA_DQ
#define NOB (HDP / 8) /* n8 blocks of the accumulator: dQ's head dims */
#else
#define NOB NDB /* n8 blocks of the accumulator: O's value dims */
#endif
  float o[NOB][4];
#pragma unroll
  for (int n = 0; n < NOB; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m_i[2] = {-INFINITY, -INFINITY}, l_i[2] = {0.0f, 0.0f};
  const float sscale = scale * LOG2E;

  LOAD_CHUNK(0, 0);
  CP_ASYNC_COMMIT();

  for (int c = 0; c < nchunks; ++c) {
    const int st = c % STAGES;
#if STAGES == 2
    if (c + 1 < nchunks) LOAD_CHUNK(c + 1, (c + 1) % 2);
    CP_ASYNC_COMMIT();
    CP_ASYNC_WAIT(1);
#else
    if (c > 0) {
      LOAD_CHUNK(c, 0);
      CP_ASYNC_COMMIT();
    }
    CP_ASYNC_WAIT(0);
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
    __local const uint* ks = smem + st * STAGE_WORDS;
    __local const uint* vs = ks + TK * SK;

    /* S = Q K^T for this warp's 16 rows x TK keys. */
    float s[NKB][4];
#pragma unroll
    for (int j = 0; j < NKB; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
    /* K fragments by ldmatrix (non-transposed): lane l addresses key row
       16 jj + 8 (l >> 4) + (l & 7) at head dims 16 kk + 8 ((l >> 3) & 1), giving b0, b1 of key
       block 2 jj and b0, b1 of key block 2 jj + 1. */
    const int krow = (lane >> 4) * 8 + (lane & 7), kcol = ((lane >> 3) & 1) * 4;
#pragma unroll
    for (int kk = 0; kk < HDP / 16; ++kk)
#pragma unroll
      for (int jj = 0; jj < NKB / 2; ++jj) {
        uint b0, b1, b2, b3;
        LDMATRIX_X4(b0, b1, b2, b3, SMEM_ADDR(&ks[(jj * 16 + krow) * SK + kk * 8 + kcol]));
        MMA_16816(s[2 * jj], qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3], b0, b1);
        MMA_16816(s[2 * jj + 1], qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3], b2, b3);
      }

#if MMA_DQ
    /* dP = dO V^T: V rows as B fragments, addressed like K's. */
    float dp[NKB][4];
#pragma unroll
    for (int j = 0; j < NKB; ++j) dp[j][0] = dp[j][1] = dp[j][2] = dp[j][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < HDVP / 16; ++kk)
#pragma unroll
      for (int jj = 0; jj < NKB / 2; ++jj) {
        uint b0, b1, b2, b3;
        LDMATRIX_X4(b0, b1, b2, b3, SMEM_ADDR(&vs[(jj * 16 + krow) * SV + kk * 8 + kcol]));
        MMA_16816(dp[2 * jj], oa[kk][0], oa[kk][1], oa[kk][2], oa[kk][3], b0, b1);
        MMA_16816(dp[2 * jj + 1], oa[kk][0], oa[kk][1], oa[kk][2], oa[kk][3], b2, b3);
      }
#endif

    /* Scale into log2 units; mask unless the whole chunk is inside every window of the tile
       (a warp vote over the chunk's per-key flags). */
    int inside = 1;
#pragma unroll
    for (int kk = lane; kk < TK; kk += 32) inside &= key_in[st][kk];
    const int full = na_warp_all(inside);
#pragma unroll
    for (int j = 0; j < NKB; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = j * 8 + 2 * tq + e;
        s[j][e] *= sscale;
        s[j][2 + e] *= sscale;
        if (!full) {
          const int y0 = key_y[st][0][col];
          int in0 = y0 >= wlo[0][0] && y0 < whi[0][0];
          int in1 = y0 >= wlo[1][0] && y0 < whi[1][0];
#if RANK >= 2
          const int y1 = key_y[st][1][col];
          in0 = in0 && y1 >= wlo[0][1] && y1 < whi[0][1];
          in1 = in1 && y1 >= wlo[1][1] && y1 < whi[1][1];
#endif
#if RANK >= 3
          const int y2 = key_y[st][2][col];
          in0 = in0 && y2 >= wlo[0][2] && y2 < whi[0][2];
          in1 = in1 && y2 >= wlo[1][2] && y2 < whi[1][2];
#endif
          if (!in0) s[j][e] = -INFINITY;
          if (!in1) s[j][2 + e] = -INFINITY;
        }
      }

#if MMA_DQ
    /* dS = P (dP - D) with P = exp2(S - lse) (0 where masked), then dQ += dS K: dS from the
       accumulators as A fragments, K by ldmatrix.trans (B[k = key][n = head dim]). */
#pragma unroll
    for (int j = 0; j < NKB; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e >> 1;
        s[j][e] = na_exp2(s[j][e] - lse2[i]) * (dp[j][e] - dd[i]);
      }
#pragma unroll
    for (int kk = 0; kk < TK / 16; ++kk) {
      const uint a0 = na_pack2(s[2 * kk][0], s[2 * kk][1]);
      const uint a1 = na_pack2(s[2 * kk][2], s[2 * kk][3]);
      const uint a2 = na_pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      const uint a3 = na_pack2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
      const int trow = kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7);
#pragma unroll
      for (int n = 0; n < NOB; n += 2) {
        uint b0, b1, b2, b3;
        LDMATRIX_X4_T(b0, b1, b2, b3, SMEM_ADDR(&ks[trow * SK + (n + (lane >> 4)) * 4]));
        MMA_16816(o[n], a0, a1, a2, a3, b0, b1);
        MMA_16816(o[n + 1], a0, a1, a2, a3, b2, b3);
      }
    }
#else
    /* Online softmax for rows g (i = 0) and g + 8 (i = 1). */
    float alpha[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float mx = m_i[i];
#pragma unroll
      for (int j = 0; j < NKB; ++j) mx = fmax(mx, fmax(s[j][2 * i], s[j][2 * i + 1]));
      mx = fmax(mx, na_shfl_xor(mx, 1));
      mx = fmax(mx, na_shfl_xor(mx, 2));
      const float m_use = mx == -INFINITY ? 0.0f : mx;
      alpha[i] = na_exp2(m_i[i] - m_use);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < NKB; ++j) {
        s[j][2 * i] = na_exp2(s[j][2 * i] - m_use);
        s[j][2 * i + 1] = na_exp2(s[j][2 * i + 1] - m_use);
        sum += s[j][2 * i] + s[j][2 * i + 1];
      }
      l_i[i] = l_i[i] * alpha[i] + sum; /* this thread's columns; the quad sums at the end */
      m_i[i] = mx;
    }
    /* Once the row maxima settle, alpha is 1 for the whole warp: skip the rescale. */
    if (!na_warp_all(alpha[0] == 1.0f && alpha[1] == 1.0f)) {
#pragma unroll
      for (int n = 0; n < NDB; ++n) {
        o[n][0] *= alpha[0];
        o[n][1] *= alpha[0];
        o[n][2] *= alpha[1];
        o[n][3] *= alpha[1];
      }
    }

    /* O += P V: P from the S accumulators, V by ldmatrix.trans (lane l gives the address of
       key row 16kk + 8((l >> 3) & 1) + (l & 7), value columns 8(n + (l >> 4))..). */
#pragma unroll
    for (int kk = 0; kk < TK / 16; ++kk) {
      const uint a0 = na_pack2(s[2 * kk][0], s[2 * kk][1]);
      const uint a1 = na_pack2(s[2 * kk][2], s[2 * kk][3]);
      const uint a2 = na_pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      const uint a3 = na_pack2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
      const int vrow = kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7);
#pragma unroll
      for (int n = 0; n < NDB; n += 2) {
        uint b0, b1, b2, b3;
        LDMATRIX_X4_T(b0, b1, b2, b3, SMEM_ADDR(&vs[vrow * SV + (n + (lane >> 4)) * 4]));
        MMA_16816(o[n], a0, a1, a2, a3, b0, b1);
        MMA_16816(o[n + 1], a0, a1, a2, a3, b2, b3);
      }
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
  }

#if MMA_DQ
  /* dQ = scale * sum dS K (dS is with respect to the scaled scores), as f16/bf16 pairs. */
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (!rvalid[i]) continue;
    __global uint* qrow = (__global uint*)(d_q + ((b * N + rtok[i]) * H + h) * hd);
#pragma unroll
    for (int n = 0; n < NOB; ++n) {
      const int d = n * 8 + 2 * tq;
      if (d < hd) qrow[d / 2] = na_pack2(o[n][2 * i] * scale, o[n][2 * i + 1] * scale);
    }
  }
  (void)m_i;
  (void)l_i;
}
#else
  /* Quad sums of l, normalize, write out (pairs of f16/bf16) and lse. */
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l_i[i] += na_shfl_xor(l_i[i], 1);
    l_i[i] += na_shfl_xor(l_i[i], 2);
  }
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (!rvalid[i]) continue;
    const float inv = 1.0f / l_i[i];
    const int row = (b * N + rtok[i]) * H + h;
    __global uint* orow = (__global uint*)(out + row * hdv);
#pragma unroll
    for (int n = 0; n < NDB; ++n) {
      const int d = n * 8 + 2 * tq;
      if (d < hdv) orow[d / 2] = na_pack2(o[n][2 * i] * inv, o[n][2 * i + 1] * inv);
    }
    if (tq == 0 && lse) lse[row] = (m_i[i] + log2(l_i[i])) * LN2;
  }
}
#endif
