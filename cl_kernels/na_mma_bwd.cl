/* The tensor-core backward's dK/dV kernel (variant mma; dQ is na_mma_fwd.cl built with MMA_DQ).
 * A work-group owns a box of BK = 16 * MW * NW keys inside one dilation group and one (batch,
 * kv head); warp w owns key rows [16 MW w, 16 MW (w + 1)) as MW blocks of 16. For every query
 * head of the kv head's group it walks the tile's inverse neighborhood (one box of queries,
 * closed form in na_window.h) in chunks of TQC queries that arrive by cp.async (Q and dO rows,
 * STAGES buffers); a warp skips a chunk none of whose queries sees any of its keys:
 *   S^T = K Q^T and dP^T = V dO^T    (K, V fragments by ldmatrix from the resident tile; Q, dO
 *                                     rows as B fragments),
 *   P^T = exp2(S^T - lse), dS^T = P^T (dP^T - D)    (masked to each query's window only when
 *                                                    the chunk has a query not seeing the tile),
 *   dV += P^T dO, dK += dS^T Q      (Q, dO by ldmatrix.trans).
 * No atomics: each key's gradient is summed by one warp in a fixed order. */
#include "na_mma_common.h"
#include "na_tile.h"

#ifndef TQ0
#define TQ0 64 /* key tile extent on axis 0; TQ0 * TQ1 * TQ2 = 16 * NW */
#endif
#ifndef TQ1
#define TQ1 1
#endif
#ifndef TQ2
#define TQ2 1
#endif
#ifndef NW
#define NW 4 /* warps per work-group, 16 * MW key rows each */
#endif
#ifndef MW
#define MW 1 /* 16-row blocks per warp (1 or 2) */
#endif
#ifndef TQC
#define TQC 32 /* queries per chunk (multiple of 16) */
#endif
#ifndef STAGES
#define STAGES 2 /* shared-memory buffers for query chunks (1 to 8) */
#endif
#ifndef WSKIP
#define WSKIP 1 /* warps skip chunks none of whose queries see their keys (host may turn off) */
#endif
#ifndef HDP
#define HDP 64 /* head_dim bucket (multiple of 16) */
#endif
#ifndef HDVP
#define HDVP HDP /* head_dim_v bucket (multiple of 16) */
#endif
#ifndef RMETA
#define RMETA 0 /* 1 (mma.sync tiles, TQC <= 32): each chunk's lse, D and query windows in
                   registers, lane l holding chunk row l's, read by shuffles, instead of local
                   memory */
#endif

#ifndef CHUNK_PAIRS
/* The chunk copies' thread map (SLOT_ROW in na_mma_common.h). Row-major even for WG tiles: in
   pairs of segments the H100's vision-2d WG dK/dV kernel ran 0.3464 -> 0.3582 ms (session 7). */
#define CHUNK_PAIRS 0
#endif
#ifndef WS
#define WS 0 /* 1 (WG tiles, 2+ stages, K and V in registers): warp-specialized. A producer
                warpgroup beside the NW consumer warps issues every chunk copy and computes
                the chunks' metadata, its warp w alone for stages w, w + 4; full and empty
                mbarriers per stage replace the work-group barrier, so the consumer warpgroups
                never wait for each other. WS_CREGS and WS_PREGS (host): the registers
                setmaxnreg gives the consumers and leaves the producer (0: no setmaxnreg) */
#endif
#if WS
#define NT (32 * NW + 128)
#define CP_NT 32 /* the threads that issue a chunk's copies (one producer warp)... */
#define CP_TID lane /* ...and this thread's index among them */
#else
#define NT (32 * NW)
#define CP_NT NT
#define CP_TID lid
#endif
#define WR (16 * MW) /* key rows per warp */
#define BK (WR * NW)
/* K and V fragments of the warp's rows stay in registers when they are small; the key tile is
   then staged through the chunk buffers' memory (it is read once, before the first chunk),
   which leaves room for 128-key tiles with 2-3 stages. */
#ifndef KV_REGS
#define KV_REGS ((HDP + HDVP) * MW <= 128) /* the host may set 0 (KVREG) */
#endif
#define SK ((HDP + 8) / 2)  /* row strides in 32-bit words (+16 bytes: conflict-free) */
#define SV ((HDVP + 8) / 2)
#define KSEG (HDP / 8) /* 16-byte segments per row */
#define VSEG (HDVP / 8)
#define NQB (TQC / 8)  /* n8 query blocks per chunk */
#define NKD (HDP / 8)  /* n8 head-dim blocks of dK */
#define NVD (HDVP / 8) /* n8 value-dim blocks of dV */
#ifndef PART
#define PART 0 /* 0: dK and dV; 1: dV only (S^T, dV += P^T dO); 2: dK only (S^T, dP^T, dK += dS^T Q).
                  The host launches 1 and 2 as two kernels (KSPLIT): each needs fewer registers
                  than both together, for one more product in all. WG tiles only. */
#endif
#define DO_DV (PART != 2)
#define DO_DK (PART != 1)
#ifndef WG
#define WG 0 /* 1: the four products by Hopper's wgmma (sm_90a, na_wgmma.h): the 4 warps of a
                warpgroup multiply their 64 key rows together, Q and dO chunks as core
                matrices (B operands of every product: K-major for S and dP, MN-major for dV
                and dK) */
#endif
#if WG
#define WG_CHUNK TQC /* S^T and dP^T run in pieces of WG_SN queries (na_wgmma.h) */
#include "na_wgmma.h"
#if NW % 4 != 0 || WSKIP
#error "WG tiles: warps in groups of 4, no per-warp chunk skip"
#endif
#elif PART != 0
#error "a dK or dV kernel alone (PART) needs WG tiles"
#endif
#ifndef TMA
/* 1 (WS_ROT tiles, rank 1 without dilation, head dims 64): the producer takes each whole chunk's
   Q and dO rows by the TMA (na_sm90.h) through the tensor maps at tmaps + 32 (Q's) and + 48
   (dO's), built by na_tma_kv_maps before the kernel: one lane issues both boxes and the chunk's
   full mbarrier counts their bytes, so the producer no longer waits for the rows; the last,
   partial chunk of a head still arrives by cp.async (its rows past the box as zeros). The
   chunks are stored in the 128-byte swizzle layout (na_wg_desc_sw128). */
#define TMA 0
#endif
#if WG && TMA
#define Q_WORDS (TQC * HDP / 2)
/* Chunk row r's 16-byte segment sg in the 128-byte swizzle layout */
#define QC_AT(r, sg) ((r) * 32 + (((sg) ^ ((r) & 7)) * 4))
#define OC_AT(r, sg) ((r) * 32 + (((sg) ^ ((r) & 7)) * 4))
#elif WG
/* The 16-byte segment sg of chunk row r in core (r / 8, sg), 8 rows x 16 bytes each */
#define Q_WORDS (TQC * HDP / 2)
#define QC_AT(r, sg) ((((r) >> 3) * KSEG + (sg)) * 32 + ((r) & 7) * 4)
#define OC_AT(r, sg) ((((r) >> 3) * VSEG + (sg)) * 32 + ((r) & 7) * 4)
#endif
#if WG
#define CHUNK_WORDS (TQC * (HDP + HDVP) / 2)
#define CS_ALIGN 128
/* WGMMA_FENCE or WGMMA_WAIT on the dV and dK accumulators this kernel keeps. */
#define WG_DVDK(op)                                                   \
  _Pragma("unroll") for (int m = 0; m < MW; ++m) {                    \
    if (DO_DV) WG_CAT(WG_CAT(WGMMA_, op), WG_CAT(_N, HDVP))(dv[m]);   \
    if (DO_DK) WG_CAT(WG_CAT(WGMMA_, op), WG_CAT(_N, HDP))(dk[m]);    \
  }
/* acc[m] += (K or V rows of the warp's block m) x (a chunk, K-major through desc), for every k16
   step of the head dims hd. */
#define WG_KEY_PRODUCT(acc, fr, tile, stride, hd, desc, seg)             \
  _Pragma("unroll") for (int m = 0; m < MW; ++m)                         \
      _Pragma("unroll") for (int kk = 0; kk < (hd) / 16; ++kk) {         \
    uint a[4];                                                           \
    KV_A(a, fr, tile, stride, m, kk);                                    \
    WG_KMAJOR_PIECES(acc[m], a[0], a[1], a[2], a[3], desc, kk, seg);     \
  }
/* dV += P^T dO and dK += dS^T Q as one wgmma group: P^T and dS^T as A from their packed
   fragments pa and da, the dO and Q chunks at os and qs as B stored MN-major (dims contiguous,
   queries along K: tb = 1), a k16 step two groups of 8 queries further. */
#define WG_ISSUE_DVDK(pa, da, qs, os)                                                         \
  do {                                                                                        \
    const ulong odesc_ = CHUNK_MN_DESC(os, VSEG);                                             \
    const ulong qdesc_ = CHUNK_MN_DESC(qs, KSEG);                                             \
    WG_DVDK(FENCE);                                                                           \
    _Pragma("unroll") for (int m = 0; m < MW; ++m)                                            \
        _Pragma("unroll") for (int kk = 0; kk < TQC / 16; ++kk) {                             \
      if (DO_DV)                                                                              \
        WG_CAT(WGMMA_RA_N, HDVP)(dv[m], pa[m][kk][0], pa[m][kk][1], pa[m][kk][2], pa[m][kk][3], \
                                 CHUNK_MN_AT(odesc_, kk, VSEG), 1);                           \
      if (DO_DK)                                                                              \
        WG_CAT(WGMMA_RA_N, HDP)(dk[m], da[m][kk][0], da[m][kk][1], da[m][kk][2], da[m][kk][3],  \
                                CHUNK_MN_AT(qdesc_, kk, KSEG), 1);                            \
    }                                                                                         \
    WG_COMMIT();                                                                              \
  } while (0)
#else
#define Q_WORDS (TQC * SK)
#define QC_AT(r, sg) ((r) * SK + (sg) * 4)
#define OC_AT(r, sg) ((r) * SV + (sg) * 4)
#define CHUNK_WORDS (TQC * (SK + SV))
#define CS_ALIGN 16
#ifndef QSUB
#define QSUB TQC /* query rows per compute step of a chunk (a multiple of 16 dividing TQC) */
#endif
#ifndef SEQ
#define SEQ 0 /* 1: S^T, P^T and dV before dP^T, dS^T and dK (fewer registers live) */
#endif
#define NSB (QSUB / 8) /* n8 query blocks per step */
#if QSUB % 16 != 0 || TQC % QSUB != 0
#error "QSUB must be a multiple of 16 dividing TQC"
#endif
/* acc[m] += (K or V rows of the warp's block m) x (chunk rows sb .. sb + QSUB - 1)^T, for every
   k16 step of the head dims hd (B fragments by ldmatrix). */
#define SYNC_KEY_PRODUCT(acc, fr, tile, stride, hd, chunk)                                   \
  _Pragma("unroll") for (int kk = 0; kk < (hd) / 16; ++kk) {                                 \
    uint a[MW][4];                                                                           \
    _Pragma("unroll") for (int m = 0; m < MW; ++m) KV_A(a[m], fr, tile, stride, m, kk);      \
    _Pragma("unroll") for (int jj = 0; jj < NSB / 2; ++jj) {                                 \
      uint b0, b1, b2, b3;                                                                   \
      LDMATRIX_X4(b0, b1, b2, b3,                                                            \
                  SMEM_ADDR(&chunk[(sb + jj * 16 + krow) * (stride) + kk * 8 + kcol]));      \
      _Pragma("unroll") for (int m = 0; m < MW; ++m) {                                       \
        MMA_16816(acc[m][2 * jj], a[m][0], a[m][1], a[m][2], a[m][3], b0, b1);               \
        MMA_16816(acc[m][2 * jj + 1], a[m][0], a[m][1], a[m][2], a[m][3], b2, b3);           \
      }                                                                                      \
    }                                                                                        \
  }
/* acc[m] += fr[m] (P^T or dS^T of the step) x (chunk rows of the step), nd n8 blocks of head
   dims (B fragments by ldmatrix.trans). */
#define SYNC_CHUNK_PRODUCT(acc, fr, chunk, stride, nd)                                         \
  _Pragma("unroll") for (int kk = 0; kk < QSUB / 16; ++kk) {                                   \
    const int row_ = sb + kk * 16 + trow;                                                      \
    _Pragma("unroll") for (int n = 0; n < (nd); n += 2) {                                      \
      uint b0, b1, b2, b3;                                                                     \
      LDMATRIX_X4_T(b0, b1, b2, b3, SMEM_ADDR(&chunk[row_ * (stride) + n * 4 + tcol]));        \
      _Pragma("unroll") for (int m = 0; m < MW; ++m) {                                         \
        MMA_16816(acc[m][n], fr[m][kk][0], fr[m][kk][1], fr[m][kk][2], fr[m][kk][3], b0, b1);  \
        MMA_16816(acc[m][n + 1], fr[m][kk][0], fr[m][kk][1], fr[m][kk][2], fr[m][kk][3], b2,   \
                  b3);                                                                         \
      }                                                                                        \
    }                                                                                          \
  }
#endif
/* acc[m][0 .. nb) = 0: score accumulators of nb n8 query blocks. */
#define ZERO_SCORES(acc, nb)                               \
  _Pragma("unroll") for (int m = 0; m < MW; ++m)           \
      _Pragma("unroll") for (int j = 0; j < (nb); ++j)     \
      acc[m][j][0] = acc[m][j][1] = acc[m][j][2] = acc[m][j][3] = 0.0f
/* The same for S^T and dP^T of a whole chunk, from zeros of their own (inline mov): the driver's
   compiler made the register that held S's zeros one of dP's accumulators, and ptxas then
   waited for every wgmma in flight, the deferred dV and dK included, before the next chunk's
   zeros (C7517). H100, KWS=2, long-1d-causal's dK/dV kernel: 1.63-1.66 -> 1.596 ms (session
   14). */
#define ZERO_OWN_SCORES(s_, p_)                                                 \
  _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int j = 0; j < NQB; \
                                                                        ++j)    \
      _Pragma("unroll") for (int e = 0; e < 4; ++e) {                           \
    NA_ZERO_OWN(s_[m][j][e]);                                                   \
    NA_ZERO_OWN(p_[m][j][e]);                                                   \
  }
/* fr[m][0 .. nk): packed A fragments (f16/bf16 pairs) of nk k16 query blocks from the
   accumulators acc (the C fragments of two n8 blocks are the A fragment of one k16 block). */
#define PACK_A(fr, acc, nk)                                                 \
  _Pragma("unroll") for (int m = 0; m < MW; ++m)                            \
      _Pragma("unroll") for (int kk = 0; kk < (nk); ++kk) {                 \
    fr[m][kk][0] = na_pack2(acc[m][2 * kk][0], acc[m][2 * kk][1]);          \
    fr[m][kk][1] = na_pack2(acc[m][2 * kk][2], acc[m][2 * kk][3]);          \
    fr[m][kk][2] = na_pack2(acc[m][2 * kk + 1][0], acc[m][2 * kk + 1][1]);  \
    fr[m][kk][3] = na_pack2(acc[m][2 * kk + 1][2], acc[m][2 * kk + 1][3]);  \
  }
/* The A fragment of K or V rows (the warp's block m, k16 step kk of the head dims): from
   registers (fr) or shared memory (tile). */
#if KV_REGS
#define KV_A(a, fr, tile, stride, m, kk) \
  (a[0] = fr[m][kk][0], a[1] = fr[m][kk][1], a[2] = fr[m][kk][2], a[3] = fr[m][kk][3])
#else
#define KV_A(a, fr, tile, stride, m, kk)  \
  LDMATRIX_X4(a[0], a[1], a[2], a[3],     \
              SMEM_ADDR(&tile[(arow + 16 * (m)) * (stride) + (kk) * 8 + acol]))
#endif

#if TQ0 * TQ1 * TQ2 != BK || TQC % 16 != 0 || HDP % 16 != 0 || HDVP % 16 != 0 || MW < 1 || \
    MW > 2 || STAGES < 1 || STAGES > 8
#error "mma backward tile configuration"
#endif
#if RMETA && (WG || TQC > 32)
#error "RMETA: mma.sync tiles, TQC <= 32"
#endif

#if WS
#if !WG || STAGES < 2 || !KV_REGS || PART != 0 || RMETA || NW > 8
#error "WS: WG tiles of up to 8 consumer warps, 2+ stages, K and V in registers, dK and dV"
#endif
#ifndef WS_CREGS
#define WS_CREGS 0
#endif
#ifndef WS_DEFER
#define WS_DEFER 0 /* 1: a chunk's dV and dK products run on into the next chunk, retired by the
                      wait for its S (one stage released later: 3+ stages) */
#endif
#ifndef WS_PREGS
#define WS_PREGS 0
#endif
#ifndef WS_ROT
#define WS_ROT 0 /* 1: the rotated consumer loop (below); 3+ stages, not with WS_DEFER */
#endif
#if WS_ROT && (STAGES < 3 || WS_DEFER || !DO_DK || !DO_DV)
#error "WS_ROT needs 3+ stages, dK and dV, and no WS_DEFER"
#endif
/* mbarriers and setmaxnreg: na_sm90.h */
#include "na_sm90.h"
#endif
#if TMA && (!WS || !WS_ROT || RANK != 1 || DIL0 != 1 || !HD_EXACT || HDP != 64 || HDVP != 64 || \
            TQC > WG_SN)
/* chunks of up to WG_SN (32) rows: the form measured and tested */
#error "TMA: the rotated WS tile, rank 1 without dilation, head dims 64, up to 32-row chunks"
#endif

/* P^T and dS^T are masked to each query's window unless every query sees the tile.
   The metadata of the query in chunk column col: from local memory, or (RMETA) from the
   registers of lane col. QUERY_WINDOW: its window where `masked` (a literal; the
   shuffles are volatile, so an unmasked chunk must not issue them). OpenCL C has no
   variadic macros, so the rest of the column's setup stays at each use. */
#if RMETA
#define Q_LSE2(col) na_shfl_idx(m_lse2, col)
#define Q_DD(col) na_shfl_idx(m_d, col)
#define Q_LO(a, col) na_shfl_idx_i(m_lo[a], col)
#define Q_HI(a, col) na_shfl_idx_i(m_hi[a], col)
#else
#define Q_LSE2(col) (q_lse[st][col] * LOG2E)
#define Q_DD(col) q_d[st][col]
#define Q_LO(a, col) q_lo[st][a][col]
#define Q_HI(a, col) q_hi[st][a][col]
#endif
#define QUERY_WINDOW(col, masked)                                                              \
  const int l0 = (masked) ? Q_LO(0, col) : 0, h0 = (masked) ? Q_HI(0, col) : 0;                \
  const int l1 = (masked) && RANK >= 2 ? Q_LO(1, col) : 0;                                     \
  const int h1 = (masked) && RANK >= 2 ? Q_HI(1, col) : 0;                                     \
  const int l2 = (masked) && RANK >= 3 ? Q_LO(2, col) : 0;                                     \
  const int h2 = (masked) && RANK >= 3 ? Q_HI(2, col) : 0
/* P^T = exp2(S^T scale - lse) in s for nb n8 query blocks from chunk row sb, masked to each
   query's window where `masked` (a literal: 0 where every query of the chunk sees the whole tile,
   so the compiler drops the window loads and tests); with `ds` also dS^T = P^T (dP^T - D) in dp.
   The caller branches on the warp-uniform `full`: a select per element cost the long-1d-causal
   dK/dV kernel 19% (H100, 2026-11-26 session 7). */
#define P_FROM_S(s, dp, nb, sb, masked, ds)                                                    \
  _Pragma("unroll") for (int j = 0; j < (nb); ++j)                                             \
      _Pragma("unroll") for (int c2 = 0; c2 < 2; ++c2) {                                       \
    const int col = (sb) + j * 8 + 2 * tq + c2; /* elements c2 and 2 + c2 (rows g, g + 8) */   \
    const float lse2 = Q_LSE2(col), dd = (ds) ? Q_DD(col) : 0.0f;                              \
    QUERY_WINDOW(col, masked);                                                                 \
    _Pragma("unroll") for (int i = 0; i < 2; ++i)                                              \
        _Pragma("unroll") for (int m = 0; m < MW; ++m) {                                       \
      const int e = 2 * i + c2;                                                                \
      const int in = !(masked) || NA_IN_BOX(ky[m][i][0], ky[m][i][1], ky[m][i][2], l0, h0, l1, \
                                            h1, l2, h2);                                       \
      const float p = in ? na_exp2(s[m][j][e] * sscale - lse2) : 0.0f;                         \
      if (ds) dp[m][j][e] = p * (dp[m][j][e] - dd); /* dS^T */                                 \
      s[m][j][e] = p;                               /* P^T */                                  \
    }                                                                                          \
  }
__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void na_mma_bwd_dkdv(
    __global const ushort* q, __global const ushort* k, __global const ushort* v,
    __global const ushort* d_out, __global const float* lse, __global const float* delta,
    __global ushort* d_k, __global ushort* d_v, int B, int L0, int L1, int L2, int H, int HKV,
    int hd, int hdv, float scale, int nt0, int nt1, int nt2
#if TMA
    , __global const ulong* tmaps
#endif
    ) {
  HD_EXACT_CONSTANTS();
#if KV_REGS /* the key tile in the chunk buffers' memory */
#define KV_WORDS (BK * (SK + SV))
#if TMA /* at a 1024-byte boundary (the swizzle's atoms) */
  __local uint smem_raw_[(KV_WORDS > STAGES * CHUNK_WORDS ? KV_WORDS : STAGES * CHUNK_WORDS) + 256];
  __local uint* smem_ = smem_raw_ + ((1024u - (SMEM_ADDR(smem_raw_) & 1023u)) & 1023u) / 4;
#else
  __local uint smem_[KV_WORDS > STAGES * CHUNK_WORDS ? KV_WORDS : STAGES * CHUNK_WORDS]
      __attribute__((aligned(CS_ALIGN)));
#endif
#define ks smem_
#define vs (smem_ + BK * SK)
#define cs smem_
#else
  __local uint ks[BK * SK] __attribute__((aligned(16)));
  __local uint vs[BK * SV] __attribute__((aligned(16)));
  __local uint cs[STAGES * CHUNK_WORDS] __attribute__((aligned(CS_ALIGN))); /* Q, then dO rows */
#endif
#if !RMETA
  __local float q_lse[STAGES][TQC], q_d[STAGES][TQC]; /* by cp.async with the chunk's rows */
  __local int q_lo[STAGES][3][TQC], q_hi[STAGES][3][TQC];
  __local int q_in[STAGES][TQC]; /* the query's window holds the whole key tile */
#endif
#if WS
  __local ulong ws_bar[2 * STAGES]; /* full (the producer's arrivals), then empty (consumers') */
  __local int ws_box[NW][6];        /* each consumer warp's key box */
#endif

  const int lid = get_local_id(0);
  const int lane = lid & 31, warp = lid >> 5;
  const int g = lane >> 2, tq = lane & 3;
  const int N = L0 * L1 * L2;
  const int tiles = nt0 * nt1 * nt2;
  const int wg = get_group_id(0);
  const int hk = (wg / tiles) % HKV;
  const int b = wg / (tiles * HKV);
  const int G = H / HKV;
  (void)B;
  na_tile t = na_tile_of(wg % tiles, L0, L1, L2, nt0, nt1, nt2, TQ0, TQ1, TQ2);
  if (!t.live) return;
  /* The partner box: the queries that see any key of the tile (group coordinates). */
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const int lo = na_inv_lo(t.first[a], t.glen[a], AX_K(a), AX_S(a), AX_C(a));
    t.kcnt[a] =
        na_inv_hi(t.first[a] + t.valid[a] - 1, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - lo + 1;
    t.kst[a] = lo;
  }
  const int qbox = t.kcnt[0] * t.kcnt[1] * t.kcnt[2];
  const int nchunks = (qbox + TQC - 1) / TQC;

  /* This thread's key rows (g, g + 8 of each of its warp's MW blocks): group coordinates, FAR
     when invalid; and the bounding box of the warp's valid keys. */
  int ky[MW][2][3], kvalid[MW][2], ktok[MW][2];
  int kmin[3] = {FAR, FAR, FAR}, kmax[3] = {-FAR, -FAR, -FAR};
#pragma unroll
  for (int m = 0; m < MW; ++m)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      ROW_X(warp * WR + 16 * m + g + 8 * i, x0, x1, x2);
      kvalid[m][i] = x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2];
      ktok[m][i] = NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2);
      ky[m][i][0] = kvalid[m][i] ? t.first[0] + x0 : FAR;
      ky[m][i][1] = t.first[1] + x1;
      ky[m][i][2] = t.first[2] + x2;
#pragma unroll
      for (int a = 0; a < 3; ++a)
        if (kvalid[m][i]) {
          kmin[a] = min(kmin[a], ky[m][i][a]);
          kmax[a] = max(kmax[a], ky[m][i][a]);
        }
    }
  WARP_BOX(kmin, kmax);
#if WS
  if (lane == 0 && warp < NW) {
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      ws_box[warp][a] = kmin[a];
      ws_box[warp][3 + a] = kmax[a];
    }
  }
#endif

  /* The key tile (K and V rows; zeros past the tile and the head dims) stays in shared memory. */
  STAGE_TILE_ROWS(ks, SK, BK, KSEG, k, HKV, hk, hd);
  STAGE_TILE_ROWS(vs, SV, BK, VSEG, v, HKV, hk, hdv);
  CP_ASYNC_COMMIT();

  float dk[MW][NKD][4], dv[MW][NVD][4];
#pragma unroll
  for (int m = 0; m < MW; ++m) {
#pragma unroll
    for (int n = 0; n < NKD; ++n) dk[m][n][0] = dk[m][n][1] = dk[m][n][2] = dk[m][n][3] = 0.0f;
#pragma unroll
    for (int n = 0; n < NVD; ++n) dv[m][n][0] = dv[m][n][1] = dv[m][n][2] = dv[m][n][3] = 0.0f;
  }
  const float sscale = scale * LOG2E;
  /* ldmatrix lane addressing: A fragments of this warp's key rows (block m: + 16 m); B
     fragments (non-trans) of query rows 16 jj + krow at 8-half column block kcol; B fragments
     (trans) of query rows 16 kk + trow. */
  const int arow = warp * WR + (lane & 7) + ((lane >> 3) & 1) * 8, acol = (lane >> 4) * 4;
  const int krow = (lane >> 4) * 8 + (lane & 7), kcol = ((lane >> 3) & 1) * 4;
  const int trow = ((lane >> 3) & 1) * 8 + (lane & 7), tcol = (lane >> 4) * 4;
#if KV_REGS /* the fragments once the tile has landed; then the memory goes to the chunks */
  uint ka[MW][HDP / 16][4], va[MW][HDVP / 16][4];
#if WS
  if (lid == 0) {
#pragma unroll
    for (int s_ = 0; s_ < STAGES; ++s_) {
      na_mbar_init(SMEM_ADDR(&ws_bar[s_]), CP_NT);
      na_mbar_init(SMEM_ADDR(&ws_bar[STAGES + s_]), 32 * NW);
    }
  }
#endif
  CP_ASYNC_WAIT(0);
  barrier(CLK_LOCAL_MEM_FENCE);
#define LOAD_KV_FRAGMENTS()                                                                   \
  _Pragma("unroll") for (int m = 0; m < (!WS || warp < NW ? MW : 0); ++m) {                  \
    _Pragma("unroll") for (int kk = 0; kk < HDP / 16; ++kk)                                   \
        LDMATRIX_X4(ka[m][kk][0], ka[m][kk][1], ka[m][kk][2], ka[m][kk][3],                   \
                    SMEM_ADDR(&ks[(arow + 16 * m) * SK + kk * 8 + acol]));                    \
    _Pragma("unroll") for (int kk = 0; kk < (DO_DK ? HDVP / 16 : 0); ++kk)                    \
        LDMATRIX_X4(va[m][kk][0], va[m][kk][1], va[m][kk][2], va[m][kk][3],                   \
                    SMEM_ADDR(&vs[(arow + 16 * m) * SV + kk * 8 + acol]));                    \
  }
#if WS_ROT
  /* The consumers load their fragments after setmaxnreg (below): live across it, they were
     spilled. The producer waits for them at named barrier 1 before its first copy. */
#else
  LOAD_KV_FRAGMENTS();
  barrier(CLK_LOCAL_MEM_FENCE);
#endif
#endif
#if WS /* a warpgroup runs or skips a chunk as one: the box of its four warps' keys */
  if (warp < NW) {
#pragma unroll
    for (int a = 0; a < RANK; ++a)
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        kmin[a] = min(kmin[a], ws_box[(warp & ~3) + w][a]);
        kmax[a] = max(kmax[a], ws_box[(warp & ~3) + w][3 + a]);
      }
  }
#endif

#define QSLOTS ((TQC * KSEG + CP_NT - 1) / CP_NT)
#define OSLOTS ((TQC * VSEG + CP_NT - 1) / CP_NT)
  int qc[QSLOTS][3];
#if RMETA && KSEG == VSEG
#define oc qc /* the same slots for Q and dO rows: the dO copies advance them */
#else
  int oc[OSLOTS][3];
#endif

/* Issues the copies of query chunk `ci` of head `h` into stage `st` (and its rows' lse, D and
   windows), then advances the slot coordinates to the next chunk, in one of two orders:
   META_LATE 1: every 16-byte copy of the chunk (Q, then dO rows) is issued before the lse and D
     copies; the slots' rows wait in registers.
   META_LATE 0: each slot's lse and D right after its Q copy.
   On the H100, 1 made flux-2d's dK/dV kernel 6% faster; long-1d-causal, under its 168-register
   cap, ran 4% slower with 1 and 14% slower with a shared rewrite of both orders, so each order
   is kept as the text that was measured (the host picks 0 under a register cap). That was when
   lse and D were plain loads, whose results the stores to shared memory waited for: a stall of
   a global load's latency per chunk. As 4-byte cp.async copies (2026-11-26, session 6) they made
   the dK/dV kernel 9-12% faster on every preset (H100: long-1d-causal 2.827 -> 2.533 ms,
   vision-2d 0.558 -> 0.490, flux-2d 0.594 -> 0.543, video-3d 11.19 -> 10.25). */
#ifndef META_LATE
#define META_LATE 1
#endif
/* Q slot j of query chunk `ci`: Q_SLOT declares the slot's idx, qq (chunk row), seg, live and
   row (the row of q, lse and D); Q_SLOT_ISSUE issues its copy into qs_. Shared by every
   LOAD_QCHUNK below (the META_LATE 1 form stores the row between the two, as it was measured). */
#define Q_SLOT(j, ci)                                                                          \
  const int idx = CP_TID + (j) * CP_NT, qq = SLOT_ROW(idx, KSEG, TQC), seg = SLOT_SEG(idx, KSEG, TQC); \
  const int live = (ci) * TQC + qq < qbox && idx < TQC * KSEG;                                 \
  const int row = (b * N + NA_TOKEN(qc[j][0], qc[j][1], qc[j][2], t.kst, t.grp, L1, L2)) * H + \
                  h
#define Q_SLOT_ISSUE()                                                                         \
  if (idx < TQC * KSEG)                                                                        \
  CP_ASYNC_16(SMEM_ADDR(&qs_[QC_AT(qq, seg)]), q + (live ? row : 0) * hd + seg * 8,             \
              (live && seg * 8 < hd) ? 16 : 0)
#define Q_SLOT_COPY(j, ci) \
  Q_SLOT(j, ci);           \
  Q_SLOT_ISSUE()
/* Row qq of stage st's chunk (live: inside the box; row: its row of lse and D; c: its box
   coordinates): its lse and D copies, its window on each axis and whether it sees the whole tile.
   Shared by every LOAD_QCHUNK below. */
#define ROW_META(st, qq, live, row, c)                                                          \
  do {                                                                                          \
    CP_ASYNC_4(SMEM_ADDR(&q_lse[st][qq]), lse + ((live) ? (row) : 0), (live) ? 4 : 0);          \
    CP_ASYNC_4(SMEM_ADDR(&q_d[st][qq]), delta + ((live) ? (row) : 0), (live) ? 4 : 0);          \
    int whole_ = (live);                                                                        \
    _Pragma("unroll") for (int a_ = 0; a_ < 3; ++a_) {                                          \
      const int qi_ = t.kst[a_] + (c)[a_];                                                      \
      const int lo_ = na_win_start(qi_, t.glen[a_], AX_K(a_), AX_S(a_), AX_C(a_));              \
      const int hi_ = na_win_end(qi_, t.glen[a_], AX_K(a_), AX_S(a_), AX_C(a_));                \
      q_lo[st][a_][qq] = (live) ? lo_ : FAR;                                                    \
      q_hi[st][a_][qq] = (live) ? hi_ : FAR;                                                    \
      whole_ = whole_ && lo_ <= t.first[a_] && t.first[a_] + t.valid[a_] <= hi_;                \
    }                                                                                           \
    q_in[st][qq] = whole_;                                                                      \
  } while (0)
/* The dO rows of query chunk `ci` into os_ (copies issued), advancing the dO slots' coordinates;
   shared by every LOAD_QCHUNK below. */
#define COPY_DO_ROWS(ci, os_)                                                                  \
  _Pragma("unroll") for (int j = 0; j < OSLOTS; ++j) {                                       \
      const int idx = CP_TID + j * CP_NT, qq = SLOT_ROW(idx, VSEG, TQC), seg = SLOT_SEG(idx, VSEG, TQC); \
      const int live = (ci) * TQC + qq < qbox && idx < TQC * VSEG;                             \
      const int row = (b * N + NA_TOKEN(oc[j][0], oc[j][1], oc[j][2], t.kst, t.grp, L1, L2)) * \
                          H + h;                                                               \
      if (idx < TQC * VSEG)                                                                    \
        CP_ASYNC_16(SMEM_ADDR(&os_[OC_AT(qq, seg)]),                                           \
                    d_out + (live ? row : 0) * hdv + seg * 8, (live && seg * 8 < hdv) ? 16 : 0); \
      ADVANCE(oc[j][0], oc[j][1], oc[j][2], TQC, t.kcnt[1], t.kcnt[2]);                        \
    }
#if RMETA /* the copies only: each lane fetches its row's metadata itself (META_FETCH) */
#define LOAD_QCHUNK(ci, st)                                                                    \
  do {                                                                                         \
    __local uint* qs_ = cs + (st) * CHUNK_WORDS;                                               \
    __local uint* os_ = qs_ + Q_WORDS;                                                         \
    _Pragma("unroll") for (int j = 0; j < QSLOTS; ++j) {                                       \
      Q_SLOT_COPY(j, ci);                                                                      \
      if (KSEG != VSEG) ADVANCE(qc[j][0], qc[j][1], qc[j][2], TQC, t.kcnt[1], t.kcnt[2]);      \
    }                                                                                          \
    COPY_DO_ROWS(ci, os_);                                                                     \
  } while (0)
/* Lane l's lse and D of row l of chunk ci (box coordinates mq), for the pass after this one. */
#define META_FETCH(ci)                                                                         \
  do {                                                                                         \
    if (lane < TQC && (ci) * TQC + lane < qbox) {                                              \
      const int row_ = (b * N + NA_TOKEN(mq[0], mq[1], mq[2], t.kst, t.grp, L1, L2)) * H + h;   \
      nx_lse = lse[row_];                                                                      \
      nx_d = delta[row_];                                                                      \
    }                                                                                          \
  } while (0)
#elif META_LATE
#define LOAD_QCHUNK(ci, st)                                                                    \
  do {                                                                                         \
    __local uint* qs_ = cs + (st) * CHUNK_WORDS;                                               \
    __local uint* os_ = qs_ + Q_WORDS;                                                               \
    int qrow_[QSLOTS];                                                                         \
    _Pragma("unroll") for (int j = 0; j < QSLOTS; ++j) {                                       \
      Q_SLOT(j, ci);                                                                           \
      qrow_[j] = live ? row : -1;                                                              \
      Q_SLOT_ISSUE();                                                                          \
    }                                                                                          \
    COPY_DO_ROWS(ci, os_);                                                                     \
    _Pragma("unroll") for (int j = 0; j < QSLOTS; ++j) {                                       \
      const int idx = CP_TID + j * CP_NT, qq = SLOT_ROW(idx, KSEG, TQC), seg = SLOT_SEG(idx, KSEG, TQC); \
      if (seg == 0 && idx < TQC * KSEG) {                                                      \
        const int live = qrow_[j] >= 0;                                                        \
        ROW_META(st, qq, live, qrow_[j], qc[j]);                                               \
      }                                                                                        \
      ADVANCE(qc[j][0], qc[j][1], qc[j][2], TQC, t.kcnt[1], t.kcnt[2]);                        \
    }                                                                                          \
  } while (0)
#elif WS
/* The WS producer warp: lane l first finds the q/dO row of chunk rows l, l + 32, ... (one box
   coordinate computation each, not one per copy slot) and copies their lse and D and writes
   their windows; then every copy slot takes its row from the lane holding it (a shuffle). The
   slot coordinates (qc, oc) are not used. */
/* r = the row of chunk row qq_ (every lane shuffles from every row group: shfl.sync needs the
   whole warp, and qq_ differs between lanes) */
#define LANE_ROW(r, qq_)                                                   \
  int r = -1;                                                              \
  _Pragma("unroll") for (int u_ = 0; u_ < (TQC + 31) / 32; ++u_) {         \
    const int ru_ = na_shfl_idx_i(lrow_[u_], (qq_)&31);                    \
    if ((qq_) >> 5 == u_) r = ru_;                                         \
  }
/* The 16-byte copies of a chunk's rows from src (width elements a row, seg_ segments) into
   base (layout AT), each slot's row from the lane holding it */
#define WS_ROW_COPIES(base, AT, seg_, nslots, src, width)                                      \
  _Pragma("unroll") for (int j = 0; j < (nslots); ++j) {                                       \
    const int idx = CP_TID + j * CP_NT;                                                        \
    const int qq = SLOT_ROW(idx, seg_, TQC), seg = SLOT_SEG(idx, seg_, TQC);                   \
    LANE_ROW(r, qq);                                                                           \
    if (idx < TQC * (seg_))                                                                    \
      CP_ASYNC_16(SMEM_ADDR(&(base)[AT(qq, seg)]), (src) + (r >= 0 ? r : 0) * (width) + seg * 8, \
                  (r >= 0 && seg * 8 < (width)) ? 16 : 0);                                     \
  }
#define LOAD_QCHUNK(ci, st)                                                                    \
  do {                                                                                         \
    __local uint* qs_ = cs + (st) * CHUNK_WORDS;                                               \
    __local uint* os_ = qs_ + Q_WORDS;                                                         \
    int lrow_[(TQC + 31) / 32]; /* the row of chunk row lane + 32 u, or -1 past the box */     \
    _Pragma("unroll") for (int u = 0; u < (TQC + 31) / 32; ++u) {                              \
      const int qq = lane + 32 * u;                                                            \
      int mc[3];                                                                               \
      WS_BOX_COORDS((ci) * TQC + qq, mc);                                                      \
      const int live = qq < TQC && (ci) * TQC + qq < qbox;                                     \
      const int row =                                                                          \
          (b * N + NA_TOKEN(mc[0], mc[1], mc[2], t.kst, t.grp, L1, L2)) * H + h;               \
      lrow_[u] = live ? row : -1;                                                              \
      if (qq < TQC) {                                                                          \
        ROW_META(st, qq, live, row, mc);                                                       \
      }                                                                                        \
    }                                                                                          \
    if (TMA && qbox - (ci) * TQC >= TQC) {                                                     \
      WS_TMA_ROWS(ci, st, qs_, os_);                                                           \
    } else {                                                                                   \
      WS_ROW_COPIES(qs_, QC_AT, KSEG, QSLOTS, q, hd);                                          \
      WS_ROW_COPIES(os_, OC_AT, VSEG, OSLOTS, d_out, hdv);                                     \
    }                                                                                          \
  } while (0)
#if TMA
/* A whole chunk's Q and dO rows (tokens t.kst[0] + ci * TQC ..., head h) by two TMA boxes from
   lane 0; stage st's full mbarrier expects their bytes (before any lane's arrival). */
#define WS_TMA_ROWS(ci, st, qs_, os_)                                                          \
  do {                                                                                         \
    if (lane == 0) {                                                                           \
      const uint bar_ = SMEM_ADDR(&ws_bar[st]);                                                \
      const int tok_ = t.kst[0] + (ci) * TQC;                                                  \
      na_mbar_expect(bar_, 2 * TQC * 128);                                                     \
      NA_TMA_LOAD_4D(SMEM_ADDR(qs_), qmap, 0, h, tok_, b, bar_);                               \
      NA_TMA_LOAD_4D(SMEM_ADDR(os_), omap, 0, h, tok_, b, bar_);                               \
    }                                                                                          \
  } while (0)
#else
#define WS_TMA_ROWS(ci, st, qs_, os_) ((void)0)
#endif
#else
#define LOAD_QCHUNK(ci, st)                                                                    \
  do {                                                                                         \
    __local uint* qs_ = cs + (st) * CHUNK_WORDS;                                               \
    __local uint* os_ = qs_ + Q_WORDS;                                                               \
    _Pragma("unroll") for (int j = 0; j < QSLOTS; ++j) {                                       \
      Q_SLOT_COPY(j, ci);                                                                      \
      if (seg == 0 && idx < TQC * KSEG) {                                                      \
        ROW_META(st, qq, live, row, qc[j]);                                                    \
      }                                                                                        \
      ADVANCE(qc[j][0], qc[j][1], qc[j][2], TQC, t.kcnt[1], t.kcnt[2]);                        \
    }                                                                                          \
    COPY_DO_ROWS(ci, os_);                                                                     \
  } while (0)
#endif

/* The copy slots' box coordinates for chunk c0 of a head, by COORDS(flat index, coordinates):
   TILE_BOX_COORDS, or (WS) WS_BOX_COORDS. */
#define SLOT_COORDS(c0, COORDS)                                        \
  _Pragma("unroll") for (int j = 0; j < QSLOTS; ++j) {                 \
    COORDS((c0) * TQC + SLOT_ROW(CP_TID + j * CP_NT, KSEG, TQC), qc[j]); \
  }                                                                    \
  _Pragma("unroll") for (int j = 0; j < OSLOTS; ++j) {                 \
    COORDS((c0) * TQC + SLOT_ROW(CP_TID + j * CP_NT, VSEG, TQC), oc[j]); \
  }
#define TILE_BOX_COORDS(f, c) BOX_COORDS(f, c, t.kcnt[1], t.kcnt[2])

#if WS
  /* The producer warpgroup: the consumers take the chunks in order (heads, then chunks; n
     counts them), chunk n in stage n % STAGES. Warp w fills stages w and w + 4 alone: for each
     of their chunks it waits until the consumers have released the stage (empty), issues the
     chunk's copies and metadata, waits for its copies and publishes the chunk (full; all 32
     lanes arrive). One warp a stage keeps a stage's phases in order: an mbarrier's phases are
     told apart by parity only, so no other warp may wait for a later phase of the same stage.
     H100, long-1d-causal's dK/dV kernel (2026-11-26 session 14): 1.564-1.575 ms, against
     1.757-1.764 with the warpgroup filling each chunk together and publishing it once the next
     was issued (two chunks' copies in flight). */
#if RANK == 1 /* box coordinates of flat index f (rank 1: the index itself) */
#define WS_BOX_COORDS(f, c) ((c)[0] = (f), (c)[1] = (c)[2] = 0)
#else
#define WS_BOX_COORDS TILE_BOX_COORDS
#endif
  if (warp >= NW) {
#if WS_PREGS
    SETMAXNREG("dec", WS_PREGS);
#endif
#if TMA
    const ulong qmap = (ulong)(size_t)(tmaps + 32), omap = qmap + 128;
    if (lane == 0) {
      NA_TMA_MAP_ACQUIRE(qmap);
      NA_TMA_MAP_ACQUIRE(omap);
    }
#endif
#if WS_ROT
    NA_ASM("bar.sync 1, %0;" ::"n"(NT) : "memory"); /* the consumers hold K and V: the tile's
                                                        memory takes chunks */
#endif
    for (int n = 0; n < G * nchunks; ++n) {
      const int st = n % STAGES;
      if (st % 4 != warp - NW) continue;
      const int hh = n / nchunks, c = n - hh * nchunks, h = hk * G + hh;
      na_mbar_wait(SMEM_ADDR(&ws_bar[STAGES + st]), ((n / STAGES) & 1) ^ 1);
      LOAD_QCHUNK(c, st);
      CP_ASYNC_COMMIT();
      CP_ASYNC_WAIT(0);
      WG_PROXY_FENCE();
      na_mbar_arrive(SMEM_ADDR(&ws_bar[st]));
    }
    return;
  }
#if WS_CREGS
  SETMAXNREG("inc", WS_CREGS);
#endif
#if WS_ROT
  LOAD_KV_FRAGMENTS();
#if TMA
  WG_PROXY_FENCE(); /* the tile's reads before the TMA's writes into its memory */
#endif
  NA_ASM("bar.arrive 1, %0;" ::"n"(NT) : "memory");
#endif
  int n_ = 0;       /* the consumers' chunk count */
  int ws_prev = -1; /* WS_DEFER: the stage whose chunk's dV and dK are still running, or -1 */
#endif
#if WS_ROT
  /* The rotated consumers (WS_ROT; FlashAttention-3's overlap within a warpgroup): step n
     issues S^T and dP^T of chunk n, waits for those of chunk n - 1 (and for dV and dK of chunk
     n - 2, whose stage it then frees), computes P^T and dS^T of chunk n - 1 while chunk n's
     products run, and issues that chunk's dV and dK. So a chunk's stage is held two steps: 3+
     stages. A warpgroup runs every chunk from the first to the last that its keys' queries
     reach (in rank 1 exactly the chunks it needs; in ranks 2 and 3 some between them may be
     all masked) and frees the others unread: every wgmma group is then non-empty and every
     wait unconditional, which ptxas needs to keep the products in flight (ROT in
     na_mma_fwd.cl). Two sets of score accumulators alternate (the loop is unrolled twice). */
  {
    /* The warpgroup's chunks: the queries that see any key of its box, as flat indices of the
       partner box (row-major, axis 0 slowest). */
    int r_lo = 0, r_hi = 0, r_any = 1;
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      const int ext = a == 1 ? t.kcnt[2] : 1;
      const int mul = a == 0 ? t.kcnt[1] * t.kcnt[2] : ext;
      int lo = 0, hi = 0;
      if (a < RANK) {
        r_any = r_any && kmin[a] <= kmax[a];
        lo = max(na_inv_lo(kmin[a], t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a], 0);
        hi = min(na_inv_hi(kmax[a], t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a],
                 t.kcnt[a] - 1);
      }
      r_lo += lo * mul;
      r_hi += hi * mul;
    }
    const int c_lo = r_any ? r_lo / TQC : 0, c_hi = r_any ? r_hi / TQC : -1;
    float s0[MW][NQB][4], p0[MW][NQB][4], s1[MW][NQB][4], p1[MW][NQB][4];
    uint pa[MW][TQC / 16][4], da[MW][TQC / 16][4];
    int n = 0;      /* the consumers' chunk count (heads, then chunks) */
    int pst = 0;    /* the stage of the chunk whose S^T and dP^T are in flight */
    int pfull = 0;  /* whether every query of that chunk sees the whole tile */
    int bst = -1;   /* the stage of the chunk whose dV and dK are in flight, or -1 */
/* Frees the next chunk unread (after it has landed: the stages' phases stay in order). */
#define ROT_FREE()                                                        \
  do {                                                                    \
    const int st_ = n % STAGES;                                           \
    na_mbar_wait(SMEM_ADDR(&ws_bar[st_]), (n / STAGES) & 1);              \
    na_mbar_arrive(SMEM_ADDR(&ws_bar[STAGES + st_]));                     \
    ++n;                                                                  \
  } while (0)
/* Waits for the next chunk, tells whether every query sees the whole tile (full_), and issues
   its S^T and dP^T into S_ and P_ (one group; zeros of their own, ZERO_OWN_SCORES). */
#define ROT_ISSUE(S_, P_)                                                                   \
  const int st_ = n % STAGES;                                                               \
  na_mbar_wait(SMEM_ADDR(&ws_bar[st_]), (n / STAGES) & 1);                                  \
  int full_ = 1;                                                                            \
  _Pragma("unroll") for (int u = 0; u < (TQC + 31) / 32; ++u) {                             \
    const int qq = lane + 32 * u;                                                           \
    if (qq < TQC) full_ &= q_in[st_][qq];                                                   \
  }                                                                                         \
  full_ = na_warp_all(full_);                                                               \
  ZERO_OWN_SCORES(S_, P_);                                                                  \
  {                                                                                         \
    __local const uint* qs = cs + st_ * CHUNK_WORDS;                                        \
    __local const uint* os = qs + Q_WORDS;                                                  \
    const ulong qdesc = CHUNK_KMAJOR_DESC(qs, KSEG);                                        \
    const ulong odesc = CHUNK_KMAJOR_DESC(os, VSEG);                                        \
    _Pragma("unroll") for (int m = 0; m < MW; ++m) {                                        \
      WG_CAT(WGMMA_FENCE_N, TQC)(S_[m]);                                                    \
      WG_CAT(WGMMA_FENCE_N, TQC)(P_[m]);                                                    \
    }                                                                                       \
    WG_KEY_PRODUCT(S_, ka, ks, SK, HDP, qdesc, KSEG);                                       \
    WG_KEY_PRODUCT(P_, va, vs, SV, HDVP, odesc, VSEG);                                      \
    WG_COMMIT();                                                                            \
  }
/* The pending chunk (stage pst, scores in S_ and P_): waits for its products by WAIT (WAIT1_N
   where the next chunk's are in flight behind them, WAIT_N where none is), frees the stage of
   the chunk before it, computes P^T and dS^T, and issues its dV and dK. */
#define ROT_PROCESS(S_, P_, WAIT)                                                            \
  do {                                                                                       \
    _Pragma("unroll") for (int m = 0; m < MW; ++m) {                                         \
      WG_CAT(WAIT, TQC)(S_[m]);                                                              \
      WG_CAT(WAIT, TQC)(P_[m]);                                                              \
    }                                                                                        \
    if (bst >= 0) na_mbar_arrive(SMEM_ADDR(&ws_bar[STAGES + bst]));                          \
    const int st = pst;                                                                      \
    if (pfull) {                                                                             \
      P_FROM_S(S_, P_, NQB, 0, 0, 1);                                                        \
    } else {                                                                                 \
      P_FROM_S(S_, P_, NQB, 0, 1, 1);                                                        \
    }                                                                                        \
    PACK_A(pa, S_, TQC / 16);                                                                \
    PACK_A(da, P_, TQC / 16);                                                                \
    __local const uint* qs = cs + st * CHUNK_WORDS;                                          \
    WG_ISSUE_DVDK(pa, da, qs, qs + Q_WORDS);                                                 \
    bst = st;                                                                                \
  } while (0)
/* A step: the next chunk into NS_/NP_, the pending one (in PS_/PP_) processed. */
#define ROT_STEP(NS_, NP_, PS_, PP_)         \
  do {                                       \
    ROT_ISSUE(NS_, NP_);                     \
    ROT_PROCESS(PS_, PP_, WGMMA_WAIT1_N);    \
    pst = st_;                               \
    pfull = full_;                           \
    ++n;                                     \
  } while (0)
/* The first chunk of a run (nothing pending), and the last (nothing behind it: every product
   waited for and both stages freed). */
#define ROT_FIRST(NS_, NP_) \
  do {                      \
    ROT_ISSUE(NS_, NP_);    \
    pst = st_;              \
    pfull = full_;          \
    ++n;                    \
  } while (0)
#define ROT_LAST(PS_, PP_)                                 \
  do {                                                     \
    ROT_PROCESS(PS_, PP_, WGMMA_WAIT_N);                   \
    WG_DVDK(WAIT);                                         \
    na_mbar_arrive(SMEM_ADDR(&ws_bar[STAGES + pst]));      \
    bst = -1;                                              \
  } while (0)
    for (int hh = 0; hh < G; ++hh) {
      for (int c = 0; c < c_lo; ++c) ROT_FREE();
      if (c_lo <= c_hi) {
        ROT_FIRST(s0, p0);
        int c = c_lo + 1;
        for (; c + 1 <= c_hi; c += 2) {
          ROT_STEP(s1, p1, s0, p0);
          ROT_STEP(s0, p0, s1, p1);
        }
        if (c <= c_hi) {
          ROT_STEP(s1, p1, s0, p0);
          ROT_LAST(s1, p1);
        } else {
          ROT_LAST(s0, p0);
        }
      }
      for (int c = c_hi + 1; c < nchunks; ++c) ROT_FREE();
    }
#undef ROT_FREE
#undef ROT_ISSUE
#undef ROT_PROCESS
#undef ROT_STEP
#undef ROT_FIRST
#undef ROT_LAST
  }
#else
  for (int h = hk * G; h < (hk + 1) * G; ++h) {
#if !WS
    SLOT_COORDS(0, TILE_BOX_COORDS);
#endif
#if RMETA
    int mq[3]; /* box coordinates of lane l's row of the current chunk */
    BOX_COORDS(lane, mq, t.kcnt[1], t.kcnt[2]);
    float nx_lse = 0.0f, nx_d = 0.0f;
    META_FETCH(0);
#endif
#if !WS
    /* Chunks 0 .. STAGES - 2 in flight first; chunk c + STAGES - 1 is issued in pass c. */
#pragma unroll
    for (int c = 0; c < STAGES - 1; ++c) {
      if (c < nchunks) LOAD_QCHUNK(c, c);
      CP_ASYNC_COMMIT();
    }
#endif

    for (int c = 0; c < nchunks; ++c) {
#if WS
      const int st = n_ % STAGES;
      na_mbar_wait(SMEM_ADDR(&ws_bar[st]), (n_ / STAGES) & 1);
#else
      const int st = c % STAGES;
#endif
#if RMETA
      /* Lane l's row of chunk c: lse (log2 units) and D (fetched in the pass before), window,
         whether it sees the whole tile and whether it sees a key of this warp (lanes past TQC
         are neutral); then the next chunk's lse and D are requested. */
      const int mlive = lane < TQC && c * TQC + lane < qbox;
      const float m_lse2 = nx_lse * LOG2E, m_d = nx_d;
      int m_lo[3], m_hi[3], m_whole = mlive, m_hit = mlive;
#pragma unroll
      for (int a = 0; a < 3; ++a) {
        const int qi = t.kst[a] + mq[a];
        const int lo = na_win_start(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a));
        const int hi = na_win_end(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a));
        m_lo[a] = mlive ? lo : FAR;
        m_hi[a] = mlive ? hi : FAR;
        m_whole = m_whole && lo <= t.first[a] && t.first[a] + t.valid[a] <= hi;
        if (a < RANK) m_hit = m_hit && lo <= kmax[a] && hi > kmin[a];
      }
      if (lane >= TQC) m_whole = 1;
      ADVANCE(mq[0], mq[1], mq[2], TQC, t.kcnt[1], t.kcnt[2]);
      if (c + 1 < nchunks) META_FETCH(c + 1);
#endif
#if WS
#elif STAGES >= 2
      /* One barrier per chunk (as in na_mma_fwd.cl): wait for chunk c; the barrier publishes it
         and tells that every warp is done with chunk c - 1, whose buffer takes c + STAGES - 1. */
      CP_ASYNC_WAIT(STAGES - 2);
#if WG
      WG_PROXY_FENCE();
#endif
      barrier(CLK_LOCAL_MEM_FENCE);
      if (c + STAGES - 1 < nchunks) LOAD_QCHUNK(c + STAGES - 1, (c + STAGES - 1) % STAGES);
      CP_ASYNC_COMMIT();
#else
      LOAD_QCHUNK(c, 0);
      CP_ASYNC_COMMIT();
      CP_ASYNC_WAIT(0);
#if WG
      WG_PROXY_FENCE();
#endif
      barrier(CLK_LOCAL_MEM_FENCE);
#endif
      __local const uint* qs = cs + st * CHUNK_WORDS;
      __local const uint* os = qs + Q_WORDS;

      /* Whether every query of the chunk sees the whole tile (no mask), and whether any sees a
         key of this warp (warp votes over the chunk's per-query flags). */
      int whole = 1, hit = 0;
#if RMETA
      whole = m_whole;
      hit = m_hit;
#else
#pragma unroll
      for (int u = 0; u < (TQC + 31) / 32; ++u) {
        const int qq = lane + 32 * u;
        if (qq < TQC) {
          whole &= q_in[st][qq];
          hit |= (q_lo[st][0][qq] <= kmax[0]) & (q_hi[st][0][qq] > kmin[0])
#if RANK >= 2
                 & (q_lo[st][1][qq] <= kmax[1]) & (q_hi[st][1][qq] > kmin[1])
#endif
#if RANK >= 3
                 & (q_lo[st][2][qq] <= kmax[2]) & (q_hi[st][2][qq] > kmin[2])
#endif
              ;
        }
      }
#endif
      const int full = na_warp_all(whole);
      if (WS ? full || na_warp_any(hit) : !WSKIP || full || na_warp_any(hit)) {
#if WG
        /* S^T = K Q^T and dP^T = V dO^T for this warp's keys x TQC queries. */
        float s[MW][NQB][4], dp[MW][NQB][4];
#if WS
        ZERO_OWN_SCORES(s, dp);
#else
        ZERO_SCORES(s, NQB);
        ZERO_SCORES(dp, NQB);
#endif
        {
          /* Q and dO chunks as B (K-major: head dims along K), in pieces of WG_SN queries: a
             k16 step is two cores further, the next WG_SN queries WG_SN / 8 row groups. */
          const ulong qdesc = CHUNK_KMAJOR_DESC(qs, KSEG);
          const ulong odesc = CHUNK_KMAJOR_DESC(os, VSEG);
#pragma unroll
          for (int m = 0; m < MW; ++m) {
            WG_CAT(WGMMA_FENCE_N, TQC)(s[m]);
#if DO_DK
            WG_CAT(WGMMA_FENCE_N, TQC)(dp[m]);
#endif
          }
          /* S^T and dP^T in two groups: P^T is computed while dP^T runs (below). */
          WG_KEY_PRODUCT(s, ka, ks, SK, HDP, qdesc, KSEG);
          WG_COMMIT();
#if DO_DK
          WG_KEY_PRODUCT(dp, va, vs, SV, HDVP, odesc, VSEG);
          WG_COMMIT();
#pragma unroll
          for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT1_N, TQC)(s[m]);
#if WS_DEFER /* the wait retired the earlier chunk's dV and dK too: its stage is free */
          if (ws_prev >= 0) na_mbar_arrive(SMEM_ADDR(&ws_bar[STAGES + ws_prev]));
          ws_prev = -1;
#endif
#else
#pragma unroll
          for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, TQC)(s[m]);
#endif
        }
        if (full) {
          P_FROM_S(s, s, NQB, 0, 0, 0);
        } else {
          P_FROM_S(s, s, NQB, 0, 1, 0);
        }
#if DO_DK
#pragma unroll
        for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, TQC)(dp[m]);
#pragma unroll
        for (int j = 0; j < NQB; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const float dd = q_d[st][j * 8 + 2 * tq + (e & 1)];
#pragma unroll
            for (int m = 0; m < MW; ++m) dp[m][j][e] = s[m][j][e] * (dp[m][j][e] - dd); /* dS^T */
          }
#endif

        /* dV += P^T dO and dK += dS^T Q: P^T and dS^T as A from the accumulators. */
        {
          uint pa[MW][TQC / 16][4], da[MW][TQC / 16][4];
          PACK_A(pa, s, TQC / 16);
          PACK_A(da, dp, TQC / 16);
          WG_ISSUE_DVDK(pa, da, qs, os);
#if WS_DEFER
          ws_prev = st;
#else
          WG_DVDK(WAIT);
#endif
        }
#else
        /* In steps of QSUB queries (sb: the step's first chunk row). SEQ 0: S^T and dP^T, then
           P^T and dS^T, then dV and dK. SEQ 1: S^T, P^T, dV; then dP^T, dS^T (P^T read back
           from its packed pairs), dK: half the score registers live at once. */
#pragma unroll 1
        for (int sb = 0; sb < TQC; sb += QSUB) {
          float s[MW][NSB][4];
          uint pa[MW][QSUB / 16][4], da[MW][QSUB / 16][4];
          ZERO_SCORES(s, NSB);
          SYNC_KEY_PRODUCT(s, ka, ks, SK, HDP, qs);
#if SEQ
          if (full) {
            P_FROM_S(s, s, NSB, sb, 0, 0);
          } else {
            P_FROM_S(s, s, NSB, sb, 1, 0);
          }
          PACK_A(pa, s, QSUB / 16);
          SYNC_CHUNK_PRODUCT(dv, pa, os, SV, NVD);
          float dp[MW][NSB][4];
          ZERO_SCORES(dp, NSB);
          SYNC_KEY_PRODUCT(dp, va, vs, SV, HDVP, os);
#pragma unroll
          for (int j = 0; j < NSB; ++j)
#pragma unroll
            for (int c2 = 0; c2 < 2; ++c2) {
              const float dd = Q_DD(sb + j * 8 + 2 * tq + c2);
#pragma unroll
              for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int m = 0; m < MW; ++m) {
                  const int e = 2 * i + c2;
                  const float2 pp = na_unpack2(pa[m][j >> 1][(j & 1) * 2 + i]);
                  dp[m][j][e] = (c2 ? pp.y : pp.x) * (dp[m][j][e] - dd); /* dS^T */
                }
            }
          PACK_A(da, dp, QSUB / 16);
          SYNC_CHUNK_PRODUCT(dk, da, qs, SK, NKD);
#else
          float dp[MW][NSB][4];
          ZERO_SCORES(dp, NSB);
          SYNC_KEY_PRODUCT(dp, va, vs, SV, HDVP, os);
          if (full) {
            P_FROM_S(s, dp, NSB, sb, 0, 1);
          } else {
            P_FROM_S(s, dp, NSB, sb, 1, 1);
          }
          PACK_A(pa, s, QSUB / 16);
          PACK_A(da, dp, QSUB / 16);
          SYNC_CHUNK_PRODUCT(dv, pa, os, SV, NVD);
          SYNC_CHUNK_PRODUCT(dk, da, qs, SK, NKD);
#endif
        }
#endif
      }
#if WS_DEFER
      if (ws_prev != st) { /* skipped: retire the earlier chunk's products, free both stages */
        if (ws_prev >= 0) {
          WG_DVDK(WAIT);
          na_mbar_arrive(SMEM_ADDR(&ws_bar[STAGES + ws_prev]));
          ws_prev = -1;
        }
        na_mbar_arrive(SMEM_ADDR(&ws_bar[STAGES + st]));
      }
      ++n_;
#elif WS
      na_mbar_arrive(SMEM_ADDR(&ws_bar[STAGES + st])); /* the stage is free */
      ++n_;
#elif STAGES == 1
      barrier(CLK_LOCAL_MEM_FENCE); /* the single buffer is free for the next chunk */
#endif
    }
#if STAGES >= 2 && !WS
    barrier(CLK_LOCAL_MEM_FENCE); /* the next head's first chunks overwrite this head's last */
#endif
  }
#endif /* WS_ROT */
#if WS_DEFER
  /* Only where products are pending. ptxas then injects a wait here (C7517: it cannot see that
     none is pending on the other path), which costs nothing after the loop. Unconditional, the
     driver's build serialized every wgmma of the kernel (C7515), and the long-1d-causal dK/dV
     kernel took 2.09 ms instead of 1.63-1.66 with the producer form of then, 1.99-2.01 instead
     of 1.86-1.87 with this one (H100, 2026-11-26 session 14, tools/sweeps/ws14c.txt and
     ws14d.txt). */
  if (ws_prev >= 0) WG_DVDK(WAIT);
#endif

  /* dK = scale * sum dS^T Q (dS is with respect to the scaled scores), dV; f16/bf16 pairs. */
#pragma unroll
  for (int m = 0; m < MW; ++m)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      if (!kvalid[m][i]) continue;
      const int row = (b * N + ktok[m][i]) * HKV + hk;
      __global uint* krow_out = (__global uint*)(d_k + row * hd);
      __global uint* vrow_out = (__global uint*)(d_v + row * hdv);
#pragma unroll
      for (int n = 0; n < (DO_DK ? NKD : 0); ++n) {
        const int d = n * 8 + 2 * tq;
        if (d < hd)
          krow_out[d / 2] = na_pack2(dk[m][n][2 * i] * scale, dk[m][n][2 * i + 1] * scale);
      }
#pragma unroll
      for (int n = 0; n < (DO_DV ? NVD : 0); ++n) {
        const int d = n * 8 + 2 * tq;
        if (d < hdv) vrow_out[d / 2] = na_pack2(dv[m][n][2 * i], dv[m][n][2 * i + 1]);
      }
    }
}
