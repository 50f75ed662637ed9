/* The tensor-core forward (variant mma): NVIDIA GPUs through NVIDIA's OpenCL driver, f16/bf16
 * storage, f32 accumulation, inline PTX (na_mma_common.h). Tiling as in the fused variant: a
 * work-group owns a box of BQ = 16 * MW * NW queries inside one dilation group and one (batch,
 * head), and visits the union of their windows in chunks of TK keys. Warp w owns query rows
 * [16 MW w, 16 MW (w + 1)) as MW blocks of 16 rows: their Q fragments stay in registers; per
 * chunk it computes S = Q K^T with mma.sync (K rows read as B fragments from shared memory, each
 * fragment used by the MW row blocks), masks S to each row's window only when the chunk is not
 * entirely inside every window of the tile, updates the online softmax in registers (quad
 * shuffles for the row max), and adds P V with mma.sync (P reused from the S accumulators, V
 * through ldmatrix.trans). A warp skips a chunk that holds no key of its rows' windows (a warp
 * vote against the bounding box of those windows). K and V chunks arrive by cp.async into
 * STAGES shared-memory buffers, so up to STAGES - 1 chunks load while one computes.
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
#define NW 4 /* warps per work-group, 16 * MW query rows each */
#endif
#ifndef MW
#define MW 1 /* 16-row blocks per warp (1 or 2) */
#endif
#ifndef TK
#define TK 32 /* keys per chunk (multiple of 16) */
#endif
#ifndef STAGES
#define STAGES 2 /* shared-memory buffers for K/V chunks (1 to 8) */
#endif
#ifndef HDP
#define HDP 64 /* head_dim bucket (multiple of 16, <= 128: Q fragments live in registers) */
#endif
#ifndef HDVP
#define HDVP HDP /* head_dim_v bucket (multiple of 16) */
#endif
#ifndef WSKIP
#define WSKIP 1 /* warps skip chunks outside their rows' windows (the host turns it off where
                   that can skip little: the test costs registers) */
#endif
#ifndef MMA_DQ
#define MMA_DQ 0 /* 1: build the backward's dQ kernel instead of the forward */
#endif
#ifndef SPOS
#define SPOS 0 /* forward: 1 when scale > 0 (the host's choice): the scale folded into the
                  exponentials */
#endif
#ifndef ROT
#define ROT 0 /* forward, WG tiles: 1, the products rotated (the rotated loop below); 2, also
                 the second warpgroup half a pass behind the first (rank 1, or TMA chunk
                 boxes at ranks 2 and 3: chunk metadata that no copy overwrites) */
#endif
#if MMA_DQ && (SPOS || ROT)
#error "SPOS and ROT are forward options"
#endif
#if ROT && (!WG || STAGES != 2 || ROT > 2 || \
            (ROT == 2 && (NW != 8 || (RANK != 1 && !(defined(TMA) && TMA)))))
#error "ROT needs WG=1 and STAGES=2; ROT=2 also NW=8, and rank 1 or TMA"
#endif
#ifndef LATE_LOADS
/* The dQ kernel's WG tiles of 2 stages or more: 1 issues each pass's copies after its S and dP
   wgmma, not right after the barrier. H100, f16, two alternating rounds (session 13):
   long-1d-causal 1.032/1.028 -> 1.02/1.02 ms, vision-2d 0.2326/0.2339 -> 0.2297/0.2309,
   vision-2d-dilated 0.2009 -> 0.1996; at head dim 128 it lost (video-3d 4.104 -> 4.135, flux-2d
   0.2318 -> 0.2332), so head dims up to 64 only. The forward with chunk boxes (TMA_BOX) also
   issues them after S's wgmma: H100, f16, two rounds (session 21, tools/sweeps/ab21.out.txt),
   video-3d 1.34 -> 1.33-1.336 ms, flux-2d 0.0907-0.0915 -> 0.0898-0.0902, and with it taken
   back from the other session 21 options, the dilated preset 0.1181-0.1184 -> 0.1197-0.12 and
   vision-2d 0.1137 -> 0.1152 (one round). The other unrotated WG forwards keep their copies
   after the barrier (on the H200 a vision-2d tuning entry went 0.1928 -> 0.1962 in one round
   with them late). */
#define LATE_LOADS (MMA_DQ ? HDP <= 64 && HDVP <= 64 : TMA_BOX)
#endif
#ifndef V_LATE
/* 1: the chunk-box forward (no warp skipping) waits for a chunk's V only before its P V product,
   not with its K at the top of the pass. H100, f16 (session 21, ab21.out.txt): alone it lost
   (video-3d 1.34 -> 1.348-1.354 ms), with LATE_LOADS and MASK_SPLIT it won (1.33-1.336 with
   LATE_LOADS alone, 1.318 with all three; flux-2d 0.0898-0.0902 -> 0.0895-0.0898); taking it
   back from all three: the dilated preset 0.1181-0.1184 -> 0.1208-0.121, vision-2d 0.1137 ->
   0.1125 (one round). */
#define V_LATE 1
#endif
#ifndef MASK_SPLIT
/* 1: the chunk-box forward masks a chunk that lies inside every window on its slower axes by
   the fastest axis' test alone (MASK_BOX_FAST). H100, f16 (session 21): alone video-3d 1.34 ->
   1.336-1.338 ms, flux-2d even; taking it back from all three options: the dilated preset
   0.1181-0.1184 -> 0.1175-0.1179, vision-2d 0.1137 -> 0.1127 (one round): within noise. */
#define MASK_SPLIT 1
#endif
#ifndef LAZY_RESCALE
/* > 0: the online softmax keeps a row's maximum until a chunk's exceeds it by more than
   LAZY_RESCALE (log2 units), so that P reaches at most 2^LAZY_RESCALE (in range for f16 up to
   2^15, and P's relative rounding does not depend on its size) and O is rescaled less often
   (a warp skips the rescale when no row's maximum moved). H100, two alternating rounds of 30
   (session 22, tools/sweeps/lazy22.txt, qpf22.txt): 8 against 0, video-3d bf16 1.32 / 1.32
   against 1.326 / 1.324 and 1.304 / 1.301 against 1.31 / 1.305, the dilated preset bf16 0.1119
   / 0.1116 against 0.1123 / 0.1127, vision-2d f16 0.1133 / 0.1138 against 0.1153 / 0.1142;
   flux-2d even (0.0884-0.0898 against 0.0879-0.0904); 4 about as 8. */
#define LAZY_RESCALE 8
#endif
#ifndef SMEM_EXTRA
#define SMEM_EXTRA 0 /* TMA: words of local memory added to the work-group's (fewer work-groups an
                        SM, for A/B runs of occupancy) */
#endif
#ifndef NEXT_BY_DIV
/* 1: the chunk-box forward's loop finds each load's box by division of its index (TMA_CHUNK), 0:
   by advancing the pass's box (LOAD_NEXT_BOX). H100, f16, two alternating rounds (session 21,
   tools/sweeps/ab21.txt, dil21.txt): 0 took video-3d 1.418 -> 1.34 ms and vision-2d 0.1194 ->
   0.1137, but the dilated preset 0.1122 -> 0.1183, hence division with dilation only. */
#define NEXT_BY_DIV (DIL0 > 1 || DIL1 > 1 || DIL2 > 1)
#endif
#ifndef DQ_DEFER
#define DQ_DEFER 0 /* the dQ kernel's WG tiles of 3+ stages: 1, each chunk's dQ product runs on into
                      the next pass (retired by the wait for its S), and the copies go one chunk
                      less far ahead, into the stage whose dQ product that wait retired */
#endif
#ifndef WG
#define WG 0 /* 1: both products by Hopper's wgmma (sm_90a, na_wgmma.h): the 4 warps of a
                warpgroup multiply their 64 rows together, K and V chunks as core matrices */
#endif
#if defined(TMA) && TMA && RANK > 1 && HDP > 64
#define CHUNK_HALF_BYTES (TK * 128) /* TMA_BOX at head dim 128: two boxes of 64 dims a chunk */
/* and S in products of 64 keys (na_wgmma.h). H100 (session 19, tools/sweeps/sn64_19.txt):
   flux-2d 0.09424 -> 0.09306 / 0.09302 ms (f16, two rounds; bf16 0.09354 -> 0.09338), video-3d
   1.971 -> 1.924; MmaConfigs.TmaBoxChunksAreCorrect passed with it. */
#ifndef WG_SN_MAX
#define WG_SN_MAX 64
#endif
#endif
#if WG
#define WG_CHUNK TK /* S (and dP) run in pieces of WG_SN keys (na_wgmma.h) */
#include "na_wgmma.h"
#if NW % 4 != 0 || WSKIP
#error "WG tiles: warps in groups of 4, no per-warp chunk skip"
#endif
#endif

#if DQ_DEFER && (!MMA_DQ || !WG || STAGES < 3)
#error "DQ_DEFER: the dQ kernel's WG tiles of 3+ stages"
#endif
#ifndef CHUNK_PAIRS
/* The chunk copies' thread map (SLOT_ROW in na_mma_common.h): pairs of segments for WG tiles.
   H100 (session 7): long-1d-causal forward 1.11 -> 1.082 ms, the WG dQ kernel 0.2402 -> 0.2193
   on flux-2d, 4.519 -> 4.213 on video-3d, 0.2367 -> 0.2266 on vision-2d. */
#define CHUNK_PAIRS WG
#endif
#ifndef TMA
/* 1: K and V chunks arrive by the TMA (na_sm90.h) through tensor maps that na_tma_kv_maps
   built before the kernel (argument tmaps: K's map, then V's), one elected thread issuing each
   box and an mbarrier a stage and operand signalling its bytes, instead of cp.async by every
   thread; the chunks are stored in the 128-byte swizzle layout that wgmma reads through
   na_wg_desc_sw128. Rank 1 without dilation (a chunk is TK consecutive tokens), head dims 64
   (a row is the swizzle's 128 bytes), WG tiles of 2+ stages.
   Ranks 2 and 3 (TMA_BOX, the forward only): a chunk is a box of KB0 x KB1 x KB2 keys of the
   tile's key box (TK = their product; the fastest used axis a multiple of 8), one rank-5 box a
   64 dims (na_tma_box_maps); the key box is visited in such boxes, and masks factor by axis.
   The last box on an axis whose key count is not a multiple of the box's extent starts back
   over keys of the box before it, which its mask leaves out (BOX_SHIFT); only where the key box
   is narrower than a box does a box reach past it (masked, its V rows zeroed). Head dims 64 or
   128 (two boxes a row); with dilation a box takes every DILa-th token (the maps' element
   strides). */
#define TMA 0
#endif
#if TMA
#include "na_sm90.h"
#if RANK == 1
#define TMA_BOX 0
#if !WG || DIL0 != 1 || !HD_EXACT || HDP != 64 || HDVP != 64 || STAGES < 2
#error "TMA: WG tiles of 2+ stages, rank 1 without dilation, head dims 64"
#endif
#else
#define TMA_BOX 1
#if !WG || MMA_DQ || !HD_EXACT || HDP != HDVP || (HDP != 64 && HDP != 128) || \
    STAGES < 2 || DIL0 > 8 || DIL1 > 8 || DIL2 > 8
#error "TMA at rank 2-3: the forward's WG tiles of 2+ stages, head dims 64 or 128, dilation <= 8"
#endif
#if !defined(KB0) || !defined(KB1) || !defined(KB2) || KB0 * KB1 * KB2 != TK || \
    (RANK == 3 && KB2 % 8 != 0) || (RANK == 2 && (KB2 != 1 || KB1 % 8 != 0))
#error "TMA_BOX: chunk boxes KB0 x KB1 x KB2 of TK keys, the fastest used axis a multiple of 8"
#endif
#define BOX_F (RANK == 3 ? 2 : 1)   /* the fastest used axis */
#define KBF (RANK == 3 ? KB2 : KB1) /* its extent in a chunk */
#define KBM (RANK == 3 ? KB1 : 1)   /* rank 3: axis 1's */
#define NJF (KBF / 8)               /* n8 key blocks along the fastest axis */
#ifndef BOX_SHIFT
/* 1: the last box on an axis whose key count is not a multiple of its extent starts back inside
   the key box (its shared keys masked), so that no V rows need zeroing but where the key box is
   narrower than a box (then the same rows in every chunk: vzero); 0: it reaches past the key box
   and the chunk's V rows past it are zeroed each pass. H100, two alternating rounds of 30
   (session 24, tools/sweeps/poly24.out.txt, dup24.out.txt): video-3d 1.305 -> 1.286-1.289 ms
   (bf16 1.299-1.305 -> 1.282-1.286), the dilated preset 0.1057-0.1072 -> 0.1048-0.1061, flux-2d
   even, vision-2d 0.1103-0.1109 -> 0.1113-0.1125 (its build under the 128-register cap spills 8
   bytes); with the zero bits in local memory (call 5, lds24.out.txt) flux-2d 0.0859-0.0865 ->
   0.0835-0.0836 and vision-2d still 0.1128. Hence on at head dim 128 and with dilation, off at
   head dim 64 without (whose kernel is then session 23's: the same PTX in the stand-in). */
#define BOX_SHIFT (HDP > 64 || DIL0 > 1 || DIL1 > 1 || DIL2 > 1)
#endif
/* Where the box of chunk coordinate k starts on an axis (box extent kb, key box extent cnt) */
#if BOX_SHIFT
#define BOX_START(k, kb, cnt) min((k) * (kb), max((cnt) - (kb), 0))
#else
#define BOX_START(k, kb, cnt) ((k) * (kb))
#endif
#endif
#else
#define TMA_BOX 0
#endif
#if V_LATE && (!TMA_BOX || ROT || WSKIP)
#undef V_LATE
#define V_LATE 0
#endif
/* The forward issues them after S's wgmma (WG tiles without warp skipping). */
#if LATE_LOADS && (!WG || STAGES < 2 || (!MMA_DQ && WSKIP))
#undef LATE_LOADS
#define LATE_LOADS 0
#endif
#define NT (32 * NW)
#define WR (16 * MW) /* query rows per warp */
#define BQ (WR * NW)
#define SK ((HDP + 8) / 2)  /* K row stride in 32-bit words (+16 bytes: conflict-free) */
#define SV ((HDVP + 8) / 2) /* V row stride in words */
#define KSEG (HDP / 8)      /* 16-byte segments per K row */
#define VSEG (HDVP / 8)
#define NKB (TK / 8)        /* n8 key blocks per chunk */
#define NDB (HDVP / 8)      /* n8 value-dim blocks */
#if WG
/* Core-matrix layout (wgmma's operands without swizzle): the 16-byte segment sg of chunk row r
   in core (r / 8, sg), 8 rows x 16 bytes each, the cores of a group of 8 rows contiguous. */
#define K_WORDS (TK * HDP / 2)
#define V_WORDS (TK * HDVP / 2)
#define K_AT(r, sg) ((((r) >> 3) * KSEG + (sg)) * 32 + ((r) & 7) * 4)
#define V_AT(r, sg) ((((r) >> 3) * VSEG + (sg)) * 32 + ((r) & 7) * 4)
#define SMEM_ALIGN 128
#else
#define K_WORDS (TK * SK)
#define V_WORDS (TK * SV)
#define K_AT(r, sg) ((r) * SK + (sg) * 4)
#define V_AT(r, sg) ((r) * SV + (sg) * 4)
#define SMEM_ALIGN 16
#endif
#define STAGE_WORDS (K_WORDS + V_WORDS)
#define QTILE_WORDS (MMA_DQ && SV > SK ? BQ * SV : BQ * SK) /* Q (and dO) staging */
#define SMEM_WORDS (QTILE_WORDS > STAGES * STAGE_WORDS ? QTILE_WORDS : STAGES * STAGE_WORDS)
/* TMA_BOX at head dim 128 where the query tile fits one stage's memory: chunk c goes to stage
   (c + 1) % STAGES, so that the first STAGES - 1 chunks load while the query tile is staged in
   stage 0's memory (CHUNK_PARITY: the parity of that stage's use by chunk c, for its
   mbarriers). H100, f16, two alternating rounds (session 19, tools/sweeps/shift19.txt): flux-2d
   0.1019 / 0.1012 -> 0.0998 / 0.0994 ms; at head dim 64 it lost (vision-2d 0.1456 / 0.1439 ->
   0.1485 / 0.1482, the dilated preset 0.1222 / 0.121 -> 0.1254 / 0.1246). Session 22, after
   LATE_LOADS, V_LATE and LAZY_RESCALE (tools/sweeps/shift22.out.txt, two rounds of 30): the
   dilated preset gained, bf16 0.1122 / 0.1124 -> 0.1114 / 0.1115, f16 0.1124 / 0.1121 -> 0.1118
   / 0.1116, vision-2d still lost (0.1139 -> 0.1147 / 0.1145): on with a dilation at head dim 64
   too. */
#ifndef STAGE_SHIFT /* (a define for A/B runs: 1 needs TMA_BOX, !ROT, the query tile in a stage) */
#if TMA_BOX && QTILE_WORDS <= STAGE_WORDS && (HDP > 64 || DIL0 > 1 || DIL1 > 1 || DIL2 > 1) && \
    !ROT
#define STAGE_SHIFT 1
#else
#define STAGE_SHIFT 0
#endif
#endif
#if STAGE_SHIFT && !(TMA_BOX && QTILE_WORDS <= STAGE_WORDS && !ROT)
#error "STAGE_SHIFT needs TMA_BOX, ROT=0 and the query tile within one stage's memory"
#endif
#ifndef PERSIST
/* 1: the chunk-box forward's work-groups are persistent (the host launches a few an SM: its
   PERSIST): each walks tiles, its first its own index, the others drawn in order from a counter
   (tile_counter), and after a tile's last pass it starts the next one: that tile's chunk 0 goes
   into the stage the last chunk left free, and its Q fragments are loaded from global memory
   straight into the Q registers while the epilogue runs (after the chunk loop). The stages' chunk
   counter (CBASE, for their mbarriers' parities) runs on across tiles. */
#define PERSIST 0
#endif
#if PERSIST && (!TMA_BOX || ROT || STAGES != 2 || MW != 1)
#error "PERSIST: the chunk-box forward (TMA at ranks 2-3), ROT=0, 2 stages, MW=1"
#endif
#if PERSIST
#define CBASE cbase /* chunks of the work-group's earlier tiles */
#else
#define CBASE 0
#endif
#define CHUNK_STAGE(cc) (((cc) + CBASE + STAGE_SHIFT) % STAGES)
#define CHUNK_PARITY(cc)                                              \
  ((((cc) + CBASE + STAGE_SHIFT) / STAGES -                           \
    ((((cc) + CBASE + STAGE_SHIFT) % STAGES) < STAGE_SHIFT)) & 1)

#if TQ0 * TQ1 * TQ2 != BQ || TK % 16 != 0 || HDP % 16 != 0 || HDVP % 16 != 0 || HDP > 128 || \
    MW < 1 || MW > 2 || STAGES < 1 || STAGES > 8
#error "mma tile configuration"
#endif

#if MMA_DQ
#ifndef DQ_DELTA
/* 1: the dQ kernel computes each row's D = dot(dO, O) itself (O from `out`, read at the
   positions of the thread's dO fragments) and writes it to `delta` for the dK/dV kernel, which
   runs after it: no separate D pass. 0: `delta` holds D from the D pass (na_delta.cl). */
#define DQ_DELTA 0
#endif
#if DQ_DELTA
#define DELTA_PTR __global float*
#else
#define DELTA_PTR __global const float*
#endif
__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void na_mma_bwd_dq(
    __global const ushort* q, __global const ushort* k, __global const ushort* v,
    __global const ushort* d_out, __global const float* lse, DELTA_PTR delta,
    __global ushort* d_q, int B, int L0, int L1, int L2, int H, int HKV, int hd, int hdv,
    float scale, int nt0, int nt1, int nt2
#if DQ_DELTA
    , __global const ushort* out
#endif
#if TMA
    , __global const ulong* tmaps
#endif
    ) {
#else
__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void na_mma_fwd(
    __global const ushort* q, __global const ushort* k, __global const ushort* v,
    __global ushort* out, __global float* lse, int B, int L0, int L1, int L2, int H, int HKV,
    int hd, int hdv, float scale, int nt0, int nt1, int nt2
#if TMA
    , __global const ulong* tmaps
#endif
#if PERSIST
    , __global int* tile_counter
#endif
    ) {
#endif
  HD_EXACT_CONSTANTS();
  /* Q staging, then STAGES x (K chunk, V chunk); 16-byte aligned for cp.async and ldmatrix */
#if TMA
  /* the chunk buffers at a 1024-byte boundary (the swizzle's atoms) */
  __local uint smem_raw[SMEM_WORDS + 256 + SMEM_EXTRA];
  __local uint* smem = smem_raw + ((1024u - (SMEM_ADDR(smem_raw) & 1023u)) & 1023u) / 4;
  __local ulong tma_bar[STAGES][2]; /* per stage: K's and V's boxes landed */
#else
  __local uint smem[SMEM_WORDS] __attribute__((aligned(SMEM_ALIGN)));
#endif
#if PERSIST
  /* (tj: the work-group's tile count, from 0) */
  __local int tickets[3];  /* tile indices: the work-group's tile tj + 1 in slot (tj + 1) % 3 */
  /* The geometry of tile tj in slot tj & 1, written by thread 0 at the start of tile tj - 1
     (read at the end of tile tj - 1 and at the start of tile tj, written again at the start of
     tile tj + 1, after tile tj's barriers) */
  __local int tile_info[2][21];
#endif
#if TMA_BOX && BOX_SHIFT
  __local uint vzero[NT]; /* TMA_WAIT_V's rows to zero, a word a thread */
#endif
#if !TMA_BOX
  __local int key_y[STAGES][3][TK]; /* box coordinates of each chunk's keys (FAR past the box) */
  __local int key_in[STAGES][TK];   /* 1 when the key is in every row's window of the tile */
#endif

#if !PERSIST
  const int lid = get_local_id(0);
  const int lane = lid & 31, warp = lid >> 5;
  const int g = lane >> 2, tq = lane & 3;
#endif
  const int N = L0 * L1 * L2;
  const int tiles = nt0 * nt1 * nt2;
#if TMA
  const ulong kmap = (ulong)(size_t)tmaps, vmap = kmap + 128;
  if (get_local_id(0) == 0) { /* published by the query staging's barrier (below) */
    NA_TMA_MAP_ACQUIRE(kmap);
    NA_TMA_MAP_ACQUIRE(vmap);
#pragma unroll
    for (int s_ = 0; s_ < STAGES; ++s_) {
      na_mbar_init(SMEM_ADDR(&tma_bar[s_][0]), 1);
      na_mbar_init(SMEM_ADDR(&tma_bar[s_][1]), 1);
    }
    NA_MBAR_INIT_FENCE();
  }
#endif
#if PERSIST
  /* Tiles are handed out in order by a counter (tile_counter[0], in tiles past the first G;
     zero at the launch, and set back to zero by the last work-group to finish: tile_counter[1]
     counts them), so that the tiles in flight stay a contiguous range (their K and V rows shared
     in L2) and a work-group that drew cheap tiles takes more. A work-group's first tile is its
     index; thread 0 draws tile tj + 2 at the end of tile tj (tile 1 before the loop), so that each
     draw's latency is long past when the tile is needed. */
  const int G = get_num_groups(0), total = tiles * H * B;
  if (get_local_id(0) == 0) tickets[1] = atomic_add(tile_counter, 1) + G;
  int cbase = 0; /* CBASE */
  int pref = 0;  /* 1: the previous tile's last pass issued this tile's chunk 0 and loaded qa */
  uint qa[MW][HDP / 16][4];
  for (int wg = get_group_id(0), tj = 0; wg < total; ++tj) {
    /* The work-item's index through an empty asm: what derives from it is computed again in
       each tile, not hoisted out of this loop and held in registers through it (not timed on
       its own; in the stand-in it changed no register count). */
    int lid = get_local_id(0);
    __asm__ volatile("" : "+r"(lid));
    const int lane = lid & 31, warp = lid >> 5;
    const int g = lane >> 2, tq = lane & 3;
#else
  const int wg = get_group_id(0);
  (void)B;
#endif
#if PERSIST
  /* Thread 0 works out the next tile's geometry once for the work-group (its divisions by the
     grid's counts are the costly part of a tile's setup). */
  if (lid == 0) {
    const int nwg_ = tickets[(tj + 1) % 3];
    const na_tile tn_ = na_tile_of(nwg_ % tiles, L0, L1, L2, nt0, nt1, nt2, TQ0, TQ1, TQ2);
    __local int* s_ = tile_info[(tj + 1) & 1];
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      s_[a] = tn_.grp[a];
      s_[3 + a] = tn_.first[a];
      s_[6 + a] = tn_.valid[a];
      s_[9 + a] = tn_.glen[a];
      s_[12 + a] = tn_.kst[a];
      s_[15 + a] = tn_.kcnt[a];
    }
    s_[18] = nwg_ < total && tn_.live;
    s_[19] = (nwg_ / tiles) % H;
    s_[20] = nwg_ / (tiles * H);
  }
/* a tile's geometry from its slot */
#define TILE_FROM_SLOT(tt, s)        \
  do {                               \
    _Pragma("unroll") for (int a_ = 0; a_ < 3; ++a_) { \
      (tt).grp[a_] = (s)[a_];        \
      (tt).first[a_] = (s)[3 + a_];  \
      (tt).valid[a_] = (s)[6 + a_];  \
      (tt).glen[a_] = (s)[9 + a_];   \
      (tt).kst[a_] = (s)[12 + a_];   \
      (tt).kcnt[a_] = (s)[15 + a_];  \
    }                                \
    (tt).live = (s)[18];             \
  } while (0)
  na_tile t;
  int h, b;
  if (tj == 0) {
    h = (wg / tiles) % H;
    b = wg / (tiles * H);
    t = na_tile_of(wg % tiles, L0, L1, L2, nt0, nt1, nt2, TQ0, TQ1, TQ2);
  } else {
    TILE_FROM_SLOT(t, tile_info[tj & 1]);
    h = tile_info[tj & 1][19];
    b = tile_info[tj & 1][20];
  }
  const int hk = h / (H / HKV);
#else
  const int h = (wg / tiles) % H;
  const int b = wg / (tiles * H);
  const int hk = h / (H / HKV);
  const na_tile t = na_tile_of(wg % tiles, L0, L1, L2, nt0, nt1, nt2, TQ0, TQ1, TQ2);
#endif
#if PERSIST
  if (!t.live) { /* (never one that a previous tile started: pref is 0) */
    if (lid == 0) tickets[(tj + 2) % 3] = atomic_add(tile_counter, 1) + G;
    barrier(CLK_LOCAL_MEM_FENCE); /* (slot reuse: see the end of the loop) */
    wg = tickets[(tj + 1) % 3];
    continue;
  }
  /* A tile that the previous one did not start: every warp is done with that one's last chunk
     before its stages are written again. */
  if (cbase > 0 && !pref) barrier(CLK_LOCAL_MEM_FENCE);
#define PREF pref
#else
  if (!t.live) return;
#define PREF 0
#endif
  const int kbox = t.kcnt[0] * t.kcnt[1] * t.kcnt[2];
#if TMA_BOX
  /* chunk boxes per axis, and the box coordinates (in chunks) of the pass's chunk */
  const int nk1 = (t.kcnt[1] + KB1 - 1) / KB1, nk2 = (t.kcnt[2] + KB2 - 1) / KB2;
  const int nchunks = (t.kcnt[0] + KB0 - 1) / KB0 * nk1 * nk2;
  int kcur[3] = {0, 0, 0};
/* box coordinates (k0, k1, k2) advanced to the next box in the box order (axis 2 fastest) */
#define BOX_STEP(k0, k1, k2)   \
  do {                         \
    if (++(k2) == nk2) {       \
      (k2) = 0;                \
      if (++(k1) == nk1) {     \
        (k1) = 0;              \
        ++(k0);                \
      }                        \
    }                          \
  } while (0)
#define BOX_NEXT() BOX_STEP(kcur[0], kcur[1], kcur[2])
#else
  const int nchunks = (kbox + TK - 1) / TK;
#define BOX_NEXT() ((void)0)
#endif
#if TMA_BOX
/* Chunk (k0, k1, k2) (a box of KB0 x KB1 x KB2 keys at those chunk coordinates of the key box) of
   one operand: HDP / 64 boxes of 64 dims on the stage's mbarrier, issued by the calling thread.
   Axis 0 and the batch are one dimension of the map. */
#define TMA_BOX_OF(tt, bb, hkk, k0, k1, k2, bar, dst, map)                                   \
  do {                                                                                      \
    na_mbar_arrive_expect(SMEM_ADDR(bar), TK * 2 * HDP);                                    \
    _Pragma("unroll") for (int h_ = 0; h_ < HDP / 64; ++h_)                                 \
      NA_TMA_LOAD_5D(SMEM_ADDR(dst) + h_ * TK * 128, map, h_ * 64, hkk,                     \
                  ((tt).kst[2] + BOX_START(k2, KB2, (tt).kcnt[2])) * DIL2 + (tt).grp[2],     \
                  ((tt).kst[1] + BOX_START(k1, KB1, (tt).kcnt[1])) * DIL1 + (tt).grp[1],     \
                  (bb) * L0 + ((tt).kst[0] + BOX_START(k0, KB0, (tt).kcnt[0])) * DIL0 +      \
                      (tt).grp[0],                                                          \
                  SMEM_ADDR(bar));                                                          \
  } while (0)
#define TMA_BOX_AT(k0, k1, k2, bar, dst, map) TMA_BOX_OF(t, b, hk, k0, k1, k2, bar, dst, map)
/* Chunk ci (its index in the box order) of one operand, issued by thread 0. */
#define TMA_CHUNK(ci, bar, dst, map)                                                          \
  do {                                                                                        \
    if (lid == 0) {                                                                           \
      const int c2_ = (ci) % nk2, c1_ = ((ci) / nk2) % nk1, c0_ = (ci) / (nk2 * nk1);         \
      TMA_BOX_AT(c0_, c1_, c2_, bar, dst, map);                                               \
    }                                                                                         \
  } while (0)
/* The pass's load of chunk c + 1 (copies one chunk ahead) into stage st: its box coordinates
   are the pass's (kcur) advanced by one, without the divisions of TMA_CHUNK. */
#define LOAD_NEXT_BOX(st)                                                                     \
  do {                                                                                        \
    if (lid == 0) {                                                                           \
      int n0_ = kcur[0], n1_ = kcur[1], n2_ = kcur[2];                                        \
      BOX_STEP(n0_, n1_, n2_);                                                                \
      TMA_BOX_AT(n0_, n1_, n2_, &tma_bar[st][0], smem + (st) * STAGE_WORDS, kmap);            \
      TMA_BOX_AT(n0_, n1_, n2_, &tma_bar[st][1], smem + (st) * STAGE_WORDS + K_WORDS, vmap);  \
    }                                                                                         \
  } while (0)
#define LOAD_K(ci, st) TMA_CHUNK(ci, &tma_bar[st][0], smem + (st) * STAGE_WORDS, kmap)
#define LOAD_V(ci, st) TMA_CHUNK(ci, &tma_bar[st][1], smem + (st) * STAGE_WORDS + K_WORDS, vmap)
#endif
#if STAGE_SHIFT
  /* The first chunks go out now, into the stages after chunk STAGES - 1's (stages 1 .. STAGES -
     1 in a work-group's first tile), while the query tile is staged in that one's memory. */
  if (lid == 0 && !PREF) {
#pragma unroll
    for (int c = 0; c < STAGES - 1; ++c)
      if (c < nchunks) {
        LOAD_K(c, CHUNK_STAGE(c));
        LOAD_V(c, CHUNK_STAGE(c));
      }
  }
#endif

  /* This thread's rows (g and g + 8 of each of its warp's MW blocks): windows relative to the
     key box. */
  int wlo[MW][2][3], whi[MW][2][3], rvalid[MW][2], rtok[MW][2];
  /* The intersection of all windows of the tile: a chunk inside it needs no mask. */
  int ilo[3], ihi[3];
  /* The bounding box of this warp's windows: a chunk with no key in it is skipped. */
  int blo[3], bhi[3];
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const int last = t.first[a] + t.valid[a] - 1;
    ilo[a] = na_win_start(last, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
    ihi[a] = na_win_end(t.first[a], t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
    blo[a] = FAR;
    bhi[a] = -FAR;
  }
#pragma unroll
  for (int m = 0; m < MW; ++m)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      ROW_X(warp * WR + 16 * m + g + 8 * i, x0, x1, x2);
      const int x[3] = {x0, x1, x2};
      rvalid[m][i] = x0 < t.valid[0] && x1 < t.valid[1] && x2 < t.valid[2];
      rtok[m][i] = NA_TOKEN(x0, x1, x2, t.first, t.grp, L1, L2);
#pragma unroll
      for (int a = 0; a < 3; ++a) {
        /* rows past the tile take the last valid row's window (they are never written) */
        const int qi = t.first[a] + NA_MIN(x[a], t.valid[a] - 1);
        wlo[m][i][a] = na_win_start(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
        whi[m][i][a] = na_win_end(qi, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
        blo[a] = min(blo[a], wlo[m][i][a]);
        bhi[a] = max(bhi[a], whi[m][i][a]);
      }
    }
  WARP_BOX(blo, bhi);

#if MMA_DQ && DQ_DELTA
  /* O at the positions of this thread's dO fragment words (rows g, g + 8 of each block; dims
     16 kk + 2 tq and 16 kk + 8 + 2 tq), loaded first so that their latency overlaps the Q and dO
     staging; zero past the head dim and for rows past the tile. */
  uint opair[MW][2][HDVP / 8];
#pragma unroll
  for (int m = 0; m < MW; ++m)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      __global const uint* orow =
          (__global const uint*)(out + ((b * N + rtok[m][i]) * H + h) * hdv);
#pragma unroll
      for (int u = 0; u < HDVP / 8; ++u) {
        const int d = u * 8 + 2 * tq;
        opair[m][i][u] = rvalid[m][i] && d < hdv ? orow[d / 2] : 0u;
      }
    }
#endif

/* The A fragments (a[MW][hdim / 16][4]) of this warp's rows of a tile staged at src (row
   stride `stride` words): rows g and g + 8 of each block, words kk * 8 + tq and + 4. */
#define A_FRAGS_FROM(a, src, stride, hdim)                                                    \
  _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int kk = 0;           \
                                                                        kk < (hdim) / 16; ++kk) { \
    const int r0 = (warp * WR + 16 * m + g) * (stride) + kk * 8 + tq;                          \
    a[m][kk][0] = (src)[r0];                                                                  \
    a[m][kk][1] = (src)[r0 + 8 * (stride)];                                                   \
    a[m][kk][2] = (src)[r0 + 4];                                                              \
    a[m][kk][3] = (src)[r0 + 8 * (stride) + 4];                                               \
  }
  /* Stage the query tile (zeros past the tile and the head dim) and take Q fragments; with
     STAGE_SHIFT in the memory of chunk STAGES - 1's stage (stage 0 in a first tile). */
#if PERSIST
  if (!pref) {
#else
  uint qa[MW][HDP / 16][4];
  {
#endif
    __local uint* qs = smem + (STAGE_SHIFT ? CHUNK_STAGE(STAGES - 1) * STAGE_WORDS : 0);
    STAGE_TILE_ROWS(qs, SK, BQ, KSEG, q, H, h, hd);
    CP_ASYNC_COMMIT();
    CP_ASYNC_WAIT(0);
    barrier(CLK_LOCAL_MEM_FENCE);
    A_FRAGS_FROM(qa, qs, SK, HDP);
#if TMA
    WG_PROXY_FENCE(); /* the reads above before the TMA's writes (another proxy) */
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#if MMA_DQ
  /* The same for dO (A operand of dP = dO V^T), and each row's lse (log2 units) and D. */
  STAGE_TILE_ROWS(smem, SV, BQ, VSEG, d_out, H, h, hdv);
  CP_ASYNC_COMMIT();
  CP_ASYNC_WAIT(0);
  barrier(CLK_LOCAL_MEM_FENCE);
  uint oa[MW][HDVP / 16][4];
  A_FRAGS_FROM(oa, smem, SV, HDVP);
#if TMA
  WG_PROXY_FENCE();
#endif
  barrier(CLK_LOCAL_MEM_FENCE);
  float lse2[MW][2], dd[MW][2];
#pragma unroll
  for (int m = 0; m < MW; ++m)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int row = (b * N + rtok[m][i]) * H + h;
      lse2[m][i] = rvalid[m][i] ? lse[row] * LOG2E : 0.0f;
#if DQ_DELTA
      /* D of row g + 8 i: this thread's dO pairs (fragment words i and i + 2 of each k16 step:
         dims 16 kk + 2 tq and 16 kk + 8 + 2 tq) times O's (opair), summed over the quad in a
         fixed order. */
      float acc = 0.0f;
#pragma unroll
      for (int kk = 0; kk < HDVP / 16; ++kk)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh)
          acc = na_dot_pairs(acc, opair[m][i][2 * kk + hh], oa[m][kk][i + 2 * hh]);
      acc += na_shfl_xor(acc, 1);
      acc += na_shfl_xor(acc, 2);
      dd[m][i] = acc;
      if (rvalid[m][i] && tq == 0) delta[row] = acc;
#else
      dd[m][i] = rvalid[m][i] ? delta[row] : 0.0f;
#endif
    }
#endif

  /* Each thread copies fixed 16-byte segments (slot j: segment lid + j * NT of the chunk) of
     every chunk; it follows its slots' box coordinates by counting (no divisions in the loop). */
#define KSLOTS ((TK * KSEG + NT - 1) / NT)
#define VSLOTS ((TK * VSEG + NT - 1) / NT)
#if RANK == 1
  /* Rank 1: a chunk's keys are consecutive positions of the key box, so each slot's source
     moves by a fixed number of elements per chunk (koff, voff: offsets from k and v, segment
     included), and the chunk metadata is arithmetic (CHUNK_FULL, CHUNK_HIT, KEY_Y): no key
     coordinates in registers or local memory. */
#if TMA
/* One box of TK tokens (from the key box's first, t.kst[0]) per operand and chunk, issued by
   thread 0; the stage's mbarrier for the operand counts its bytes. Tokens past the sequence
   arrive as zeros; those past the key box but inside the sequence are real rows (TMA_WAIT_V). */
#define TMA_CHUNK(ci, bar, dst, map)                                                          \
  do {                                                                                        \
    if (lid == 0) {                                                                           \
      na_mbar_arrive_expect(SMEM_ADDR(bar), TK * 128);                                        \
      NA_TMA_LOAD_4D(SMEM_ADDR(dst), map, 0, hk, t.kst[0] + (ci) * TK, b, SMEM_ADDR(bar));   \
    }                                                                                         \
  } while (0)
#define LOAD_K(ci, st) TMA_CHUNK(ci, &tma_bar[st][0], smem + (st) * STAGE_WORDS, kmap)
#define LOAD_V(ci, st) TMA_CHUNK(ci, &tma_bar[st][1], smem + (st) * STAGE_WORDS + K_WORDS, vmap)
/* Waits for chunk cc's K (TMA_WAIT_K) or V in stage st (the n-th use of a stage's mbarrier
   completes its phase of parity n & 1). V's rows past the key box become zeros: their P is 0,
   but a non-finite value there would still reach O through 0 * inf. */
#define TMA_WAIT_K(cc, st) na_mbar_wait(SMEM_ADDR(&tma_bar[st][0]), ((cc) / STAGES) & 1)
#define TMA_WAIT_V(cc, st)                                                                    \
  do {                                                                                        \
    na_mbar_wait(SMEM_ADDR(&tma_bar[st][1]), ((cc) / STAGES) & 1);                            \
    const int rem_ = kbox - (cc) * TK;                                                        \
    if (rem_ < TK) {                                                                          \
      __local uint* vz_ = smem + (st) * STAGE_WORDS + K_WORDS;                                \
      for (int i_ = rem_ * 32 + lid; i_ < TK * 32; i_ += NT) vz_[i_] = 0u;                    \
      WG_PROXY_FENCE();                                                                       \
    }                                                                                         \
  } while (0)
#else
  int koff[KSLOTS]; /* chunk 0's; chunk ci's are ci * kstep further (vstep for V) */
#pragma unroll
  for (int j = 0; j < KSLOTS; ++j) {
    const int idx = lid + j * NT;
    const int tok = NA_TOKEN(SLOT_ROW(idx, KSEG, TK), 0, 0, t.kst, t.grp, L1, L2);
    koff[j] = ((b * N + tok) * HKV + hk) * hd + SLOT_SEG(idx, KSEG, TK) * 8;
  }
#if HD_EXACT && HDP == HDVP
#define voff koff /* hd == hdv: V's slots are K's (fewer registers) */
#else
  int voff[VSLOTS];
#pragma unroll
  for (int j = 0; j < VSLOTS; ++j) {
    const int idx = lid + j * NT;
    const int tok = NA_TOKEN(SLOT_ROW(idx, VSEG, TK), 0, 0, t.kst, t.grp, L1, L2);
    voff[j] = ((b * N + tok) * HKV + hk) * hdv + SLOT_SEG(idx, VSEG, TK) * 8;
  }
#endif
  /* one chunk further: TK positions, DIL0 tokens each */
  const int kstep = TK * DIL0 * HKV * hd, vstep = TK * DIL0 * HKV * hdv;
/* The copies of chunk ci from src (offsets off of chunk 0, step elements a chunk) into base. The
   offsets stay loop-invariant: a copy is issued for any chunk in any order (the rotated loop
   loads K a chunk ahead of V). */
#define R1_COPY(ci, st, base, off, step, seg_, width, nslots, AT, src)                          \
  const int cofs_ = (ci) * (step), rem_ = kbox - (ci) * TK;                                    \
  _Pragma("unroll") for (int j = 0; j < nslots; ++j) {                                         \
    const int idx = lid + j * NT, kk = SLOT_ROW(idx, seg_, TK), seg = SLOT_SEG(idx, seg_, TK); \
    const int live = kk < rem_;                                                                \
    if (idx < TK * seg_)                                                                       \
      CP_ASYNC_16(SMEM_ADDR(&(base)[AT(kk, seg)]), (src) + (live ? off[j] + cofs_ : 0),      \
                  (live && seg * 8 < (width)) ? 16 : 0);                                       \
  }
#define LOAD_K(ci, st)                                                                        \
  do {                                                                                        \
    R1_COPY(ci, st, smem + (st) * STAGE_WORDS, koff, kstep, KSEG, hd, KSLOTS, K_AT, k)        \
  } while (0)
#define LOAD_V(ci, st)                                                                          \
  do {                                                                                          \
    R1_COPY(ci, st, smem + (st) * STAGE_WORDS + K_WORDS, voff, vstep, VSEG, hdv, VSLOTS, V_AT, v) \
  } while (0)
#endif /* TMA */
/* whether chunk c lies inside every window of the tile, and whether it meets the warp's box */
#define CHUNK_FULL(full, c, st) \
  full = (c) * TK >= ilo[0] && (c) * TK + TK <= min(ihi[0], kbox)
#define CHUNK_HIT(hit, c, st) hit = (c) * TK < bhi[0] && (c) * TK + TK > blo[0]
/* the box coordinates of column `col` of chunk c (past the box: outside every window) */
#define KEY_Y(y0, y1, y2, c, st, col) \
  const int y0 = (c) * TK + (col), y1 = 0, y2 = 0
#elif TMA_BOX
#define TMA_WAIT_K(cc, st) na_mbar_wait(SMEM_ADDR(&tma_bar[st][0]), CHUNK_PARITY(cc))
/* whether the pass's chunk reaches past the key box on some axis */
#if BOX_SHIFT
#define BOX_EDGE() (t.kcnt[0] < KB0 || t.kcnt[1] < KB1 || t.kcnt[2] < KB2)
#else
#define BOX_EDGE()                                                                    \
  (t.kcnt[0] - kcur[0] * KB0 < KB0 || t.kcnt[1] - kcur[1] * KB1 < KB1 ||              \
   t.kcnt[2] - kcur[2] * KB2 < KB2)
#endif
/* As at rank 1, V's rows outside the key box become zeros, here in the chunks that reach past
   it on some axis; 16 bytes a thread and step. BOX_SHIFT: only where the key box is narrower
   than a box, the same rows in every chunk of the tile (this thread's in the bits of its word of
   vzero, local memory: held in a register through the loop they cost flux-2d 3%). */
#define V_ZERO_STEPS ((TK * 8 * (HDP / 64) + NT - 1) / NT)
/* Whether 16-byte slot i of a stage's V lies in a row at or past (r0, r1, r2) on some axis (the
   key box's extents from the chunk's start) */
#define V_SLOT_PAST(i, r0, r1, r2)                                                  \
  ((i) < TK * 8 * (HDP / 64) && (((i) / 8) % TK / (KB1 * KB2) >= (r0) ||            \
                                 ((i) / 8) % TK / KB2 % KB1 >= (r1) || ((i) / 8) % TK % KB2 >= (r2)))
#if BOX_SHIFT
#define TMA_WAIT_V(cc, st)                                                                    \
  do {                                                                                        \
    na_mbar_wait(SMEM_ADDR(&tma_bar[st][1]), CHUNK_PARITY(cc));                               \
    if (BOX_EDGE()) {                                                                         \
      __local uint4* vz_ = (__local uint4*)(smem + (st) * STAGE_WORDS + K_WORDS) + lid;       \
      const uint zb_ = vzero[lid];                                                            \
      _Pragma("unroll") for (int u_ = 0; u_ < V_ZERO_STEPS; ++u_) if ((zb_ >> u_) & 1u)       \
          vz_[u_ * NT] = (uint4)(0u, 0u, 0u, 0u);                                             \
      WG_PROXY_FENCE();                                                                       \
    }                                                                                         \
  } while (0)
#else
#define TMA_WAIT_V(cc, st)                                                                    \
  do {                                                                                        \
    na_mbar_wait(SMEM_ADDR(&tma_bar[st][1]), CHUNK_PARITY(cc));                               \
    const int r0_ = t.kcnt[0] - kcur[0] * KB0, r1_ = t.kcnt[1] - kcur[1] * KB1;               \
    const int r2_ = t.kcnt[2] - kcur[2] * KB2;                                                \
    if (BOX_EDGE()) {                                                                         \
      __local uint4* vz_ = (__local uint4*)(smem + (st) * STAGE_WORDS + K_WORDS);             \
      _Pragma("unroll") for (int u_ = 0; u_ < V_ZERO_STEPS; ++u_) if (V_SLOT_PAST(lid + u_ * NT, \
                                                                             r0_, r1_, r2_)) \
          vz_[lid + u_ * NT] = (uint4)(0u, 0u, 0u, 0u);                                       \
      WG_PROXY_FENCE();                                                                       \
    }                                                                                         \
  } while (0)
#endif
/* whether the pass's chunk lies inside every window of the tile and inside the key box on axis
   a (its extent kb), and on all axes (never a shifted box: it would reach past the key box
   from k kb) */
#define BOX_AXIS_FULL(a, kb) \
  (kcur[a] * (kb) >= ilo[a] && kcur[a] * (kb) + (kb) <= min(ihi[a], t.kcnt[a]))
#define CHUNK_FULL(full, c, st)                                                  \
  do {                                                                           \
    full = 1;                                                                    \
    _Pragma("unroll") for (int a_ = 0; a_ < 3; ++a_) full &=                     \
        BOX_AXIS_FULL(a_, a_ == 0 ? KB0 : a_ == 1 ? KB1 : KB2);                  \
  } while (0)
#define CHUNK_HIT(hit, c, st) hit = 1
#else
  /* A slot's box coordinates from its flat key index: constants on the axes past RANK (the box
     is 1 wide there), which saves registers. */
#define SLOT_COORDS(f, cc)                                                   \
  do {                                                                       \
    (cc)[2] = RANK >= 3 ? (f) % t.kcnt[2] : 0;                               \
    (cc)[1] = RANK >= 2 ? ((f) / t.kcnt[2]) % t.kcnt[1] : 0;                 \
    (cc)[0] = RANK >= 2 ? (f) / (t.kcnt[2] * t.kcnt[1]) : (f);               \
  } while (0)
  int kc[KSLOTS][3];
#if KSEG == VSEG && !ROT
#define vc kc /* same segments per row: the V slots are the K slots (saves registers) */
#define KC_OWN 0
#else
#define KC_OWN 1 /* the K slots advance on their own (ROT: K runs a chunk ahead of V) */
  int vc[VSLOTS][3];
#endif
#pragma unroll
  for (int j = 0; j < KSLOTS; ++j) {
    const int f = SLOT_ROW(lid + j * NT, KSEG, TK);
    SLOT_COORDS(f, kc[j]);
  }
#if KC_OWN
#pragma unroll
  for (int j = 0; j < VSLOTS; ++j) {
    const int f = SLOT_ROW(lid + j * NT, VSEG, TK);
    SLOT_COORDS(f, vc[j]);
  }
#endif
/* Issue the copies of chunk `ci`'s keys (and write their coordinates) into stage `st` (LOAD_K),
   or of its values (LOAD_V), then advance the slot coordinates to the next chunk. */
#define LOAD_K(ci, st)                                                                        \
  do {                                                                                        \
    __local uint* ks_ = smem + (st) * STAGE_WORDS;                                            \
    _Pragma("unroll") for (int j = 0; j < KSLOTS; ++j) {                                      \
      const int idx = lid + j * NT, kk = SLOT_ROW(idx, KSEG, TK), seg = SLOT_SEG(idx, KSEG, TK); \
      const int live = (ci) * TK + kk < kbox && idx < TK * KSEG;                              \
      const int tok = NA_TOKEN(kc[j][0], kc[j][1], kc[j][2], t.kst, t.grp, L1, L2);           \
      if (idx < TK * KSEG)                                                                    \
        CP_ASYNC_16(SMEM_ADDR(&ks_[K_AT(kk, seg)]),                                           \
                    k + ((b * N + (live ? tok : 0)) * HKV + hk) * hd + seg * 8,               \
                    (live && seg * 8 < hd) ? 16 : 0);                                         \
      if (seg == 0 && idx < TK * KSEG) {                                                      \
        key_y[st][0][kk] = live ? kc[j][0] : FAR;                                             \
        key_y[st][1][kk] = kc[j][1];                                                          \
        key_y[st][2][kk] = kc[j][2];                                                          \
        key_in[st][kk] = live && NA_IN_BOX(kc[j][0], kc[j][1], kc[j][2], ilo[0], ihi[0], ilo[1], \
                                           ihi[1], ilo[2], ihi[2]);                           \
      }                                                                                       \
      if (KC_OWN) ADVANCE(kc[j][0], kc[j][1], kc[j][2], TK, t.kcnt[1], t.kcnt[2]);            \
    }                                                                                         \
  } while (0)
#define LOAD_V(ci, st)                                                                        \
  do {                                                                                        \
    __local uint* vs_ = smem + (st) * STAGE_WORDS + K_WORDS;                                  \
    _Pragma("unroll") for (int j = 0; j < VSLOTS; ++j) {                                      \
      const int idx = lid + j * NT, kk = SLOT_ROW(idx, VSEG, TK), seg = SLOT_SEG(idx, VSEG, TK); \
      const int live = (ci) * TK + kk < kbox && idx < TK * VSEG;                              \
      const int tok = NA_TOKEN(vc[j][0], vc[j][1], vc[j][2], t.kst, t.grp, L1, L2);           \
      if (idx < TK * VSEG)                                                                    \
        CP_ASYNC_16(SMEM_ADDR(&vs_[V_AT(kk, seg)]),                                           \
                    v + ((b * N + (live ? tok : 0)) * HKV + hk) * hdv + seg * 8,              \
                    (live && seg * 8 < hdv) ? 16 : 0);                                        \
      ADVANCE(vc[j][0], vc[j][1], vc[j][2], TK, t.kcnt[1], t.kcnt[2]);                        \
    }                                                                                         \
  } while (0)
/* whether chunk c (in stage st) lies inside every window of the tile (a warp vote over the
   chunk's per-key flags), and whether it holds a key of the warp's box */
#define CHUNK_FULL(full, c, st)                                    \
  do {                                                             \
    int inside_ = 1;                                               \
    _Pragma("unroll") for (int u = 0; u < (TK + 31) / 32; ++u) if (lane + 32 * u < TK) \
        inside_ &= key_in[st][lane + 32 * u];                      \
    full = na_warp_all(inside_);                                   \
  } while (0)
#define CHUNK_HIT(hit, c, st)                                                                 \
  do {                                                                                        \
    int h_ = 0;                                                                               \
    _Pragma("unroll") for (int u = 0; u < (TK + 31) / 32; ++u) {                              \
      const int kk = lane + 32 * u;                                                           \
      if (kk < TK)                                                                            \
        h_ |= NA_IN_BOX(key_y[st][0][kk], key_y[st][1][kk], key_y[st][2][kk], blo[0], bhi[0], \
                        blo[1], bhi[1], blo[2], bhi[2]);                                      \
    }                                                                                         \
    hit = na_warp_any(h_);                                                                    \
  } while (0)
#define KEY_Y(y0, y1, y2, c, st, col)                   \
  const int y0 = key_y[st][0][col];                     \
  const int y1 = RANK >= 2 ? key_y[st][1][col] : 0;     \
  const int y2 = RANK >= 3 ? key_y[st][2][col] : 0
#endif /* RANK == 1 */
#define LOAD_CHUNK(ci, st) \
  do {                     \
    LOAD_K(ci, st);        \
    LOAD_V(ci, st);        \
  } while (0)
#if TMA
#define LOADS_COMMIT() ((void)0) /* the mbarriers track the boxes */
#else
#define LOADS_COMMIT() CP_ASYNC_COMMIT()
#endif

#if MMA_DQ
#define NOB (HDP / 8) /* n8 blocks of the accumulator: dQ's head dims */
#else
#define NOB NDB /* n8 blocks of the accumulator: O's value dims */
#endif
  float o[MW][NOB][4];
#pragma unroll
  for (int m = 0; m < MW; ++m)
#pragma unroll
    for (int n = 0; n < NOB; ++n) o[m][n][0] = o[m][n][1] = o[m][n][2] = o[m][n][3] = 0.0f;
  float m_i[MW][2], l_i[MW][2];
#pragma unroll
  for (int m = 0; m < MW; ++m) {
    m_i[m][0] = m_i[m][1] = -INFINITY;
    l_i[m][0] = l_i[m][1] = 0.0f;
  }
  const float sscale = scale * LOG2E;
  /* ldmatrix lane addressing. K fragments (non-transposed): lane l addresses key row
     16 jj + 8 (l >> 4) + (l & 7) at head dims 16 kk + 8 ((l >> 3) & 1), giving b0, b1 of key
     block 2 jj and b0, b1 of key block 2 jj + 1. Transposed (V, and K for dQ): key row
     16 kk + 8 ((l >> 3) & 1) + (l & 7), columns 8 (n + (l >> 4)).. */
  const int krow = (lane >> 4) * 8 + (lane & 7), kcol = ((lane >> 3) & 1) * 4;
  const int trow = ((lane >> 3) & 1) * 8 + (lane & 7), tcol = (lane >> 4) * 4;

/* Masks S (rows g, g + 8 of each block; chunk c's keys in stage st) to each row's window: the
   entries outside become `val` (-inf for scores, 0 for P). */
#if TMA_BOX
/* Column j * 8 + 2 tq + e of a chunk box is key (j / (NJF * KBM), (j / NJF) % KBM, (j % NJF) * 8
   + 2 tq + e) of the box (axes 0, 1, 2 at rank 3; 0 and 1 at rank 2): a row's test factors into
   one per axis and value (ps, pm, pf), each a compare of unsigned offsets, then one AND a
   column. Keys past the key box are outside every window. BOX_WIN: a row's window on an axis as
   the offset in the pass's box of its first key and its count, leaving out the keys that a
   shifted box shares with the box before it (BOX_SHIFT). */
#if BOX_SHIFT
#define BOX_WIN(lo, hi, a, kb, bo, bn)                                                        \
  const int bo = max((lo), kcur[a] * (kb)) - BOX_START(kcur[a], kb, t.kcnt[a]);               \
  const uint bn = (uint)max((hi) - max((lo), kcur[a] * (kb)), 0)
#else
#define BOX_WIN(lo, hi, a, kb, bo, bn)   \
  const int bo = (lo) - kcur[a] * (kb); \
  const uint bn = (hi) - (lo)
#endif
#define MASK_BOX_ALL(s, val)                                                                  \
  _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int i = 0; i < 2;     \
                                                                          ++i) {              \
    int pf_[NJF][2], pm_[KBM], ps_[KB0];                                                      \
    BOX_WIN(wlo[m][i][BOX_F], whi[m][i][BOX_F], BOX_F, KBF, bf_, nf_);                        \
    _Pragma("unroll") for (int u = 0; u < NJF; ++u) _Pragma("unroll") for (int e = 0; e < 2;  \
                                                                           ++e)               \
      pf_[u][e] = (uint)(u * 8 + 2 * tq + e - bf_) < nf_;                                     \
    BOX_WIN(wlo[m][i][1], whi[m][i][1], 1, KB1, bm1_, nm1_);                                  \
    const int bm_ = RANK == 3 ? bm1_ : 0;                                                     \
    const uint nm_ = RANK == 3 ? nm1_ : 1u;                                                   \
    _Pragma("unroll") for (int u = 0; u < KBM; ++u) pm_[u] = (uint)(u - bm_) < nm_;           \
    BOX_WIN(wlo[m][i][0], whi[m][i][0], 0, KB0, bs_, ns_);                                    \
    _Pragma("unroll") for (int u = 0; u < KB0; ++u) ps_[u] = (uint)(u - bs_) < ns_;           \
    _Pragma("unroll") for (int j = 0; j < NKB; ++j) {                                         \
      const int pj_ = pm_[(j / NJF) % KBM] & ps_[j / (NJF * KBM)];                            \
      _Pragma("unroll") for (int e = 0; e < 2; ++e) if (!(pj_ & pf_[j % NJF][e]))             \
          s[m][j][2 * i + e] = (val);                                                         \
    }                                                                                         \
  }
/* The same where the chunk lies inside every window of the tile on the slower axes (0, and 1 at
   rank 3): only the fastest axis' test, the same for every block of NJF columns. */
#define MASK_BOX_FAST(s, val)                                                                 \
  _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int i = 0; i < 2;     \
                                                                          ++i) {              \
    int pf_[NJF][2];                                                                          \
    BOX_WIN(wlo[m][i][BOX_F], whi[m][i][BOX_F], BOX_F, KBF, bf_, nf_);                        \
    _Pragma("unroll") for (int u = 0; u < NJF; ++u) _Pragma("unroll") for (int e = 0; e < 2;  \
                                                                           ++e)               \
      pf_[u][e] = (uint)(u * 8 + 2 * tq + e - bf_) < nf_;                                     \
    _Pragma("unroll") for (int j = 0; j < NKB; ++j) _Pragma("unroll") for (int e = 0; e < 2;  \
                                                                           ++e)               \
      if (!pf_[j % NJF][e]) s[m][j][2 * i + e] = (val);                                       \
  }
#if MASK_SPLIT
/* Whether the pass's chunk lies inside every window of the tile (and the key box) on axis 0 and,
   at rank 3, axis 1 (the same in the whole work-group). */
#define SLOW_FULL() (BOX_AXIS_FULL(0, KB0) && (RANK < 3 || BOX_AXIS_FULL(1, KB1)))
#define MASK_S(s, c, st, val) \
  do {                        \
    if (SLOW_FULL()) {        \
      MASK_BOX_FAST(s, val);  \
    } else {                  \
      MASK_BOX_ALL(s, val);   \
    }                         \
  } while (0)
#else
#define MASK_S(s, c, st, val) MASK_BOX_ALL(s, val)
#endif
#else
#define MASK_S(s, c, st, val)                                                                 \
  _Pragma("unroll") for (int j = 0; j < NKB; ++j) _Pragma("unroll") for (int e = 0; e < 2;    \
                                                                         ++e) {               \
    const int col = j * 8 + 2 * tq + e;                                                       \
    KEY_Y(y0, y1, y2, c, st, col);                                                            \
    _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int i = 0; i < 2;   \
                                                                            ++i) {            \
      if (!NA_IN_BOX(y0, y1, y2, wlo[m][i][0], whi[m][i][0], wlo[m][i][1], whi[m][i][1],      \
                     wlo[m][i][2], whi[m][i][2]))                                             \
        s[m][j][2 * i + e] = (val);                                                           \
    }                                                                                         \
  }
#endif

/* The A fragments of P (dQ kernel: dS) for the WG tiles' second product, from the f32
   accumulators of S: two adjacent n8 blocks make one k16 step. */
#define PACK_P(pa, s)                                                                         \
  _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int kk = 0; kk < TK / 16; \
                                                                          ++kk) {             \
    pa[m][kk][0] = na_pack2(s[m][2 * kk][0], s[m][2 * kk][1]);                                \
    pa[m][kk][1] = na_pack2(s[m][2 * kk][2], s[m][2 * kk][3]);                                \
    pa[m][kk][2] = na_pack2(s[m][2 * kk + 1][0], s[m][2 * kk + 1][1]);                        \
    pa[m][kk][3] = na_pack2(s[m][2 * kk + 1][2], s[m][2 * kk + 1][3]);                        \
  }

#if WG
/* The WG tiles' products, issued (the caller commits). WG_ISSUE_KMAJOR: acc (TK columns) += A
   (fragments a[m][HD / 16][4]) times the chunk at `base` stored K-major (its rows' HD dims
   along K, `seg` 16-byte segments a row): S = Q K^T and dP = dO V^T. WG_ISSUE_MN: acc (N
   columns) += A (pa) times the chunk at `base` stored MN-major (keys along K, `seg` segments a
   row): O += P V and dQ += dS K. */
#define WG_ISSUE_KMAJOR(acc, a, base, seg, hd)                                                \
  do {                                                                                        \
    const ulong kd_ = CHUNK_KMAJOR_DESC(base, seg);                                           \
    _Pragma("unroll") for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_FENCE_N, TK)(acc[m]);        \
    _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int kk = 0;         \
                                                                          kk < (hd) / 16; ++kk) \
        WG_KMAJOR_PIECES(acc[m], a[m][kk][0], a[m][kk][1], a[m][kk][2], a[m][kk][3], kd_, kk,   \
                         seg);                                                                \
  } while (0)
#define WG_ISSUE_MN(acc, n, base, seg)                                                        \
  do {                                                                                        \
    const ulong vd_ = CHUNK_MN_DESC(base, seg);                                               \
    _Pragma("unroll") for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_FENCE_N, n)(acc[m]);         \
    _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int kk = 0;         \
                                                                          kk < TK / 16; ++kk) \
        WG_CAT(WGMMA_RA_N, n)(acc[m], pa[m][kk][0], pa[m][kk][1], pa[m][kk][2], pa[m][kk][3],  \
                              CHUNK_MN_AT(vd_, kk, seg), 1);                                  \
  } while (0)
#endif

#if !MMA_DQ
/* The online softmax of a chunk's scores s for rows g (i = 0) and g + 8 (i = 1) of each block:
   s becomes P (relative to the new row maxima m_i, log2 units), l_i takes this thread's columns
   (the quad sums at the end), alpha the factor for O, and `settled` is 1 when alpha is 1 in the
   whole warp (then O needs no rescale). SPOS (scale > 0): s holds raw scores, scaled inside the
   exponentials (one FFMA instead of a multiply and a subtraction). */
#if SPOS
#define SCALED_MAX(x) ((x) * sscale)
#define EXP_ARG(x, mu) fma((x), sscale, -(mu))
#define SCALE_S(s)
#else
#define SCALED_MAX(x) (x)
#define EXP_ARG(x, mu) ((x) - (mu))
/* scores into log2 units (SPOS folds this into the exponentials) */
#define SCALE_S(s)                                                                            \
  _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int j = 0; j < NKB;   \
                                                                          ++j)                \
      _Pragma("unroll") for (int e = 0; e < 4; ++e) s[m][j][e] *= sscale;
#endif
#define ONLINE_SOFTMAX(s, alpha, settled)                                                     \
  do {                                                                                        \
    settled = 1;                                                                              \
    _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int i = 0; i < 2;   \
                                                                            ++i) {            \
      float mx = -INFINITY;                                                                   \
      _Pragma("unroll") for (int j = 0; j < NKB; ++j) mx =                                    \
          fmax(mx, fmax(s[m][j][2 * i], s[m][j][2 * i + 1]));                                 \
      mx = fmax(mx, na_shfl_xor(mx, 1));                                                      \
      mx = fmax(mx, na_shfl_xor(mx, 2));                                                      \
      mx = fmax(m_i[m][i], SCALED_MAX(mx));                                                   \
      if (LAZY_RESCALE > 0 && mx - m_i[m][i] <= (float)LAZY_RESCALE) mx = m_i[m][i];          \
      const float m_use = mx == -INFINITY ? 0.0f : mx;                                        \
      alpha[m][i] = na_exp2(m_i[m][i] - m_use);                                               \
      float sum = 0.0f;                                                                       \
      _Pragma("unroll") for (int j = 0; j < NKB; ++j) {                                       \
        s[m][j][2 * i] = na_exp2(EXP_ARG(s[m][j][2 * i], m_use));                             \
        s[m][j][2 * i + 1] = na_exp2(EXP_ARG(s[m][j][2 * i + 1], m_use));                     \
        sum += s[m][j][2 * i] + s[m][j][2 * i + 1];                                           \
      }                                                                                       \
      l_i[m][i] = l_i[m][i] * alpha[m][i] + sum;                                              \
      m_i[m][i] = mx;                                                                         \
      settled &= alpha[m][i] == 1.0f;                                                         \
    }                                                                                         \
    settled = na_warp_all(settled);                                                           \
  } while (0)
/* O *= alpha, row by row. */
#define RESCALE_O(alpha)                                                                      \
  _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int n = 0; n < NDB;   \
                                                                          ++n) {              \
    o[m][n][0] *= alpha[m][0];                                                                \
    o[m][n][1] *= alpha[m][0];                                                                \
    o[m][n][2] *= alpha[m][1];                                                                \
    o[m][n][3] *= alpha[m][1];                                                                \
  }
#endif

#if TMA_BOX && BOX_SHIFT
  /* V's rows past the key box, the same in every chunk of the tile (only an axis narrower than a
     box reaches past it, from 0): this thread's 16-byte slots of a stage's V, a bit each, in its
     word of vzero (read only by itself). */
  if (BOX_EDGE()) {
    uint bits = 0u;
#pragma unroll
    for (int u = 0; u < V_ZERO_STEPS; ++u)
      if (V_SLOT_PAST(lid + u * NT, t.kcnt[0], t.kcnt[1], t.kcnt[2])) bits |= 1u << u;
    vzero[lid] = bits;
  }
#if V_ZERO_STEPS > 32
#error "V_ZERO_STEPS: at most 32 (the bits of vzero)"
#endif
#endif

#if !ROT
  /* Chunks 0 .. AHEAD - 1 in flight before the loop; chunk c + AHEAD issued in pass c. */
#define AHEAD (STAGES - 1 - DQ_DEFER)
#if !STAGE_SHIFT /* (else issued before the query tile was staged) */
#pragma unroll
  for (int c = 0; c < AHEAD; ++c) {
    if (c < nchunks && !PREF) LOAD_CHUNK(c, CHUNK_STAGE(c));
    LOADS_COMMIT();
  }
#endif

  for (int c = 0; c < nchunks; ++c) {
    const int st = CHUNK_STAGE(c);
#if STAGES >= 2
    /* One barrier per chunk: wait for chunk c, and the barrier both publishes it and tells
       that every warp is done with the chunk whose buffer then takes chunk c + AHEAD: chunk
       c - 1, or with DQ_DEFER chunk c - 2 (its dQ product was retired by pass c - 1's wait). */
#if TMA
    TMA_WAIT_K(c, st);
#if !V_LATE
    TMA_WAIT_V(c, st);
#endif
#else
    CP_ASYNC_WAIT(AHEAD - 1);
#if WG
    WG_PROXY_FENCE();
#endif
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
#if TMA_BOX && AHEAD == 1 && !NEXT_BY_DIV
#define STD_LOADS()                                                           \
  do {                                                                        \
    if (c + 1 < nchunks) LOAD_NEXT_BOX(CHUNK_STAGE(c + 1));                   \
  } while (0)
#else
#define STD_LOADS()                                                           \
  do {                                                                        \
    if (c + AHEAD < nchunks) LOAD_CHUNK(c + AHEAD, CHUNK_STAGE(c + AHEAD));   \
    LOADS_COMMIT();                                                           \
  } while (0)
#endif
#if !LATE_LOADS
    STD_LOADS();
#endif
#else
    LOAD_CHUNK(c, 0);
    CP_ASYNC_COMMIT();
    CP_ASYNC_WAIT(0);
#if WG
    WG_PROXY_FENCE();
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
    __local const uint* ks = smem + st * STAGE_WORDS;
    __local const uint* vs = ks + K_WORDS;

    /* Whether the chunk is inside every window of the tile (no mask), and whether it holds a
       key of this warp's windows at all (warp votes over the chunk's per-key flags). */
    int full;
    CHUNK_FULL(full, c, st);
    int active = full;
    if (!WSKIP) active = 1;
    if (!active) CHUNK_HIT(active, c, st);
    if (active) {
      /* S = Q K^T for this warp's rows x TK keys. */
      float s[MW][NKB][4];
#pragma unroll
      for (int m = 0; m < MW; ++m)
#pragma unroll
        for (int j = 0; j < NKB; ++j) s[m][j][0] = s[m][j][1] = s[m][j][2] = s[m][j][3] = 0.0f;
#if WG
      {
        /* K as B (K-major: head dims along K); a k16 step is two cores further (256 bytes).
           The keys go in products of WG_SN; the next WG_SN keys start WG_SN / 8 row groups
           (of KSEG cores each) further. */
        WG_ISSUE_KMAJOR(s, qa, ks, KSEG, HDP);
        WG_COMMIT();
#if !MMA_DQ /* the dQ kernel waits after issuing dP too (below) */
#if LATE_LOADS
        STD_LOADS(); /* while S runs on the tensor cores */
#endif
#pragma unroll
        for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, TK)(s[m]);
#endif
      }
#else
#pragma unroll
      for (int kk = 0; kk < HDP / 16; ++kk)
#pragma unroll
        for (int jj = 0; jj < NKB / 2; ++jj) {
          uint b0, b1, b2, b3;
          LDMATRIX_X4(b0, b1, b2, b3, SMEM_ADDR(&ks[(jj * 16 + krow) * SK + kk * 8 + kcol]));
#pragma unroll
          for (int m = 0; m < MW; ++m) {
            MMA_16816(s[m][2 * jj], qa[m][kk][0], qa[m][kk][1], qa[m][kk][2], qa[m][kk][3], b0,
                      b1);
            MMA_16816(s[m][2 * jj + 1], qa[m][kk][0], qa[m][kk][1], qa[m][kk][2], qa[m][kk][3],
                      b2, b3);
          }
        }
#endif

#if MMA_DQ
      /* dP = dO V^T: V rows as B fragments, addressed like K's. */
      float dp[MW][NKB][4];
#pragma unroll
      for (int m = 0; m < MW; ++m)
#pragma unroll
        for (int j = 0; j < NKB; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
#if WG
            NA_ZERO_OWN(dp[m][j][e]); /* else ptxas waits for S's wgmma before dP's */
#else
            dp[m][j][e] = 0.0f;
#endif
          }
#if WG
      {
        /* V as B (K-major: value dims along K), in pieces of WG_SN keys, as K in S. */
        WG_ISSUE_KMAJOR(dp, oa, vs, VSEG, HDVP);
        WG_COMMIT();
#if LATE_LOADS
        STD_LOADS();
#endif
        /* S is ready; dP runs on while S is scaled, masked and exponentiated (below). */
#pragma unroll
        for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT1_N, TK)(s[m]);
      }
#else
#pragma unroll
      for (int kk = 0; kk < HDVP / 16; ++kk)
#pragma unroll
        for (int jj = 0; jj < NKB / 2; ++jj) {
          uint b0, b1, b2, b3;
          LDMATRIX_X4(b0, b1, b2, b3, SMEM_ADDR(&vs[(jj * 16 + krow) * SV + kk * 8 + kcol]));
#pragma unroll
          for (int m = 0; m < MW; ++m) {
            MMA_16816(dp[m][2 * jj], oa[m][kk][0], oa[m][kk][1], oa[m][kk][2], oa[m][kk][3], b0,
                      b1);
            MMA_16816(dp[m][2 * jj + 1], oa[m][kk][0], oa[m][kk][1], oa[m][kk][2],
                      oa[m][kk][3], b2, b3);
          }
        }
#endif /* WG */
#endif /* MMA_DQ */

#if MMA_DQ
      /* dS = P (dP - D) with P = exp2(scale S - lse), the scale inside the exponential's FFMA,
         and P = 0 where masked (after the exponential: any sign of scale), then dQ += dS K: dS
         from the accumulators as A fragments, K by ldmatrix.trans (B[k = key][n = head dim]). */
#if WG
#pragma unroll
      for (int m = 0; m < MW; ++m)
#pragma unroll
        for (int j = 0; j < NKB; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            s[m][j][e] = na_exp2(fma(s[m][j][e], sscale, -lse2[m][e >> 1]));
      if (!full) MASK_S(s, c, st, 0.0f);
#pragma unroll
      for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, TK)(dp[m]);
#pragma unroll
      for (int m = 0; m < MW; ++m)
#pragma unroll
        for (int j = 0; j < NKB; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[m][j][e] *= dp[m][j][e] - dd[m][e >> 1];
#else
#pragma unroll
      for (int m = 0; m < MW; ++m)
#pragma unroll
        for (int j = 0; j < NKB; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int i = e >> 1;
            s[m][j][e] = na_exp2(fma(s[m][j][e], sscale, -lse2[m][i])) * (dp[m][j][e] - dd[m][i]);
          }
      if (!full) MASK_S(s, c, st, 0.0f);
#endif
#define PV_SRC ks
#define PV_STRIDE SK
#define PV_SEG KSEG
#define PV_N HDP
#else
      /* Scale into log2 units; mask each row to its window unless the chunk is inside all. */
      SCALE_S(s);
      if (!full) MASK_S(s, c, st, -INFINITY);
      float alpha[MW][2];
      int settled;
      ONLINE_SOFTMAX(s, alpha, settled);
      if (!settled) RESCALE_O(alpha);
#if V_LATE
      /* V waited for only now; a chunk reaching past the key box has its rows zeroed by every
         thread (TMA_WAIT_V), published by a barrier (a condition of the whole work-group). */
      TMA_WAIT_V(c, st);
      if (BOX_EDGE()) barrier(CLK_LOCAL_MEM_FENCE);
#endif
#define PV_SRC vs
#define PV_STRIDE SV
#define PV_SEG VSEG
#define PV_N HDVP
#endif

      /* O += P V (forward) or dQ += dS K (MMA_DQ): P / dS from the S accumulators as A
         fragments, V / K rows by ldmatrix.trans, each fragment used by the MW row blocks. */
#if WG
      {
        /* V (dQ: K) as B stored MN-major (dims contiguous, keys along K: tb = 1); a k16 step
           is two groups of 8 keys further. */
        uint pa[MW][TK / 16][4];
        PACK_P(pa, s);
        WG_ISSUE_MN(o, PV_N, PV_SRC, PV_SEG);
        WG_COMMIT();
#if !DQ_DEFER
#pragma unroll
        for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, PV_N)(o[m]);
#endif
      }
#else
#pragma unroll
      for (int kk = 0; kk < TK / 16; ++kk) {
        uint pa[MW][4];
#pragma unroll
        for (int m = 0; m < MW; ++m) {
          pa[m][0] = na_pack2(s[m][2 * kk][0], s[m][2 * kk][1]);
          pa[m][1] = na_pack2(s[m][2 * kk][2], s[m][2 * kk][3]);
          pa[m][2] = na_pack2(s[m][2 * kk + 1][0], s[m][2 * kk + 1][1]);
          pa[m][3] = na_pack2(s[m][2 * kk + 1][2], s[m][2 * kk + 1][3]);
        }
#pragma unroll
        for (int n = 0; n < NOB; n += 2) {
          uint b0, b1, b2, b3;
          LDMATRIX_X4_T(b0, b1, b2, b3,
                        SMEM_ADDR(&PV_SRC[(kk * 16 + trow) * PV_STRIDE + n * 4 + tcol]));
#pragma unroll
          for (int m = 0; m < MW; ++m) {
            MMA_16816(o[m][n], pa[m][0], pa[m][1], pa[m][2], pa[m][3], b0, b1);
            MMA_16816(o[m][n + 1], pa[m][0], pa[m][1], pa[m][2], pa[m][3], b2, b3);
          }
        }
      }
#endif
#undef PV_SRC
#undef PV_STRIDE
#undef PV_SEG
#undef PV_N
    }
#if STAGES == 1
    barrier(CLK_LOCAL_MEM_FENCE); /* the single buffer is free for the next chunk */
#endif
    BOX_NEXT();
  }
#if PERSIST
  /* After the tile's last pass (qa is free): the next tile, if there is one and it is live,
     gets its chunk 0 issued into the stage that the last chunk left free and its Q fragments
     loaded from global memory into qa (zeros for rows past it), to land while this tile's
     epilogue runs; thread 0 draws tile tj + 2. Inside the chunk loop (in the last pass) this
     cost registers and instructions on every pass (the stand-in's common path went 403 -> 877
     instructions); issuing only chunk 0 there from thread 0's precomputed coordinates cost the
     driver's build spills (H100, session 23: flux-2d 0.0862 -> 0.0961 ms). */
  const int nwg = tickets[(tj + 1) % 3]; /* the next tile */
  int ticket = 0;                        /* thread 0: tile tj + 2 */
  if (lid == 0) ticket = atomic_add(tile_counter, 1) + G;
  na_tile tn;
  TILE_FROM_SLOT(tn, tile_info[(tj + 1) & 1]);
  const int npref = tn.live; /* the next tile's pref */
  if (npref) {
    const int nh = tile_info[(tj + 1) & 1][19], nb = tile_info[(tj + 1) & 1][20];
    if (lid == 0) {
      const int ns = CHUNK_STAGE(nchunks);
      TMA_BOX_OF(tn, nb, nh / (H / HKV), 0, 0, 0, &tma_bar[ns][0], smem + ns * STAGE_WORDS, kmap);
      TMA_BOX_OF(tn, nb, nh / (H / HKV), 0, 0, 0, &tma_bar[ns][1],
                 smem + ns * STAGE_WORDS + K_WORDS, vmap);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      ROW_X(warp * WR + g + 8 * i, x0, x1, x2);
      const int in_tile = x0 < tn.valid[0] && x1 < tn.valid[1] && x2 < tn.valid[2];
      const int tok = in_tile ? NA_TOKEN(x0, x1, x2, tn.first, tn.grp, L1, L2) : 0;
      __global const uint* qrow = (__global const uint*)(q + ((nb * N + tok) * H + nh) * HDP) + tq;
#pragma unroll
      for (int kk = 0; kk < HDP / 16; ++kk) {
        qa[0][kk][i] = in_tile ? qrow[kk * 8] : 0u;
        qa[0][kk][i + 2] = in_tile ? qrow[kk * 8 + 4] : 0u;
      }
    }
  }
#endif
#if DQ_DEFER /* the last chunk's dQ product */
#pragma unroll
  for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, HDP)(o[m]);
#endif
#undef AHEAD

#else /* ROT */
  /* The rotated loop (FlashAttention-3's overlap within a warpgroup): pass c issues S of chunk c
     and then P V of chunk c - 1, waits for S only, and runs chunk c's softmax while P V runs on
     the tensor cores; then it waits for P V, rescales O and packs P of chunk c. K runs a chunk
     ahead of V: pass c loads K of chunk c + 1 and V of chunk c, so each stage's K and V belong
     to the same chunk but arrive a pass apart, and one barrier a pass both publishes the copies
     of pass c - 1 and frees what pass c - 1 read (K of c - 1, V of c - 2).
     ROT=2 (rank 1, two warpgroups): the second warpgroup runs half a pass behind, so that the
     two take turns on the tensor cores and on the exponentials (FlashAttention-3's ping-pong):
     its pass c runs chunk c - 1's softmax first, then issues S of chunk c and P V of chunk
     c - 1 and waits for both before the next barrier. */
  uint pa[MW][TK / 16][4];
  /* P V of the previous chunk (V in stage `vst`, MN-major as in the unrotated loop). The empty
     asm keeps P's packing above the fence. Every wait below is unconditional: where ptxas cannot
     tell that a wait happened on every path it serializes all wgmma (C7514). */
#define ROT_PV(vst)                                                                           \
  do {                                                                                        \
    _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int kk = 0;         \
                                                                          kk < TK / 16; ++kk) \
        NA_ASM("" : "+r"(pa[m][kk][0]), "+r"(pa[m][kk][1]), "+r"(pa[m][kk][2]),               \
               "+r"(pa[m][kk][3]));                                                           \
    WG_ISSUE_MN(o, HDVP, smem + (vst) * STAGE_WORDS + K_WORDS, VSEG);                        \
  } while (0)
/* S = Q K^T of the chunk in stage `kst_`, issued (not committed). */
#define ROT_S(kst_)                                                                           \
  do {                                                                                        \
    _Pragma("unroll") for (int m = 0; m < MW; ++m) _Pragma("unroll") for (int j = 0; j < NKB; \
                                                                          ++j) s[m][j][0] =   \
        s[m][j][1] = s[m][j][2] = s[m][j][3] = 0.0f;                                          \
    WG_ISSUE_KMAJOR(s, qa, smem + (kst_) * STAGE_WORDS, KSEG, HDP);                          \
  } while (0)
/* Chunk cc's softmax on its scores s (stage sst): scaled, masked, the online softmax (alpha
   and settled for O's rescale, whose P V must be complete first). */
#define ROT_SOFTMAX(cc, sst)                   \
  do {                                         \
    int full_;                                 \
    CHUNK_FULL(full_, cc, sst);                \
    SCALE_S(s);                                \
    if (!full_) MASK_S(s, cc, sst, -INFINITY); \
    ONLINE_SOFTMAX(s, alpha, settled);         \
  } while (0)
/* The barrier of pass c (chunk c's K and chunk c - 1's V are in), then the copies of K of chunk
   c + 1 and V of chunk c (into the stages that pass c - 1 finished with). Inside the loop the
   copies go out after the pass's wgmma are issued, so the tensor cores start first: H100,
   long-1d-causal 0.917-0.923 -> 0.890 ms (f16; bf16 0.916-0.919 -> 0.890; session 13). Of the
   placements tried then (alternating rounds, f16 ms): the second warpgroup's copies between its
   S and its P V 0.858-0.863, after both 0.866-0.875, right after the barrier 0.888; the first
   warpgroup's between its S and P V 0.864-0.868 against after both 0.857-0.862. Passes
   are peeled so that every wgmma group is non-empty and every wait unconditional (an empty group
   or a conditional wait makes ptxas insert warpgroup arrives, and on the ROT=2 path serialize
   all wgmma: C7519, C7520). */
/* TMA_BOX: the chunk macros read the box coordinates `kcur`. Pass c keeps chunk c's in kcur and
   chunk c - 1's in kprev (ROT_ADVANCE at the end of each pass); code about chunk c - 1 runs
   between PREV_CHUNK_BEGIN and PREV_CHUNK_END, a block whose kcur is a copy of kprev (OpenCL C
   1.2 has no variadic macros to wrap it in). */
#if TMA_BOX
  int kprev[3] = {0, 0, 0};
#define ROT_ADVANCE()   \
  do {                  \
    kprev[0] = kcur[0]; \
    kprev[1] = kcur[1]; \
    kprev[2] = kcur[2]; \
    BOX_NEXT();         \
  } while (0)
#define PREV_CHUNK_BEGIN { const int kcur[3] = {kprev[0], kprev[1], kprev[2]};
#define PREV_CHUNK_END }
#else
#define ROT_ADVANCE() ((void)0)
#define PREV_CHUNK_BEGIN {
#define PREV_CHUNK_END }
#endif
#if TMA /* pass c waits for chunk c's K and chunk c - 1's V */
#define ROT_PASS_BARRIER(c)                                                      \
  do {                                                                           \
    if ((c) < nchunks) TMA_WAIT_K(c, (c) & 1);                                   \
    if ((c) >= 1 && (c) <= nchunks) {                                            \
      PREV_CHUNK_BEGIN TMA_WAIT_V((c) - 1, ((c) - 1) & 1);                       \
      PREV_CHUNK_END                                                             \
    }                                                                            \
    barrier(CLK_LOCAL_MEM_FENCE);                                                \
  } while (0)
#else
#define ROT_PASS_BARRIER(c)       \
  do {                            \
    CP_ASYNC_WAIT(0);             \
    WG_PROXY_FENCE();             \
    barrier(CLK_LOCAL_MEM_FENCE); \
  } while (0)
#endif
#define ROT_PASS_LOADS(c)                                  \
  do {                                                     \
    if ((c) + 1 < nchunks) LOAD_K((c) + 1, ((c) + 1) & 1); \
    if ((c) < nchunks) LOAD_V(c, (c) & 1);                 \
    LOADS_COMMIT();                                        \
  } while (0)
#define ROT_PASS_START(c) \
  do {                    \
    ROT_PASS_BARRIER(c);  \
    ROT_PASS_LOADS(c);    \
  } while (0)
  if (nchunks > 0) LOAD_K(0, 0);
  LOADS_COMMIT();
  float s[MW][NKB][4];
  float alpha[MW][2];
  int settled;
#if ROT == 2
  if (warp >= 4) {
    if (nchunks > 0) { /* pass 0: S of chunk 0 */
      ROT_PASS_START(0);
      ROT_S(0);
      WG_COMMIT();
#pragma unroll
      for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, TK)(s[m]);
      ROT_ADVANCE();
    }
    for (int c = 1; c < nchunks; ++c) {
      const int st = c & 1;
      ROT_PASS_BARRIER(c);
      PREV_CHUNK_BEGIN ROT_SOFTMAX(c - 1, st ^ 1); /* chunk c - 1, whose P V runs below */
      PREV_CHUNK_END
      if (!settled) RESCALE_O(alpha);
      PACK_P(pa, s);
      ROT_S(st);
      WG_COMMIT();
      ROT_PASS_LOADS(c);
      ROT_PV(st ^ 1);
      WG_COMMIT();
#pragma unroll
      for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, TK)(s[m]);
#pragma unroll
      for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, HDVP)(o[m]);
      ROT_ADVANCE();
    }
    ROT_PASS_START(nchunks);
    if (nchunks > 0) { /* the last chunk's softmax and P V */
      PREV_CHUNK_BEGIN ROT_SOFTMAX(nchunks - 1, (nchunks - 1) & 1);
      PREV_CHUNK_END
      if (!settled) RESCALE_O(alpha);
      PACK_P(pa, s);
      ROT_PV((nchunks - 1) & 1);
      WG_COMMIT();
#pragma unroll
      for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, HDVP)(o[m]);
    }
  } else
#endif
  {
    if (nchunks > 0) { /* pass 0: S and softmax of chunk 0 (O is zero: no P V to wait for) */
      ROT_PASS_START(0);
      ROT_S(0);
      WG_COMMIT();
#pragma unroll
      for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, TK)(s[m]);
      ROT_SOFTMAX(0, 0);
      PACK_P(pa, s);
      ROT_ADVANCE();
    }
    for (int c = 1; c < nchunks; ++c) {
      const int st = c & 1;
      ROT_PASS_BARRIER(c);
      ROT_S(st);
      WG_COMMIT();
      ROT_PV(st ^ 1);
      WG_COMMIT();
      ROT_PASS_LOADS(c);
#pragma unroll
      for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT1_N, TK)(s[m]);
      ROT_SOFTMAX(c, st);
#pragma unroll
      for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, HDVP)(o[m]);
      if (!settled) RESCALE_O(alpha);
      PACK_P(pa, s);
      ROT_ADVANCE();
    }
    /* P V of the last chunk, whose V the last pass loaded. */
    ROT_PASS_START(nchunks);
    if (nchunks > 0) {
      ROT_PV((nchunks - 1) & 1);
      WG_COMMIT();
#pragma unroll
      for (int m = 0; m < MW; ++m) WG_CAT(WGMMA_WAIT_N, HDVP)(o[m]);
    }
  }
#endif /* ROT */

#if MMA_DQ
  /* dQ = scale * sum dS K (dS is with respect to the scaled scores), as f16/bf16 pairs. */
#pragma unroll
  for (int m = 0; m < MW; ++m)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      if (!rvalid[m][i]) continue;
      __global uint* qrow = (__global uint*)(d_q + ((b * N + rtok[m][i]) * H + h) * hd);
#pragma unroll
      for (int n = 0; n < NOB; ++n) {
        const int d = n * 8 + 2 * tq;
        if (d < hd) qrow[d / 2] = na_pack2(o[m][n][2 * i] * scale, o[m][n][2 * i + 1] * scale);
      }
    }
  (void)m_i;
  (void)l_i;
}
#else
  /* Quad sums of l, normalize, write out (pairs of f16/bf16) and lse. */
#pragma unroll
  for (int m = 0; m < MW; ++m)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      l_i[m][i] += na_shfl_xor(l_i[m][i], 1);
      l_i[m][i] += na_shfl_xor(l_i[m][i], 2);
    }
#pragma unroll
  for (int m = 0; m < MW; ++m)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      if (!rvalid[m][i]) continue;
      const float inv = 1.0f / l_i[m][i];
      const int row = (b * N + rtok[m][i]) * H + h;
      __global uint* orow = (__global uint*)(out + row * hdv);
#pragma unroll
      for (int n = 0; n < NDB; ++n) {
        const int d = n * 8 + 2 * tq;
        if (d < hdv) orow[d / 2] = na_pack2(o[m][n][2 * i] * inv, o[m][n][2 * i + 1] * inv);
      }
      if (tq == 0 && lse) lse[row] = (m_i[m][i] + log2(l_i[m][i])) * LN2;
    }
#if PERSIST
  /* Slot (tj + 2) % 3 was last read at the end of tile tj - 2, before tile tj - 1's barriers;
     slot (tj + 1) % 3, read at the end of this tile, is written again at the end of tile
     tj + 1, after its barriers. */
  if (lid == 0) tickets[(tj + 2) % 3] = ticket;
  cbase += nchunks;
  pref = npref;
  wg = nwg;
  } /* the tile loop */
  /* The last work-group to finish sets the counter back to zero for the next launch (every
     draw of every work-group came before its count). */
  if (get_local_id(0) == 0) {
    mem_fence(CLK_GLOBAL_MEM_FENCE);
    if (atomic_inc(tile_counter + 1) == G - 1) {
      atomic_xchg(tile_counter, 0);
      atomic_xchg(tile_counter + 1, 0);
    }
  }
#endif
}
#endif
