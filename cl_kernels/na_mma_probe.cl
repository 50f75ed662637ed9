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
