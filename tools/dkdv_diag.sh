#!/bin/bash
# Where the dK/dV kernel's time goes, more finely than tools/dkdv_anatomy.sh (GPU machine,
# after tools/gpu_session.sh build): copies of cl_kernels with one part of na_mma_bwd.cl
# replaced after its includes, timed by wg_ab.sh against the original on CONFIG_LIST (results
# are wrong by construction; times only).
#   nomma:  every mma.sync replaced by one dependent FADD
#   noldsm: every ldmatrix replaced by register moves of its address (no shared-memory reads)
#   nocopy: no 16-byte cp.async (Q, dO rows and the key tile stay stale; lse, D and windows load)
#   nowait: no cp.async.wait_group (the copies' latency is not waited for)
#   nobar:  no barrier()
#   nopack: the f32 -> f16/bf16 pair conversions replaced by an integer XOR
#   noexp:  the exponentials replaced by their arguments
#   nomask: every chunk treated as unmasked (the warp vote "full" always 1)
#   nofetch: the 16-byte copies read nothing (cp.async with source size 0 writes zeros):
#           addresses and instructions stay, the traffic goes
#   noaddr: the 16-byte copies all read the kernel's first key row (no address arithmetic,
#           almost no traffic)
#   noconsume: every warp vote false (na_warp_all, na_warp_any): the WS consumers skip every
#           chunk (still waiting for it and freeing it): the producer and the handshakes alone
#   nowgmma: every wgmma of shapes n32, n64 and n128 replaced by one dependent FADD (inserted
#           after na_wgmma.h)
#   notma:  no TMA box loads and no mbarrier waits (the forward's TMA paths: K and V stay stale)
#   nombar: no mbarrier waits (the TMA loads still run; their latency is not waited for)
#   nomaskbox: every chunk of the TMA chunk-box forward treated as inside every window (full = 1)
#   nov:    the TMA chunk-box forward loads no V (its mbarrier completes with 0 bytes): half
#           the K/V traffic
#   onebox: every TMA chunk-box load fetches the tile's first chunk (the same bytes move from L2
#           to the SM; almost nothing from DRAM)
#   noq:    the query tile is not staged (Q fragments from whatever the stage holds): the
#           forward's per-tile prologue without its loads
#   sn64:   not a knockout: S-like products (K-major B) in pieces of 64 columns where the chunk
#           and head dims allow (WG_SN_MAX=64, na_wgmma.h)
# VARIANTS (default: all) picks some; FILE (default na_mma_bwd.cl) the kernel file changed
# (na_mma_fwd.cl: the forward and the dQ kernel).
set -u
list=$1
rm -rf /tmp/diag && mkdir -p /tmp/diag
add() {  # name, text after the includes (or after the line matching $3)
  cp -r cl_kernels /tmp/diag/$1
  printf '%s\n' "$2" > /tmp/diag/repl.txt
  sed -i "/${3:-#include \"na_tile.h\"}/r /tmp/diag/repl.txt" /tmp/diag/$1/${FILE:-na_mma_bwd.cl}
}
add nomma '#undef MMA_16816
#define MMA_16816(d, a0, a1, a2, a3, b0, b1) ((d)[0] += as_float((a0) ^ (b1)))'
add noldsm '#undef LDMATRIX_X4
#undef LDMATRIX_X4_T
#define LDMATRIX_X4(r0, r1, r2, r3, addr) (r0 = (addr), r1 = (addr) ^ 1u, r2 = (addr) ^ 2u, r3 = (addr) ^ 3u)
#define LDMATRIX_X4_T(r0, r1, r2, r3, addr) LDMATRIX_X4(r0, r1, r2, r3, addr)'
add nocopy '#undef CP_ASYNC_16
#define CP_ASYNC_16(d, s, n) ((void)0)'
add nowait '#undef CP_ASYNC_WAIT
#define CP_ASYNC_WAIT(n) ((void)0)'
add nobar '#define barrier(f) ((void)0)'
add nopack '#define na_pack2(lo, hi) (as_uint(lo) ^ as_uint(hi))'
add noexp '#define na_exp2(x) (x)'
add nomask '#define na_warp_all(x) 1'
add nofetch '#undef CP_ASYNC_16
#define CP_ASYNC_16(d, s, n) NA_ASM("cp.async.cg.shared.global [%0], [%1], 16, 0;" ::"r"(d), "l"((ulong)(size_t)(s)) : "memory")'
add noaddr '#undef CP_ASYNC_16
#define CP_ASYNC_16(d, s, n) NA_ASM("cp.async.cg.shared.global [%0], [%1], 16, 16;" ::"r"(d), "l"((ulong)(size_t)(k)) : "memory")'
add nowgmma '#undef WGMMA_RA_N32
#undef WGMMA_RA_N64
#define WGMMA_RA_N32(d, a0, a1, a2, a3, desc, tb) ((d)[0][0] += as_float((a0) ^ (uint)(desc)))
#define WGMMA_RA_N64(d, a0, a1, a2, a3, desc, tb) ((d)[0][0] += as_float((a0) ^ (uint)(desc)))
#undef WGMMA_RA_N128
#define WGMMA_RA_N128(d, a0, a1, a2, a3, desc, tb) ((d)[0][0] += as_float((a0) ^ (uint)(desc)))' '#include "na_wgmma.h"'
add sn64 '#define WG_SN_MAX 64'
add notma '#undef NA_TMA_LOAD_4D
#undef NA_TMA_LOAD_5D
#define NA_TMA_LOAD_4D(dst, map, c0, c1, c2, c3, bar) ((void)0)
#define NA_TMA_LOAD_5D(dst, map, c0, c1, c2, c3, c4, bar) ((void)0)
#define na_mbar_wait(a, p) ((void)0)' '#include "na_sm90.h"'
add nombar '#define na_mbar_wait(a, p) ((void)0)' '#include "na_sm90.h"'
add nov '#undef LOAD_V
#define LOAD_V(ci, st) do { if (lid == 0) na_mbar_arrive_expect(SMEM_ADDR(&tma_bar[st][1]), 0); } while (0)' '^#define LOAD_V(ci, st) TMA_CHUNK'
add onebox '#undef LOAD_K
#undef LOAD_V
#define LOAD_K(ci, st) TMA_CHUNK(0, &tma_bar[st][0], smem + (st) * STAGE_WORDS, kmap)
#define LOAD_V(ci, st) TMA_CHUNK(0, &tma_bar[st][1], smem + (st) * STAGE_WORDS + K_WORDS, vmap)' '^#define LOAD_V(ci, st) TMA_CHUNK'
add noq '#undef STAGE_TILE_ROWS
#define STAGE_TILE_ROWS(dst, stride, nrows, nseg, src, heads, head, width) ((void)0)'
add nomaskbox 'full = 1;' '^    CHUNK_FULL(full, c, st);'
add noconsume '#define na_warp_all(x) 0
#define na_warp_any(x) 0'
args=(base=$PWD/cl_kernels)
for v in ${VARIANTS:-nomma noldsm nocopy nowait nobar nopack noexp nomask nofetch noaddr nowgmma noconsume sn64}; do args+=($v=/tmp/diag/$v); done
bash tools/wg_ab.sh "${args[@]}" -- "$list"
