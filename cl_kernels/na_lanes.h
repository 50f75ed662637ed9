/* The inner products of the lanes-form kernels (na_fused_*_lanes.cl), where a tile's queries (or
 * keys) sit in the lanes of NV vectors of VW and the other side is read row by row as broadcast
 * scalars: one definition of each loop nest for the forward, dQ and dK/dV kernels. They need
 * TK, NV, VW and BQ of the including kernel. */
#ifndef NA_LANES_H
#define NA_LANES_H

#include "na_vec.h"

/* acc[j][n] += sum_{d < dim} row_j[d] * lanes[d][n]: TK rows (global pointers rows[j]) against a
   transposed tile in private memory (lanes[d * BQ + n * VW], NV vectors per d). */
#define LANES_DOT(acc, rows, lanes, dim)                                    \
  for (int d_ = 0; d_ < (dim); ++d_) {                                      \
    vec_t lv_[NV];                                                          \
    _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_)                       \
        lv_[n_] = VLOAD(&(lanes)[d_ * BQ + n_ * VW]);                       \
    _Pragma("unroll") for (int j_ = 0; j_ < TK; ++j_) {                     \
      const vec_t r_ = (vec_t)(LOADF((rows)[j_], d_));                      \
      _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_)                     \
          (acc)[j_][n_] = fma(r_, lv_[n_], (acc)[j_][n_]);                  \
    }                                                                       \
  }

/* out[d][n] += sum_j row_j[d] * coef[j][n] for d < dim (out in private memory, NV vectors per d):
   the rows weighted by per-lane coefficients. */
#define LANES_ACCUMULATE(out, rows, coef, dim)                              \
  for (int d_ = 0; d_ < (dim); ++d_) {                                      \
    float r_[TK];                                                           \
    _Pragma("unroll") for (int j_ = 0; j_ < TK; ++j_)                       \
        r_[j_] = LOADF((rows)[j_], d_);                                     \
    _Pragma("unroll") for (int n_ = 0; n_ < NV; ++n_) {                     \
      vec_t a_ = (out)[d_ * NV + n_];                                       \
      _Pragma("unroll") for (int j_ = 0; j_ < TK; ++j_)                     \
          a_ = fma((vec_t)(r_[j_]), (coef)[j_][n_], a_);                    \
      (out)[d_ * NV + n_] = a_;                                             \
    }                                                                       \
  }

/* The next box coordinates in row-major order (extents n1, n2 of axes 1 and 2). */
#define NEXT_COORDS(c0, c1, c2, n1, n2) \
  do {                                  \
    if (++(c2) == (n2)) {               \
      (c2) = 0;                         \
      if (++(c1) == (n1)) {             \
        (c1) = 0;                       \
        ++(c0);                         \
      }                                 \
    }                                   \
  } while (0)

#endif /* NA_LANES_H */
