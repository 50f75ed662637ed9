/* The probe the mma variant must pass on a device before the dispatcher uses it: one warp runs
 * every instruction the mma kernels rely on (cp.async with zero fill, ldmatrix with and without
 * .trans, mma.sync m16n8k16, shfl, vote, packed conversion, ex2) on small integers whose exact
 * results the host knows (src/variants/mma.cpp checks them). */
#include "na_mma_common.h"

__kernel __attribute__((reqd_work_group_size(32, 1, 1))) void na_mma_probe(
    __global const ushort* a, __global const ushort* bm, __global uint* d, __global int* misc) {
  __local uint sa[16 * 8] __attribute__((aligned(16))); /* A: 16 x 16 halves, row-major */
  __local uint sb[16 * 8] __attribute__((aligned(16))); /* B: 16 (k) x 16 (n), row-major */
  const int lane = get_local_id(0), g = lane >> 2, tq = lane & 3;
  for (int i = lane; i < 32; i += 32) {
    CP_ASYNC_16(SMEM_ADDR(&sa[i * 4]), a + i * 8, 16);
    CP_ASYNC_16(SMEM_ADDR(&sb[i * 4]), bm + i * 8, i < 31 ? 16 : 8); /* last 8 bytes: zero fill */
  }
  CP_ASYNC_COMMIT();
  CP_ASYNC_WAIT(0);
  barrier(CLK_LOCAL_MEM_FENCE);
  /* A fragments: plain loads (as the kernels' Q) and ldmatrix (non-trans) must agree. */
  const uint a0 = sa[g * 8 + tq], a1 = sa[(g + 8) * 8 + tq];
  const uint a2 = sa[g * 8 + 4 + tq], a3 = sa[(g + 8) * 8 + 4 + tq];
  uint l0, l1, l2, l3;
  LDMATRIX_X4(l0, l1, l2, l3, SMEM_ADDR(&sa[((lane & 7) + ((lane >> 3) & 1) * 8) * 8 + (lane >> 4) * 4]));
  uint b0, b1, b2, b3;
  LDMATRIX_X4_T(b0, b1, b2, b3, SMEM_ADDR(&sb[((lane >> 3) & 1) * 64 + (lane & 7) * 8 + (lane >> 4) * 4]));
  float c0[4] = {0, 0, 0, 0}, c1[4] = {0, 0, 0, 0};
  MMA_16816(c0, a0, a1, a2, a3, b0, b1);
  MMA_16816(c1, a0, a1, a2, a3, b2, b3);
  /* D (16 x 16) as packed pairs, row-major: 8 words per row. */
  d[g * 8 + tq] = na_pack2(c0[0], c0[1]);
  d[(g + 8) * 8 + tq] = na_pack2(c0[2], c0[3]);
  d[g * 8 + 4 + tq] = na_pack2(c1[0], c1[1]);
  d[(g + 8) * 8 + 4 + tq] = na_pack2(c1[2], c1[3]);
  misc[lane] = (int)na_shfl_xor((float)lane, 5);
  misc[32 + lane] = na_warp_all(lane < 32) * 2 + na_warp_all(lane < 31);
  misc[64 + lane] = (l0 == a0 && l1 == a1 && l2 == a2 && l3 == a3) ? 1 : 0;
  misc[96 + lane] = (int)na_exp2((float)(lane & 7)) + (na_exp2(-INFINITY) == 0.0f ? 1000 : 0);
}

#if defined(WG) && WG
#include "na_wgmma.h"
/* The probe of the forward's WG tiles (compiled with WG=1): one warpgroup computes D1 = A B1 with
 * B1 (16 x 16) stored K-major, as the forward's K chunks, and D2 = A B2 with B2 stored MN-major,
 * as its V chunks, through the macros, core-matrix layout and descriptors of na_mma_fwd.cl; A
 * (64 x 16, row-major halves) from registers. d: D1 then D2, 64 x 16 floats each. */
__kernel __attribute__((reqd_work_group_size(128, 1, 1))) void na_mma_wg_probe(
    __global const ushort* a, __global const ushort* b1, __global const ushort* b2,
    __global float* d) {
  __local uint s1[128] __attribute__((aligned(128))); /* 16 rows x 16 halves as 4 cores */
  __local uint s2[128] __attribute__((aligned(128)));
  const int lid = get_local_id(0), lane = lid & 31, warp = lid >> 5, g = lane >> 2, tq = lane & 3;
  if (lid < 32) { /* row r's 16-byte segment sg in core (r / 8, sg), as K_AT / V_AT */
    const int r = lid >> 1, sg = lid & 1, at = ((r >> 3) * 2 + sg) * 32 + (r & 7) * 4;
    CP_ASYNC_16(SMEM_ADDR(&s1[at]), b1 + r * 16 + sg * 8, 16);
    CP_ASYNC_16(SMEM_ADDR(&s2[at]), b2 + r * 16 + sg * 8, 16);
  }
  CP_ASYNC_COMMIT();
  CP_ASYNC_WAIT(0);
  WG_PROXY_FENCE();
  barrier(CLK_LOCAL_MEM_FENCE);
  __global const uint* a32 = (__global const uint*)a;
  const int r0 = 16 * warp + g;
  const uint a0 = a32[r0 * 8 + tq], a1 = a32[(r0 + 8) * 8 + tq];
  const uint a2 = a32[r0 * 8 + 4 + tq], a3 = a32[(r0 + 8) * 8 + 4 + tq];
  float d1[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}}, d2[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
  WGMMA_FENCE_N16(d1);
  WGMMA_FENCE_N16(d2);
  WGMMA_RA_N16(d1, a0, a1, a2, a3, na_wg_desc(SMEM_ADDR(s1), 128, 2 * 128), 0);
  WGMMA_RA_N16(d2, a0, a1, a2, a3, na_wg_desc(SMEM_ADDR(s2), 2 * 128, 128), 1);
  WG_COMMIT();
  WGMMA_WAIT_N16(d1);
  WGMMA_WAIT_N16(d2);
  for (int j = 0; j < 2; ++j)
    for (int e = 0; e < 4; ++e) {
      const int at = (r0 + 8 * (e >> 1)) * 16 + 8 * j + 2 * tq + (e & 1);
      d[at] = d1[j][e];
      d[1024 + at] = d2[j][e];
    }
}
#endif

#if defined(TMA) && TMA
#include "na_wgmma.h"
#include "na_sm90.h"
/* The probe of the TMA chunks (compiled with TMA=1, after na_tma_kv_maps built the maps of k and
 * v, [1][N][1][64] with N < tok0 + 64, boxes of 64 rows): one warpgroup loads the 64-token boxes
 * of K and V at token tok0 by the TMA (the rows past N as zeros), computes S = Q K^T (Q: 64 x 64
 * row-major, from registers) with K K-major through the forward's swizzled descriptors in two
 * pieces of 32 keys, and O = P V with P = S as f16/bf16 pairs and V MN-major. d: S, then O,
 * 64 x 64 floats each. */
__kernel __attribute__((reqd_work_group_size(128, 1, 1))) void na_mma_tma_probe(
    __global const ulong* maps, __global const uint* q, __global float* d, int tok0) {
  __local uint buf[(16384 + 1024) / 4];
  __local ulong bar[1];
  const int lid = get_local_id(0), lane = lid & 31, warp = lid >> 5, g = lane >> 2, t = lane & 3;
  const uint kbase = (SMEM_ADDR(buf) + 1023u) & ~1023u, vbase = kbase + 8192;
  const uint mb = SMEM_ADDR(bar);
  const ulong kmap = (ulong)(size_t)maps, vmap = kmap + 128;
  if (lid == 0) {
    NA_TMA_MAP_ACQUIRE(kmap);
    NA_TMA_MAP_ACQUIRE(vmap);
    na_mbar_init(mb, 1);
    NA_MBAR_INIT_FENCE();
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (lid == 0) {
    na_mbar_arrive_expect(mb, 16384u);
    NA_TMA_LOAD_4D(kbase, kmap, 0, 0, tok0, 0, mb);
    NA_TMA_LOAD_4D(vbase, vmap, 0, 0, tok0, 0, mb);
  }
  uint qa[4][4];
  const int r = 16 * warp + g;
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    qa[kk][0] = q[r * 32 + 8 * kk + t];
    qa[kk][1] = q[(r + 8) * 32 + 8 * kk + t];
    qa[kk][2] = q[r * 32 + 8 * kk + 4 + t];
    qa[kk][3] = q[(r + 8) * 32 + 8 * kk + 4 + t];
  }
  na_mbar_wait(mb, 0);
  float s[8][4], o[8][4];
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      NA_ZERO_OWN(s[j][e]);
      NA_ZERO_OWN(o[j][e]);
    }
  const ulong kd = NA_SW128_KMAJOR_DESC(kbase);
  WGMMA_FENCE_N64(s);
#pragma unroll
  for (int kk = 0; kk < 4; ++kk)
#pragma unroll
    for (int h = 0; h < 2; ++h)
      WGMMA_RA_N32((s + 4 * h), qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3],
                   na_wg_desc_at(kd, NA_SW128_KMAJOR_OFF(kk, 32 * h, 8192)), 0);
  WG_COMMIT();
  WGMMA_WAIT_N64(s);
  uint pa[4][4];
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    pa[kk][0] = na_pack2(s[2 * kk][0], s[2 * kk][1]);
    pa[kk][1] = na_pack2(s[2 * kk][2], s[2 * kk][3]);
    pa[kk][2] = na_pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    pa[kk][3] = na_pack2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
  }
  const ulong vd = NA_SW128_MN_DESC(vbase, 8192);
  WGMMA_FENCE_N64(o);
#pragma unroll
  for (int kk = 0; kk < 4; ++kk)
    WGMMA_RA_N64(o, pa[kk][0], pa[kk][1], pa[kk][2], pa[kk][3],
                 na_wg_desc_at(vd, NA_SW128_MN_OFF(kk)), 1);
  WG_COMMIT();
  WGMMA_WAIT_N64(o);
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = r + 8 * (e >> 1), col = 8 * j + 2 * t + (e & 1);
      d[row * 64 + col] = s[j][e];
      d[4096 + row * 64 + col] = o[j][e];
    }
}
#endif
