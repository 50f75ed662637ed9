/* VW-wide float and int vectors for the register tiles of the fused kernels (explicit SIMD on
 * CPUs, 16-byte local-memory accesses on GPUs), with loads, stores and horizontal max / sum. */
#ifndef NA_VEC_H
#define NA_VEC_H

#include "na_common.h"

#ifndef VW
#define VW 4 /* vector width: 1, 2, 4, 8 or 16 */
#endif

#define NA_CAT_(a, b) a##b
#define NA_CAT(a, b) NA_CAT_(a, b)
/* Reinterpreting and converting casts between vec_t and ivec_t (OpenCL C has no as_int1), and
   VANY(c): whether any lane of a comparison's result is true. A scalar comparison gives 1, not
   -1, and any() tests the sign bit, so with VW 1 the result is the comparison itself. */
#if VW == 1
#define VAS_INT(x) as_int(x)
#define VAS_FLOAT(x) as_float(x)
#define VCONVERT_FLOAT(x) convert_float(x)
#define VANY(c) (c)
#else
#define VAS_INT(x) NA_CAT(as_int, VW)(x)
#define VAS_FLOAT(x) NA_CAT(as_float, VW)(x)
#define VCONVERT_FLOAT(x) NA_CAT(convert_float, VW)(x)
#define VANY(c) NA_CAT(na_any, VW)(c)
#endif
/* any() as a tree of ORs of halves (PoCL 3.1 extracts and tests every lane one by one). */
NA_FN int na_any2(int2 c) { return (c.x | c.y) < 0; }
NA_FN int na_any4(int4 c) { return na_any2(c.lo | c.hi); }
NA_FN int na_any8(int8 c) { return na_any4(c.lo | c.hi); }
NA_FN int na_any16(int16 c) { return na_any8(c.lo | c.hi); }

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


/* 2^x for the lanes kernels, whose CPU compilers expand the library exp2 into far more work
 * (PoCL 3.1: two 8-wide halves through SLEEF, ~30% of the forward's time). Range reduction to
 * x = n + f with |f| <= 1/2, 2^f by a degree-5 polynomial fitted for the least largest relative
 * error with 1 as its constant term (< 1.7e-7 evaluated in f32; the degree-6 Taylor polynomial
 * it replaced: 2.2e-7, one FMA more), 2^n through the exponent bits. Exact 0 below -126 and for
 * -inf (masked scores), NaN stays NaN; inputs are at most 127 (the forward's softmax arguments
 * are at most LANES_SLACK of na_lanes.h, 8; the backward's at most 0). */
NA_FN vec_t na_exp2v(vec_t x) {
  const vec_t xc = select(x, (vec_t)(-127.0f), x < (vec_t)(-127.0f));
  /* Round to nearest by adding 1.5 * 2^23 (exact for |x| < 2^22 in IEEE arithmetic, which
     is what the kernels are compiled with): n sits in the low mantissa bits. */
  const vec_t t = xc + (vec_t)(12582912.0f);
  const vec_t f = xc - (t - (vec_t)(12582912.0f));
  vec_t p = (vec_t)(1.3264685403555632e-3f);
  p = fma(p, f, (vec_t)(9.6714980900287628e-3f));
  p = fma(p, f, (vec_t)(5.5507335811853409e-2f));
  p = fma(p, f, (vec_t)(2.4022242426872253e-1f));
  p = fma(p, f, (vec_t)(6.9314700365066528e-1f));
  p = fma(p, f, (vec_t)(1.0f));
  const vec_t scale2n = VAS_FLOAT((VAS_INT(t) - 0x4B400000 + 127) << 23);
  return select(p * scale2n, (vec_t)(0.0f), x < (vec_t)(-126.0f));
}

/* log2(x) for the lanes kernels' lse (x is a softmax sum: 0, at least 1, inf or NaN), where
 * PoCL 3.1 calls a scalar library log2 per lane. x = 2^e * f with f in [sqrt(1/2), sqrt(2)),
 * log2(f) = 2 atanh(u) / ln 2 with u = (f - 1) / (f + 1), |u| < 0.172, by its odd series to
 * u^9 (truncation < 4e-10). Exact results for 0 (-inf), inf and NaN; subnormal x (never a
 * softmax sum) are treated as 0. */
NA_FN vec_t na_log2v(vec_t x) {
  const ivec_t bits = VAS_INT(x);
  /* Mantissa in [1, 2), halved above sqrt(2) with the exponent one higher (big: 0 or 1). */
  const ivec_t mbits = (bits & (ivec_t)(0x007fffff)) | (ivec_t)(0x3f800000);
  const ivec_t big = select((ivec_t)(0), (ivec_t)(1), mbits > (ivec_t)(0x3fb504f3));
  const vec_t f = VAS_FLOAT(mbits - big * (ivec_t)(0x00800000));
  const ivec_t e = ((bits >> 23) & (ivec_t)(0xff)) - (ivec_t)(127) + big;
  const vec_t u = (f - (vec_t)(1.0f)) / (f + (vec_t)(1.0f));
  const vec_t u2 = u * u;
  vec_t p = (vec_t)(2.0f / 9.0f);
  p = fma(p, u2, (vec_t)(2.0f / 7.0f));
  p = fma(p, u2, (vec_t)(2.0f / 5.0f));
  p = fma(p, u2, (vec_t)(2.0f / 3.0f));
  p = fma(p, u2, (vec_t)(2.0f));
  const vec_t r = fma(p * u, (vec_t)(LOG2E), VCONVERT_FLOAT(e));
  /* Outside the normal positive range: 0 and subnormals give -inf, inf stays, NaN and
     negative x give NaN. */
  vec_t special = select(x, (vec_t)(-INFINITY), x < (vec_t)(FLT_MIN));
  special = select(special, (vec_t)(NAN), x < (vec_t)(0.0f));
  return select(special, r, (x >= (vec_t)(FLT_MIN)) & (x < (vec_t)(INFINITY)));
}

#endif /* NA_VEC_H */
