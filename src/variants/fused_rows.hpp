// Host side of the fused forward's rows (offset) form, FORM=2 (cl_kernels/na_fused_fwd_rows.cl):
// the transposed K/V scratch layout, what the form accepts, its launch and its simulator. The
// fused variant (fused.cpp) owns the configuration keys and calls these for FORM=2.
#pragma once

#include <cstdint>
#include <string>

#include "variants/variant.hpp"

namespace openna {

// The transposed K/V scratch (layout in the kernel file): `rows` positions on the axes before
// the last, line stride `rs` (16 + the longest dilation group of the last axis rounded up to
// 16), one block of `bs` floats (16 + rows * (head_dim + head_dim_v) * rs) per batch item, kv
// head and dilation group of the last axis, `floats` in all.
struct RowsLayout {
  int rows = 1;
  std::int64_t rs = 0, bs = 0, floats = 0;
};
RowsLayout rows_layout(const Problem& p);

// The rows form's query box: 16 on the last axis, `nr` on axis rank-2 (rank >= 2), 1 elsewhere.
void rows_box(const Problem& p, int nr, int tq[3]);

// "" when the rows form can run the problem with query box `tq`, `tk` items per step and
// vector width `vw`; otherwise why not.
std::string rows_tile_error(const Problem& p, const int tq[3], int tk, int vw, Pass pass);

// Enqueues the K/V transpose into the context's scratch and the forward kernel (`opts`: the
// fused variant's compile options for the tile).
void rows_forward(Context& ctx, const Problem& p, const int tq[3], const FwdArgs& a,
                  const std::string& opts, const std::string& label, Events* events);

// What the rows form computes per (batch, head): per tile, 16 x NR lanes times the (key row,
// offset) items rounded up to whole steps of `tk`.
SimResult simulate_rows(const Problem& p, const int tq[3], int tk);

}  // namespace openna
