/* D_i = dot(d_out_i, out_i) per (batch, token, head): the one statistic the backward needs
 * besides the forward's lse. One work-item per row, f32 accumulation. */
#include "na_common.h"

__kernel void na_delta(__global const stor_t* out, __global const stor_t* d_out,
                       __global float* delta, int rows, int hdv) {
  const int row = get_global_id(0);
  if (row >= rows) return;
  float s = 0.0f;
  for (int d = 0; d < hdv; ++d) s += LOADF(out, row * hdv + d) * LOADF(d_out, row * hdv + d);
  delta[row] = s;
}
