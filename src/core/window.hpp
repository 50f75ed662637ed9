// Host-side view of the shared per-axis window rule (cl_kernels/na_window.h) in positions of the
// axis rather than group coordinates: used for FLOP counts, tile planning and the simulator.
// The host reference (src/testing/reference.cpp) deliberately does NOT use this: it is written
// from SPEC.md on its own, so that the two can check each other.
#pragma once

#include <algorithm>

#include "core/problem.hpp"

namespace openna {

#define NA_FN inline
#include "na_window.h"
#undef NA_FN

// Positions first, first + step, ..., count of them.
struct AxisRange {
  int first = 0;
  int count = 0;
  int step = 1;
};

inline AxisRange axis_window(const Axis& ax, int i) {
  const int d = ax.dilation, g = i % d, ii = i / d;
  const int lg = na_group_len(ax.length, d, g);
  const int s = na_win_start(ii, lg, ax.kernel, ax.stride, ax.causal);
  const int e = na_win_end(ii, lg, ax.kernel, ax.stride, ax.causal);
  return {s * d + g, e - s, d};
}

inline AxisRange axis_inverse(const Axis& ax, int j) {
  const int d = ax.dilation, g = j % d, jj = j / d;
  const int lg = na_group_len(ax.length, d, g);
  const int lo = na_inv_lo(jj, lg, ax.kernel, ax.stride, ax.causal);
  const int hi = na_inv_hi(jj, lg, ax.kernel, ax.stride, ax.causal);
  return {lo * d + g, hi - lo + 1, d};
}

}  // namespace openna
