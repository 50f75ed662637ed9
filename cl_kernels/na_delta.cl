/* D_i = dot(d_out_i, out_i) per (batch, token, head): the one statistic the backward needs
 * besides the forward's lse. f32 accumulation, and a fixed summation order (deterministic).
 *   DLANES == 1: one work-item per row, reading the row front to back (CPUs: the row is one
 *                work-item's contiguous stream) 16 elements at a time into 16 running sums,
 *                added up as a fixed tree, then the elements past the last 16 one by one.
 *   DLANES > 1:  DLANES work-items per row (a power of two up to 32) in work-groups of DWG, each
 *                summing the row's elements lane, lane + DLANES, ..., then a tree in local memory;
 *                neighbouring work-items read neighbouring elements (GPUs: coalesced).
 *   DVEC == 8 (with DLANES > 1, 16-bit dtypes, hdv a multiple of 8): each work-item reads 8
 *                elements of a row at once (16-byte loads); work-item `sub` sums the vectors
 *                sub, sub + DLANES, ..., each in element order. */
#include "na_common.h"

#ifndef DLANES
#define DLANES 1
#endif
#ifndef DWG
#define DWG 256
#endif

#if DLANES == 1
__kernel void na_delta(__global const stor_t* out, __global const stor_t* d_out,
                       __global float* delta, int rows, int hdv) {
  const int row = get_global_id(0);
  if (row >= rows) return;
  /* 16-wide (PoCL 3.1 read the rows one scalar at a time: 0.43 ms for 64x64 x 4 heads x 64
     on CPU2). */
  float16 acc = (float16)(0.0f);
  int d = 0;
  for (; d + 16 <= hdv; d += 16)
    acc = fma(LOADF16(out, row * hdv + d), LOADF16(d_out, row * hdv + d), acc);
  const float8 a8 = acc.lo + acc.hi;
  const float4 a4 = a8.lo + a8.hi;
  const float2 a2 = a4.lo + a4.hi;
  float s = a2.x + a2.y;
  for (; d < hdv; ++d) s += LOADF(out, row * hdv + d) * LOADF(d_out, row * hdv + d);
  delta[row] = s;
}
#else
#if DWG % DLANES != 0 || (DLANES & (DLANES - 1)) != 0 || DLANES > 32
#error "DLANES must be a power of two up to 32 dividing DWG"
#endif
#ifndef DVEC
#define DVEC 1
#endif
#if DVEC == 8
#if DTYPE == 0
#error "DVEC 8 reads 16-bit rows"
#endif
#elif DVEC != 1
#error "DVEC must be 1 or 8"
#endif
__kernel __attribute__((reqd_work_group_size(DWG, 1, 1))) void na_delta(
    __global const stor_t* out, __global const stor_t* d_out, __global float* delta, int rows,
    int hdv) {
  __local float red[DWG];
  const int lid = get_local_id(0);
  const int sub = lid % DLANES;
  const int row = get_group_id(0) * (DWG / DLANES) + lid / DLANES;
  float s = 0.0f;
#if DVEC == 8
  if (row < rows) {
    __global const uint4* o4 = (__global const uint4*)(out + row * hdv);
    __global const uint4* g4 = (__global const uint4*)(d_out + row * hdv);
    for (int d = sub; d < hdv / 8; d += DLANES) {
      const uint4 a = o4[d], b = g4[d];
      s = na_dot_pairs(s, a.x, b.x);
      s = na_dot_pairs(s, a.y, b.y);
      s = na_dot_pairs(s, a.z, b.z);
      s = na_dot_pairs(s, a.w, b.w);
    }
  }
#else
  if (row < rows)
    for (int d = sub; d < hdv; d += DLANES)
      s += LOADF(out, row * hdv + d) * LOADF(d_out, row * hdv + d);
#endif
  red[lid] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
  for (int w = DLANES / 2; w > 0; w >>= 1) {
    if (sub < w) red[lid] += red[lid + w];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (sub == 0 && row < rows) delta[row] = red[lid];
}
#endif
