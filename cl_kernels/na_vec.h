/* VW-wide float and int vectors for the register tiles of the fused kernels (explicit SIMD on
 * CPUs, 16-byte local-memory accesses on GPUs), with loads, stores and horizontal max / sum. */
#ifndef NA_VEC_H
#define NA_VEC_H

#include "na_common.h"

#ifndef VW
#define VW 4 /* vector width: 1, 2, 4, 8 or 16 */
#endif

#if VW == 1
typedef float vec_t;
typedef int ivec_t;
#define VLOAD(p) (*(p))
#define VSTORE(x, p) (*(p) = (x))
#define VMAX(x) (x)
#define VSUM(x) (x)
#elif VW == 2
typedef float2 vec_t;
typedef int2 ivec_t;
#define VLOAD(p) vload2(0, (p))
#define VSTORE(x, p) vstore2((x), 0, (p))
#define VMAX(x) fmax((x).s0, (x).s1)
#define VSUM(x) ((x).s0 + (x).s1)
#elif VW == 4
typedef float4 vec_t;
typedef int4 ivec_t;
#define VLOAD(p) vload4(0, (p))
#define VSTORE(x, p) vstore4((x), 0, (p))
#define VMAX(x) na_max4(x)
#define VSUM(x) na_sum4(x)
#elif VW == 8
typedef float8 vec_t;
typedef int8 ivec_t;
#define VLOAD(p) vload8(0, (p))
#define VSTORE(x, p) vstore8((x), 0, (p))
#define VMAX(x) na_max4(fmax((x).lo, (x).hi))
#define VSUM(x) na_sum4((x).lo + (x).hi)
#elif VW == 16
typedef float16 vec_t;
typedef int16 ivec_t;
#define VLOAD(p) vload16(0, (p))
#define VSTORE(x, p) vstore16((x), 0, (p))
#define VMAX(x) na_max4(fmax(fmax((x).lo.lo, (x).lo.hi), fmax((x).hi.lo, (x).hi.hi)))
#define VSUM(x) na_sum4(((x).lo.lo + (x).lo.hi) + ((x).hi.lo + (x).hi.hi))
#else
#error "VW must be 1, 2, 4, 8 or 16"
#endif

NA_FN float na_max4(float4 x) { return fmax(fmax(x.s0, x.s1), fmax(x.s2, x.s3)); }
NA_FN float na_sum4(float4 x) { return (x.s0 + x.s1) + (x.s2 + x.s3); }


#endif /* NA_VEC_H */
