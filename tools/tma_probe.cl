/* The kernel of tools/tma_probe.cpp: one TMA box through a tensor map that na_tma_kv_maps
 * (na_sm90.h, built with TMA=1) wrote on the GPU from zeros, copied out raw. wgmma on such
 * boxes is the library's own probe (na_mma_probe.cl, na_mma_tma_probe). Built with
 * -I cl_kernels -DDTYPE=1 -DTMA=1. */
#include "na_mma_common.h"
#include "na_wgmma.h"
#include "na_sm90.h"

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
