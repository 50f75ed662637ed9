/* Inline PTX for the NVIDIA tensor-core variant (mma): mma.sync m16n8k16 with f32 accumulation,
 * ldmatrix, cp.async, warp shuffles and f32 -> f16/bf16 pair conversion. Only the mma kernel
 * files include this; everything here needs NVIDIA's OpenCL compiler (sm_80 or newer). Fragment
 * layouts (PTX ISA, mma.m16n8k16, lane = 4 * g + t):
 *   A (16 x 16, row): a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]
 *   B (16 x 8, col):  b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]
 *   C (16 x 8, f32):  c0, c1 = C[g][2t..2t+1], c2, c3 = C[g+8][2t..2t+1]
 * so the C fragments of two adjacent n8 blocks of S are exactly the A fragment of P for the next
 * product (no shuffles). */
#ifndef NA_MMA_COMMON_H
#define NA_MMA_COMMON_H

#include "na_common.h"

#ifndef NA_ASM
#define NA_ASM asm volatile /* NVIDIA's OpenCL C spelling; clang checks use __asm__ __volatile__ */
#endif

#if DTYPE == 1
#define MMA_AB "f16"
#define CVT_PAIR "cvt.rn.f16x2.f32"
#elif DTYPE == 2
#define MMA_AB "bf16"
#define CVT_PAIR "cvt.rn.bf16x2.f32"
#else
#error "the mma kernels take f16 (DTYPE=1) or bf16 (DTYPE=2)"
#endif

/* HD_EXACT 1 (the host's define): head_dim and head_dim_v equal their buckets HDP and HDVP.
   The kernels then overwrite their hd and hdv arguments with the constants, so that row
   addresses and the zero fill past the head dims (seg * 8 < hd) fold at compile time. */
#ifndef HD_EXACT
#define HD_EXACT 0
#endif
#if HD_EXACT
#define HD_EXACT_CONSTANTS() (hd = HDP, hdv = HDVP)
#else
#define HD_EXACT_CONSTANTS() ((void)0)
#endif

/* x = 0 by an instruction of its own, for wgmma accumulators. When the compiler gives two
   products' accumulators one shared zero register, ptxas waits for the first product's wgmma
   before issuing the second, or before the next zeros (warning C7517), and the products no
   longer overlap: the dQ kernel's S and dP (session 8), the WS dK/dV kernel's S and dP and the
   deferred dV and dK (session 14). */
#define NA_ZERO_OWN(x) NA_ASM("mov.b32 %0, 0;" : "=f"(x))

/* d[0..3] += A * B (m16n8k16, f32 accumulation). */
#define MMA_16816(d, a0, a1, a2, a3, b0, b1)                                                    \
  NA_ASM("mma.sync.aligned.m16n8k16.row.col.f32." MMA_AB "." MMA_AB                             \
         ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"                           \
         : "+f"((d)[0]), "+f"((d)[1]), "+f"((d)[2]), "+f"((d)[3])                               \
         : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1))

/* Four 8x8 b16 matrices from shared memory, transposed; each lane gives one row address. */
#define LDMATRIX_X4_T(r0, r1, r2, r3, addr)                                           \
  NA_ASM("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"        \
         : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)                                     \
         : "r"(addr))

/* Four 8x8 b16 matrices from shared memory, not transposed. */
#define LDMATRIX_X4(r0, r1, r2, r3, addr)                                     \
  NA_ASM("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"      \
         : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)                             \
         : "r"(addr))

/* 16 bytes global -> shared, asynchronously; src_bytes < 16 fills the rest with zeros. */
#define CP_ASYNC_16(dst_shared, src_global, src_bytes)                                  \
  NA_ASM("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst_shared),             \
         "l"((ulong)(size_t)(src_global)), "r"(src_bytes)                               \
         : "memory")
/* 4 bytes (one float), through L1; zero-filled where src_bytes is 0. */
#define CP_ASYNC_4(dst_shared, src_global, src_bytes)                                   \
  NA_ASM("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(dst_shared),              \
         "l"((ulong)(size_t)(src_global)), "r"(src_bytes)                               \
         : "memory")
#define CP_ASYNC_COMMIT() NA_ASM("cp.async.commit_group;" ::: "memory")
#define CP_ASYNC_WAIT(n) NA_ASM("cp.async.wait_group %0;" ::"n"(n) : "memory")

/* The shared-window address of a __local pointer (what ldmatrix and cp.async take). */
#define SMEM_ADDR(p) ((uint)(size_t)(p))

NA_FN float na_shfl_xor(float x, int mask) {
  float y;
  NA_ASM("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(y) : "f"(x), "r"(mask));
  return y;
}

NA_FN int na_shfl_xor_i(int x, int mask) {
  int y;
  NA_ASM("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=r"(y) : "r"(x), "r"(mask));
  return y;
}

/* x of lane `src` (0..31; per lane) */
NA_FN float na_shfl_idx(float x, int src) {
  float y;
  NA_ASM("shfl.sync.idx.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(y) : "f"(x), "r"(src));
  return y;
}

NA_FN int na_shfl_idx_i(int x, int src) {
  int y;
  NA_ASM("shfl.sync.idx.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=r"(y) : "r"(x), "r"(src));
  return y;
}

/* The minimum and maximum of x over the warp (butterfly: every lane gets them). */
NA_FN int na_warp_min(int x) {
  for (int m = 1; m < 32; m <<= 1) x = min(x, na_shfl_xor_i(x, m));
  return x;
}
NA_FN int na_warp_max(int x) {
  for (int m = 1; m < 32; m <<= 1) x = max(x, na_shfl_xor_i(x, m));
  return x;
}

/* 1 when `pred` is non-zero in any lane of the warp. */
NA_FN int na_warp_any(int pred) {
  int r;
  NA_ASM("{\n\t.reg .pred p1, p2;\n\tsetp.ne.s32 p1, %1, 0;\n\t"
         "vote.sync.any.pred p2, p1, 0xffffffff;\n\tselp.s32 %0, 1, 0, p2;\n\t}"
         : "=r"(r)
         : "r"(pred));
  return r;
}

/* 1 when `pred` is non-zero in every lane of the warp. */
NA_FN int na_warp_all(int pred) {
  int r;
  NA_ASM("{\n\t.reg .pred p1, p2;\n\tsetp.ne.s32 p1, %1, 0;\n\t"
         "vote.sync.all.pred p2, p1, 0xffffffff;\n\tselp.s32 %0, 1, 0, p2;\n\t}"
         : "=r"(r)
         : "r"(pred));
  return r;
}

/* Two floats to a packed f16/bf16 pair: `lo` in the low half (the lower index). */
NA_FN uint na_pack2(float lo, float hi) {
  uint r;
  NA_ASM(CVT_PAIR " %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

/* 2^x on the special-function unit (ex2.approx: about 2 ulp, exact 0 for -inf); far below the
   f16/bf16 output rounding of this variant. */
NA_FN float na_exp2(float x) {
  float y;
  NA_ASM("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

/* Issues cp.async copies of the `nrows` rows of the work-group's tile into shared memory: row r
   (box coordinates by ROW_X) goes to dst + r * stride words as `nseg` 16-byte segments, from
   src + ((b * N + token) * heads + head) * width; zeros past the tile's valid part and past
   `width` elements. Uses the kernel's lid, NT, t, b, N, L1, L2 (and ROW_X, NA_TOKEN of
   na_tile.h); the caller commits and waits. */
#define STAGE_TILE_ROWS(dst, stride, nrows, nseg, src, heads, head, width)                      \
  for (int idx_ = lid; idx_ < (nrows) * (nseg); idx_ += NT) {                                  \
    const int row_ = idx_ / (nseg), seg_ = idx_ % (nseg);                                      \
    ROW_X(row_, x0_, x1_, x2_);                                                                \
    const int live_ =                                                                          \
        x0_ < t.valid[0] && x1_ < t.valid[1] && x2_ < t.valid[2] && seg_ * 8 < (width);        \
    const int tok_ = live_ ? NA_TOKEN(x0_, x1_, x2_, t.first, t.grp, L1, L2) : 0;              \
    CP_ASYNC_16(SMEM_ADDR(&(dst)[row_ * (stride) + seg_ * 4]),                                 \
                (src) + ((b * N + tok_) * (heads) + (head)) * (width) + seg_ * 8,              \
                live_ ? 16 : 0);                                                               \
  }

/* The chunk copies' map from a thread's segment index idx (lid + j * NT) to a (row, 16-byte
   segment) of a chunk of `rows` rows of `nseg` segments. CHUNK_PAIRS 0: row-major (at head dim
   64 a warp copies 4 rows x 8 segments), conflict-free in the padded row layouts. CHUNK_PAIRS
   1: a warp copies 16 rows x 2 segments (a 32-byte sector of each row). In the core-matrix
   layout of the WG tiles all segments of a row fall in one bank group, so row-major lanes
   wrote 8-way conflicted; pairs spread a warp's writes over all 32 banks. nseg must be even. */
#define SLOT_ROW(idx, nseg, rows) (CHUNK_PAIRS ? ((idx) >> 1) % (rows) : (idx) / (nseg))
#define SLOT_SEG(idx, nseg, rows) \
  (CHUNK_PAIRS ? (((idx) >> 1) / (rows)) * 2 + ((idx) & 1) : (idx) % (nseg))

/* Replaces per-thread boxes [lo, hi] by the warp's bounding box on the used axes. */
#define WARP_BOX(lo, hi)                                   \
  _Pragma("unroll") for (int a_ = 0; a_ < RANK; ++a_) {    \
    (lo)[a_] = na_warp_min((lo)[a_]);                      \
    (hi)[a_] = na_warp_max((hi)[a_]);                      \
  }

#endif /* NA_MMA_COMMON_H */
