/* Definitions every openna kernel shares: the problem's compile-time facts (with defaults so a
 * file compiles alone), storage types and their f32 conversions, and the per-axis window in
 * positions. OpenCL C 1.2, no extensions: f16 goes through vload_half/vstore_half, which work on
 * devices without cl_khr_fp16, and bf16 through bit conversion. */
#ifndef NA_COMMON_H
#define NA_COMMON_H

#include "na_window.h"

#ifndef RANK
#define RANK 1 /* number of spatial axes, 1..3 */
#endif
#ifndef DTYPE
#define DTYPE 0 /* storage of q, k, v, out and gradients: 0 f32, 1 f16, 2 bf16 */
#endif
#ifndef HD
#define HD 32 /* head_dim of q and k */
#endif
#ifndef HDV
#define HDV HD /* head_dim of v and out */
#endif
/* Per axis: kernel size, stride, dilation, causal. Axes past RANK are 1, 1, 1, 0. */
#ifndef K0
#define K0 3
#endif
#ifndef K1
#define K1 1
#endif
#ifndef K2
#define K2 1
#endif
#ifndef S0
#define S0 1
#endif
#ifndef S1
#define S1 1
#endif
#ifndef S2
#define S2 1
#endif
#ifndef DIL0
#define DIL0 1
#endif
#ifndef DIL1
#define DIL1 1
#endif
#ifndef DIL2
#define DIL2 1
#endif
#ifndef CAUSAL0
#define CAUSAL0 0
#endif
#ifndef CAUSAL1
#define CAUSAL1 0
#endif
#ifndef CAUSAL2
#define CAUSAL2 0
#endif

/* Compile-time per-axis lookups; with a constant axis they fold away. */
#define AX_K(a) ((a) == 0 ? K0 : (a) == 1 ? K1 : K2)
#define AX_S(a) ((a) == 0 ? S0 : (a) == 1 ? S1 : S2)
#define AX_D(a) ((a) == 0 ? DIL0 : (a) == 1 ? DIL1 : DIL2)
#define AX_C(a) ((a) == 0 ? CAUSAL0 : (a) == 1 ? CAUSAL1 : CAUSAL2)

#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f
#define FAR (1 << 29) /* a box coordinate outside every window (keys or queries past a box) */

/* ---- storage ---------------------------------------------------------------------------- */
/* LOADF / STOREF: element i of storage p as a float and back; LOADF16: elements i..i+15 as a
   float16 (any alignment of the element type). */
#if DTYPE == 0
typedef float stor_t;
#define LOADF(p, i) ((p)[(i)])
#define STOREF(p, i, x) ((p)[(i)] = (x))
#define LOADF16(p, i) vload16(0, (p) + (i))
#elif DTYPE == 1
typedef half stor_t;
#define LOADF(p, i) vload_half((i), (p))
#define STOREF(p, i, x) vstore_half_rte((x), (i), (p))
#define LOADF16(p, i) vload_half16(0, (p) + (i))
#elif DTYPE == 2
typedef ushort stor_t;
#define LOADF(p, i) as_float(((uint)(p)[(i)]) << 16)
#define STOREF(p, i, x) ((p)[(i)] = na_f32_to_bf16(x))
#define LOADF16(p, i) as_float16(convert_uint16(vload16(0, (p) + (i))) << 16)
#else
#error "DTYPE must be 0 (f32), 1 (f16) or 2 (bf16)"
#endif

/* Round to nearest even; NaN stays NaN (quiet). */
NA_FN ushort na_f32_to_bf16(float f) {
  uint u = as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (ushort)(u >> 16);
}

#if DTYPE != 0
/* Two 16-bit storage values packed in a 32-bit word (x: the one at the lower address) as
   floats, exactly. */
NA_FN float2 na_unpack2(uint u) {
#if DTYPE == 1
  uint w = u;
  const __private half* h = (const __private half*)&w;
  return (float2)(vload_half(0, h), vload_half(1, h));
#else
  return (float2)(as_float(u << 16), as_float(u & 0xffff0000u));
#endif
}
/* s + the dot product of two packed pairs (a: x then y), lower element first. */
NA_FN float na_dot_pairs(float s, uint a, uint b) {
  const float2 x = na_unpack2(a), y = na_unpack2(b);
  return fma(x.y, y.y, fma(x.x, y.x, s));
}
#endif

/* ---- per-axis windows in positions ------------------------------------------------------- */

/* Window of query position i on an axis of length L: positions first, first + d, ..., count. */
NA_FN void na_axis_window(int i, int L, int K, int s, int d, int causal, int* first, int* count) {
  const int g = i % d, ii = i / d;
  const int lg = na_group_len(L, d, g);
  const int ws = na_win_start(ii, lg, K, s, causal);
  *first = ws * d + g;
  *count = na_win_end(ii, lg, K, s, causal) - ws;
}

/* Queries (positions first, first + d, ...) whose windows hold key position j. */
NA_FN void na_axis_inverse(int j, int L, int K, int s, int d, int causal, int* first,
                            int* count) {
  const int g = j % d, jj = j / d;
  const int lg = na_group_len(L, d, g);
  const int lo = na_inv_lo(jj, lg, K, s, causal);
  *first = lo * d + g;
  *count = na_inv_hi(jj, lg, K, s, causal) - lo + 1;
}

#endif /* NA_COMMON_H */
