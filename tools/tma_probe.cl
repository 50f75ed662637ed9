/* Kernels of tools/tma_probe.cpp: a tensor map built on the GPU from zeros (na_sm90.h), one TMA
 * box through it, and wgmma reading TMA boxes in the 128-byte swizzle layout (S = Q K^T with K
 * K-major, O = P V with V MN-major), for the shapes of the forward's WG tiles (64 rows, 64-key
 * chunks, head dim 64). Built with -I cl_kernels -DDTYPE=1 -DHDP=64 -DHDVP=64. */
#include "na_mma_common.h"
#define WG_CHUNK 64
#include "na_wgmma.h"
#include "na_sm90.h"

/* map: the tensor map of src, a [B][N][H][hd] tensor, boxes of hd x 1 x rows x 1. */
__kernel void build_map(__global ulong* map, __global const ushort* src, int B, int N, int H,
                        int hd, int rows) {
  __local ulong tm[16] __attribute__((aligned(128)));
  const ulong row = (ulong)hd * 2;
  na_tma_map_build(map, tm, (ulong)(size_t)src, hd, H, N, B, row, row * H, row * H * N, hd, 1,
                   rows, 1);
}

/* The first 1024-byte boundary at or after buf, as a shared address. */
#define ALIGN1K(buf) ((SMEM_ADDR(buf) + 1023u) & ~1023u)

/* One box (rows x 128 bytes) at token tok0, head hk, batch b, copied out raw; out[2048]: the
   shared address of a __local array declared aligned(1024), mod 1024. */
__kernel void tma_copy(__global const ulong* map, __global uint* out, int tok0, int hk, int b,
                       int bytes) {
  __local uint buf[(8192 + 1024) / 4];
  __local uint al[64] __attribute__((aligned(1024)));
  __local ulong bar[1];
  const int lid = get_local_id(0);
  const uint base = ALIGN1K(buf);
  const uint mb = SMEM_ADDR(bar);
  if (lid == 0) {
    NA_TMA_MAP_ACQUIRE((ulong)(size_t)map);
    na_mbar_init(mb, 1);
    NA_MBAR_INIT_FENCE();
  }
  for (int i = lid; i < 2048; i += 128) buf[(base - SMEM_ADDR(buf)) / 4 + i] = 0xDEADBEEFu;
  al[lid & 63] = 0;
  WG_PROXY_FENCE();
  barrier(CLK_LOCAL_MEM_FENCE);
  if (lid == 0) {
    na_mbar_arrive_expect(mb, (uint)bytes);
    NA_TMA_LOAD_4D(base, (ulong)(size_t)map, 0, hk, tok0, b, mb);
  }
  na_mbar_wait(mb, 0);
  for (int i = lid; i < 2048; i += 128) out[i] = buf[(base - SMEM_ADDR(buf)) / 4 + i];
  if (lid == 0) out[2048] = SMEM_ADDR(al) % 1024u + al[0];
}

/* One warpgroup: K and V boxes (64 keys at tok0) by TMA, S = Q K^T (Q: 64 x 64 row-major, K as
   K-major B through descriptors of the 128-byte swizzle layout, in two pieces of 32 keys), then
   O = P V with P = S as f16 and V as MN-major B. */
__kernel void tma_wgmma(__global const ulong* kmap, __global const ulong* vmap,
                        __global const uint* q, __global float* s_out, __global float* o_out,
                        int tok0, int hk, int b, uint k_lbo, uint k_sbo, uint v_lbo, uint v_sbo) {
  __local uint buf[(16384 + 1024) / 4];
  __local ulong bar[1];
  const int lid = get_local_id(0), lane = lid & 31, warp = lid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const uint kbase = ALIGN1K(buf), vbase = kbase + 8192;
  const uint mb = SMEM_ADDR(bar);
  if (lid == 0) {
    NA_TMA_MAP_ACQUIRE((ulong)(size_t)kmap);
    NA_TMA_MAP_ACQUIRE((ulong)(size_t)vmap);
    na_mbar_init(mb, 1);
    NA_MBAR_INIT_FENCE();
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (lid == 0) {
    na_mbar_arrive_expect(mb, 16384u);
    NA_TMA_LOAD_4D(kbase, (ulong)(size_t)kmap, 0, hk, tok0, b, mb);
    NA_TMA_LOAD_4D(vbase, (ulong)(size_t)vmap, 0, hk, tok0, b, mb);
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
  const ulong kd = na_wg_desc_sw128(kbase, k_lbo, k_sbo);
  WGMMA_FENCE_N64(s);
#pragma unroll
  for (int kk = 0; kk < 4; ++kk)
#pragma unroll
    for (int h = 0; h < 2; ++h) /* k16 step: 32 bytes along the row; 32 keys: 4096 bytes */
      WGMMA_RA_N32((s + 4 * h), qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3],
                   na_wg_desc_at(kd, 2 * kk + h * 256), 0);
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
  const ulong vd = na_wg_desc_sw128(vbase, v_lbo, v_sbo);
  WGMMA_FENCE_N64(o);
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) /* k16 step: 16 keys, 2048 bytes */
    WGMMA_RA_N64(o, pa[kk][0], pa[kk][1], pa[kk][2], pa[kk][3], na_wg_desc_at(vd, 128 * kk), 1);
  WG_COMMIT();
  WGMMA_WAIT_N64(o);
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = r + 8 * (e >> 1), col = 8 * j + 2 * t + (e & 1);
      s_out[row * 64 + col] = s[j][e];
      o_out[row * 64 + col] = o[j][e];
    }
}
