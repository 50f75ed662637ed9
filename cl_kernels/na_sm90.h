/* Hopper (sm_90) asynchronous copies for the mma kernels: mbarriers, and the tensor memory
 * accelerator (TMA: cp.async.bulk.tensor) with tensor maps that the GPU builds itself.
 *
 * Every instruction here sits behind the sm_90a marker (na_wgmma.h explains it): NVIDIA's OpenCL
 * compiler may emit a PTX version older than these instructions, and tensormap.replace is an
 * sm_90a instruction of PTX ISA 8.3. The program cache uncomments the marked lines, sets the
 * target to sm_90a and the version to at least 8.3 where a tensormap instruction is present,
 * and builds the PTX again. Each line of an asm carries the marker.
 *
 * Tensor maps: OpenCL has no cuTensorMapEncode, so na_tma_map_build writes the 128-byte map in
 * shared memory from zeros with tensormap.replace (every field it documents), and a whole warp
 * copies it to global memory with tensormap.cp_fenceproxy (release). A kernel that uses the map
 * acquires it once (NA_TMA_MAP_ACQUIRE) before its first copy through it. */
#ifndef NA_SM90_H
#define NA_SM90_H

#define SM90A "// @sm_90a@ "

NA_FN void na_mbar_init(uint bar, uint count) {
  NA_ASM(SM90A "mbarrier.init.shared.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
/* An arrival (release) on the mbarrier at shared address bar. */
NA_FN void na_mbar_arrive(uint bar) {
  NA_ASM(SM90A "{\n\t" SM90A ".reg .b64 state;\n\t" SM90A
               "mbarrier.arrive.shared.b64 state, [%0];\n\t" SM90A "}" ::"r"(bar)
         : "memory");
}
/* An arrival that also expects `bytes` more bytes of asynchronous copies to complete (their
   complete_tx) before the phase can complete. */
NA_FN void na_mbar_arrive_expect(uint bar, uint bytes) {
  NA_ASM(SM90A "mbarrier.arrive.expect_tx.shared.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes)
         : "memory");
}
/* Expects `bytes` more bytes of asynchronous copies in the current phase, without arriving. */
NA_FN void na_mbar_expect(uint bar, uint bytes) {
  NA_ASM(SM90A "mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(bytes)
         : "memory");
}
/* Waits (acquire) until the phase of the given parity of the mbarrier at bar has completed
   (parity 1 of a fresh mbarrier counts as completed). */
NA_FN void na_mbar_wait(uint bar, uint parity) {
  uint done;
  do {
    NA_ASM(SM90A "{\n\t" SM90A ".reg .pred p;\n\t" SM90A
                 "mbarrier.try_wait.parity.shared.b64 p, [%1], %2;\n\t" SM90A
                 "selp.u32 %0, 1, 0, p;\n\t" SM90A "}"
           : "=r"(done)
           : "r"(bar), "r"(parity)
           : "memory");
  } while (!done);
}
#define SETMAXNREG(op, n) NA_ASM(SM90A "setmaxnreg." op ".sync.aligned.u32 %0;" ::"n"(n))

/* Initialized mbarriers made visible to the asynchronous proxy (the TMA's complete_tx); before
   the work-group barrier that publishes them. */
#define NA_MBAR_INIT_FENCE() NA_ASM(SM90A "fence.mbarrier_init.release.cluster;" ::: "memory")

/* One box of a rank-4 tensor map (map: its global address) into shared memory at dst, with
   coordinates c0 (innermost) .. c3; its bytes complete_tx on the mbarrier at bar. Elements past
   the tensor's extents arrive as zeros. */
#define NA_TMA_LOAD_4D(dst, map, c0, c1, c2, c3, bar)                                          \
  NA_ASM(SM90A "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes" \
               " [%0], [%1, {%2, %3, %4, %5}], [%6];" ::"r"(dst),                               \
         "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)                                  \
         : "memory")

/* The same for a rank-5 map (coordinates c0 innermost .. c4). */
#define NA_TMA_LOAD_5D(dst, map, c0, c1, c2, c3, c4, bar)                                      \
  NA_ASM(SM90A "cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes" \
               " [%0], [%1, {%2, %3, %4, %5, %6}], [%7];" ::"r"(dst),                           \
         "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4), "r"(bar)                         \
         : "memory")

/* The map at global address `map` made visible to this thread's later TMA copies (the acquire
   that pairs with na_tma_map_build's release in an earlier kernel). */
#define NA_TMA_MAP_ACQUIRE(map) \
  NA_ASM(SM90A "fence.proxy.tensormap::generic.acquire.gpu [%0], 128;" ::"l"(map) : "memory")

#define NA_TMAP_SET(field, imm) /* an immediate value */ \
  NA_ASM(SM90A "tensormap.replace.tile." field ".shared::cta.b1024.b32 [%0], %1;" ::"r"(tm), \
         "n"(imm) : "memory")
#define NA_TMAP_SET_ORD(field, ord, val)                                                       \
  NA_ASM(SM90A "tensormap.replace.tile." field ".shared::cta.b1024.b32 [%0], %1, %2;" ::"r"(tm), \
         "n"(ord), "r"(val) : "memory")
#define NA_TMAP_STRIDE(ord, val)                                                                \
  NA_ASM(SM90A "tensormap.replace.tile.global_stride.shared::cta.b1024.b64 [%0], %1, %2;" ::"r"( \
             tm),                                                                               \
         "n"(ord), "l"(val) : "memory")

/* Writes, by the first warp of the work-group (all 32 lanes take part), the tensor map of a
   [d4][d3][d2][d1][d0] tensor of 16-bit elements at `base` (d0 contiguous; row strides s1 .. s4
   in bytes, multiples of 16) with boxes of b0 x .. x b4 elements, zeros past the extents, in the
   128-byte swizzle layout (b0 * 2 must be 128: na_wg_desc_sw128), to the 128-byte aligned
   global `map`. rank5 = 0 gives a rank-4 map (d4, s4 and b4 unused). e2, e3, e4: the element
   strides of dimensions 2-4 (a box takes every e-th element there: b / e of them; 1 to 8; at
   rank 4, e4 is unused). tm_smem: 128 bytes of shared memory, 128-byte aligned. */
NA_FN void na_tma_map_build(__global ulong* map, __local ulong* tm_smem, ulong base, int rank5,
                            int d0, int d1, int d2, int d3, int d4, ulong s1, ulong s2, ulong s3,
                            ulong s4, int b0, int b1, int b2, int b3, int b4, int e2, int e3,
                            int e4) {
  const int lane = get_local_id(0);
  if (lane < 16) tm_smem[lane] = 0;
  barrier(CLK_LOCAL_MEM_FENCE);
  const uint tm = SMEM_ADDR(tm_smem);
  if (lane == 0) {
    NA_ASM(SM90A "tensormap.replace.tile.global_address.shared::cta.b1024.b64 [%0], %1;" ::"r"(tm),
           "l"(base) : "memory");
    NA_TMAP_SET_ORD("box_dim", 0, (uint)b0);
    NA_TMAP_SET_ORD("box_dim", 1, (uint)b1);
    NA_TMAP_SET_ORD("box_dim", 2, (uint)b2);
    NA_TMAP_SET_ORD("box_dim", 3, (uint)b3);
    NA_TMAP_SET_ORD("global_dim", 0, (uint)d0);
    NA_TMAP_SET_ORD("global_dim", 1, (uint)d1);
    NA_TMAP_SET_ORD("global_dim", 2, (uint)d2);
    NA_TMAP_SET_ORD("global_dim", 3, (uint)d3);
    NA_TMAP_STRIDE(0, s1); /* ordinal i: the stride of dimension i + 1 */
    NA_TMAP_STRIDE(1, s2);
    NA_TMAP_STRIDE(2, s3);
    NA_TMAP_SET_ORD("element_stride", 0, 1u);
    NA_TMAP_SET_ORD("element_stride", 1, 1u);
    NA_TMAP_SET_ORD("element_stride", 2, (uint)e2);
    NA_TMAP_SET_ORD("element_stride", 3, (uint)e3);
    if (rank5) {
      NA_TMAP_SET("rank", 4); /* rank - 1 */
      NA_TMAP_SET_ORD("box_dim", 4, (uint)b4);
      NA_TMAP_SET_ORD("global_dim", 4, (uint)d4);
      NA_TMAP_STRIDE(3, s4);
      NA_TMAP_SET_ORD("element_stride", 4, (uint)e4);
    } else {
      NA_TMAP_SET("rank", 3);
    }
    NA_TMAP_SET("elemtype", 1);          /* 16-bit elements (copied as bits: f16 and bf16) */
    NA_TMAP_SET("interleave_layout", 0); /* none */
    NA_TMAP_SET("swizzle_mode", 3);      /* 128 bytes */
    NA_TMAP_SET("fill_mode", 0);         /* zeros past the extents */
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (lane < 32)
    NA_ASM(SM90A "tensormap.cp_fenceproxy.global.shared::cta.tensormap::generic.release.gpu"
                 ".sync.aligned [%0], [%1], 128;" ::"l"((ulong)(size_t)map),
           "r"(tm)
           : "memory");
}
#undef NA_TMAP_SET
#undef NA_TMAP_SET_ORD
#undef NA_TMAP_STRIDE

#if defined(TMA) && TMA
/* The tensor maps of two tensors k and v ([B][N][HKV][hd] and [B][N][HKV][hdv], 16-bit elements:
   a call's K and V, or Q and dO with HKV its query heads): boxes of one head's `rows`
   consecutive tokens, k's map at maps[at .. at + 15], v's at maps[at + 16 .. at + 31]. One
   warp. */
__kernel __attribute__((reqd_work_group_size(32, 1, 1))) void na_tma_kv_maps(
    __global ulong* maps, int at, __global const ushort* k, __global const ushort* v, int B,
    int N, int HKV, int hd, int hdv, int rows) {
  maps += at;
  __local ulong tm[2][16] __attribute__((aligned(128)));
  const ulong rk = (ulong)hd * 2, rv = (ulong)hdv * 2;
  na_tma_map_build(maps, tm[0], (ulong)(size_t)k, 0, hd, HKV, N, B, 1, rk, rk * HKV,
                   rk * HKV * N, 0, hd, 1, rows, 1, 1, 1, 1, 1);
  na_tma_map_build(maps + 16, tm[1], (ulong)(size_t)v, 0, hdv, HKV, N, B, 1, rv, rv * HKV,
                   rv * HKV * N, 0, hdv, 1, rows, 1, 1, 1, 1, 1);
}

/* The rank-5 maps of K and V ([B][L0][L1][L2][HKV][hd], hd = hdv = 64 or 128) for chunks that
   are boxes of kb0 x kb1 x kb2 keys of one head and 64 dims (na_mma_fwd.cl's TMA_BOX): dims
   {hd, HKV, L2, L1, L0 * B} (axis 0 and the batch are one dimension: a box never crosses a
   batch inside the axis, and one past it is masked and its V rows zeroed), keys of a dilation
   group (every DILa-th token: the axes' element strides), K's map at maps[at .. at + 15], V's at
   maps[at + 16 .. at + 31]. One warp. */
__kernel __attribute__((reqd_work_group_size(32, 1, 1))) void na_tma_box_maps(
    __global ulong* maps, int at, __global const ushort* k, __global const ushort* v, int B,
    int L0, int L1, int L2, int HKV, int hd, int kb0, int kb1, int kb2) {
  maps += at;
  __local ulong tm[2][16] __attribute__((aligned(128)));
  const ulong r = (ulong)hd * 2, t2 = r * HKV, t1 = t2 * L2, t0 = t1 * L1;
  na_tma_map_build(maps, tm[0], (ulong)(size_t)k, 1, hd, HKV, L2, L1, L0 * B, r, t2, t1, t0, 64,
                   1, kb2 * DIL2, kb1 * DIL1, kb0 * DIL0, DIL2, DIL1, DIL0);
  na_tma_map_build(maps + 16, tm[1], (ulong)(size_t)v, 1, hd, HKV, L2, L1, L0 * B, r, t2, t1, t0,
                   64, 1, kb2 * DIL2, kb1 * DIL1, kb0 * DIL0, DIL2, DIL1, DIL0);
}
#endif

/* A wgmma shared-memory descriptor of an operand in the 128-byte swizzle layout (what a TMA box
   with 128-byte rows and swizzle 3 writes): 8 rows of 128 bytes make a 1024-byte atom, the 16-byte
   pieces of row r stored at piece index (p ^ (r % 8)); addr 1024-byte aligned at the atom, or a
   multiple of 16 bytes into it along K-major rows. sbo: bytes between atoms of 8 rows; lbo:
   bytes between atoms along the 128-byte rows' direction (MN-major operands wider than 64
   elements). */
NA_FN ulong na_wg_desc_sw128(uint addr, uint lbo, uint sbo) {
  return (ulong)((addr >> 4) & 0x3FFF) | ((ulong)((lbo >> 4) & 0x3FFF) << 16) |
         ((ulong)((sbo >> 4) & 0x3FFF) << 32) | (1UL << 62);
}

/* The descriptors of a chunk of 128-byte rows (64 f16/bf16 elements) in that layout, and their
   offsets (16-byte units) to a k16 step: K-major (the rows' elements along K, as K in Q K^T), k16
   step kk is 32 bytes along the rows, and `rows` rows further is rows * 128 bytes; MN-major (rows
   along K, as V in P V), k16 step kk is 16 rows. H100 (tools/tma_probe.cpp): these were exact;
   MN-major with LBO 1024 and SBO 8192 faulted.
   `half`: rows of 128 dims (head dim 128) are two boxes of 64 dims, the second `half` bytes
   after the first (the chunk's rows * 128): K-major k16 steps 4..7 are in the second box;
   MN-major, the second box holds the columns 64..127, LBO further (not measured by the probe:
   checked by the forward's tests at head dim 128). Rows of 64 dims never reach the second box
   (LBO 8192 there, as the probe measured). */
#define NA_SW128_KMAJOR_DESC(addr) na_wg_desc_sw128(addr, 16, 1024)
#define NA_SW128_KMAJOR_OFF(kk, rows, half) \
  (2 * ((kk) & 3) + ((kk) >> 2) * ((half) / 16) + (rows) * 8)
#define NA_SW128_MN_DESC(addr, half) na_wg_desc_sw128(addr, half, 1024)
#define NA_SW128_MN_OFF(kk) ((kk) * 128)

#endif /* NA_SM90_H */
