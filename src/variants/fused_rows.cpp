// Host side of the fused forward's rows (offset) form (FORM=2): scratch layout, preconditions,
// launch (K/V transpose, then the forward) and simulator. See fused_rows.hpp and
// cl_kernels/na_fused_fwd_rows.cl.
#include "variants/fused_rows.hpp"

#include <algorithm>
#include <climits>

#include "core/errors.hpp"
#include "core/window.hpp"

namespace openna {

namespace {

constexpr const char* kRowsFile = "na_fused_fwd_rows.cl";
constexpr int kLanes = 16;      // queries per vector on the last axis
constexpr int kTransposeCb = 4; // 16-token blocks per work-item of the transpose (CB)

}  // namespace

RowsLayout rows_layout(const Problem& p) {
  const Axis& last = p.axis[p.rank - 1];
  const std::int64_t longest = (last.length + last.dilation - 1) / last.dilation;
  RowsLayout l;
  l.rows = static_cast<int>(p.tokens() / last.length);
  l.rs = 16 + (longest + 15) / 16 * 16;
  l.bs = 16 + l.rows * (p.head_dim + p.head_dim_v) * l.rs;
  l.floats = static_cast<std::int64_t>(p.batch) * p.heads_kv * last.dilation * l.bs;
  return l;
}

void rows_box(const Problem& p, int nr, int tq[3]) {
  tq[0] = tq[1] = tq[2] = 1;
  tq[p.rank - 1] = kLanes;
  if (p.rank >= 2) tq[p.rank - 2] = nr;
}

std::string rows_tile_error(const Problem& p, const int tq[3], int tk, int vw, Pass pass) {
  if (pass != Pass::Forward) return "FORM=2 (rows form) is forward only";
  if (vw != kLanes) return "VW must be 16 in the rows form";
  const int la = p.rank - 1;
  if (tq[la] != kLanes) return "the rows form needs TQ" + std::to_string(la) + "=16 (the last axis)";
  for (int a = 0; a < 3; ++a) {
    if (a == la || (a == la - 1 && a >= 0)) continue;
    if (tq[a] != 1) return "the rows form needs TQ" + std::to_string(a) + "=1";
  }
  const int nr = p.rank >= 2 ? tq[la - 1] : 1;
  if (nr != 1 && nr != 2 && nr != 4) {
    return "the rows form takes 1, 2 or 4 rows (TQ" + std::to_string(la - 1) + ")";
  }
  if (tk < 1 || tk > 32) return "TK outside 1..32";
  if (tk * nr > 32) return "TK x rows over 32 score vectors in the rows form";
  const RowsLayout l = rows_layout(p);
  if (l.floats > INT_MAX) {
    return "transposed K/V scratch of " + std::to_string(l.floats) +
           " floats over the kernels' 32-bit index limit";
  }
  return "";
}

void rows_forward(Context& ctx, const Problem& p, const int tq[3], const FwdArgs& a,
                  const std::string& opts_in, const std::string& label, Events* events) {
  const RowsLayout l = rows_layout(p);
  const std::size_t bytes = static_cast<std::size_t>(l.floats) * sizeof(float);
  const cl_ulong max_alloc = ctx.device().device.getInfo<CL_DEVICE_MAX_MEM_ALLOC_SIZE>();
  if (bytes > max_alloc) {
    throw Error(OPENNA_ERROR_OUT_OF_MEMORY,
                label + ": transposed K/V scratch of " + std::to_string(bytes) +
                    " bytes over the device's largest allocation (" + std::to_string(max_alloc) +
                    " bytes); the lanes form (FORM=1) needs none");
  }
  const std::string opts = opts_in + " -DCB=" + std::to_string(kTransposeCb);
  cl::Kernel k_tr = ctx.kernel(kRowsFile, opts, "na_rows_kv_transpose", label);
  cl::Kernel k_fwd = ctx.kernel(kRowsFile, opts, "na_fused_fwd_rows", label);
  check_fits(k_tr, ctx.device(), 1, label);
  check_fits(k_fwd, ctx.device(), 1, label);
  // Held until both kernels are enqueued (Context::scratch).
  std::unique_lock<std::mutex> held = ctx.lock_scratch();
  const cl::Buffer kvt =
      ctx.scratch(bytes, held, label + ": allocating the transposed K/V scratch");
  const Axis& last = p.axis[p.rank - 1];
  const int L0 = p.axis[0].length, L1 = p.axis[1].length, L2 = p.axis[2].length;
  const int rs = static_cast<int>(l.rs), bs = static_cast<int>(l.bs);
  const int nchunk = static_cast<int>((l.rs / 16 + kTransposeCb - 1) / kTransposeCb);
  Geometry gt;
  gt.global[0] = static_cast<std::size_t>(p.batch) * p.heads_kv * last.dilation * l.rows * nchunk;
  int nt[3];
  const Geometry g = tiled_geometry(p, tq, 1, p.heads, nt);
  Events ev;
  ev.push_back(ctx.launch(k_tr, gt, MemArg{a.k}, MemArg{a.v}, kvt, L0, L1, L2, p.heads_kv,
                          p.head_dim, p.head_dim_v, l.rows, rs, bs));
  ev.push_back(ctx.launch(k_fwd, g, MemArg{a.q}, kvt, MemArg{a.out}, MemArg{a.lse}, p.batch, L0,
                          L1, L2, p.heads, p.heads_kv, p.head_dim, p.head_dim_v, p.scale, nt[0],
                          nt[1], nt[2], rs, bs));
  if (events) events->insert(events->end(), ev.begin(), ev.end());
}

SimResult simulate_rows(const Problem& p, const int tq[3], int tk) {
  SimResult r;
  const int la = p.rank - 1;
  int tiles[3] = {1, 1, 1};
  for (int a = 0; a < p.rank; ++a) tiles[a] = tiles_on_axis(p.axis[a], tq[a]);
  const std::int64_t rows_per_tile = static_cast<std::int64_t>(tq[0]) * tq[1] * tq[2];
  double steps_total = 0;
  for (int t0 = 0; t0 < tiles[0]; ++t0)
    for (int t1 = 0; t1 < tiles[1]; ++t1)
      for (int t2 = 0; t2 < tiles[2]; ++t2) {
        const int t[3] = {t0, t1, t2};
        std::int64_t items = 1, valid = 1;
        for (int a = 0; a < p.rank; ++a) {
          const Axis& ax = p.axis[a];
          const TileAxis ta = tile_axis(ax, tq[a], t[a]);
          valid *= ta.valid;
          if (ta.valid == 0) break;
          if (a != la) {
            items *= tile_key_range(ax, ta).count;
            continue;
          }
          int omin = INT_MAX, omax = INT_MIN;
          for (int i = ta.first; i < ta.first + ta.valid; ++i) {
            omin = std::min(omin, na_win_start(i, ta.group_len, ax.kernel, ax.stride, ax.causal) - i);
            omax = std::max(omax, na_win_end(i, ta.group_len, ax.kernel, ax.stride, ax.causal) - 1 - i);
          }
          items *= omax - omin + 1;
        }
        if (valid == 0) continue;
        ++r.query_tiles;
        const double steps = static_cast<double>((items + tk - 1) / tk);
        steps_total += steps;
        r.computed += steps * tk * static_cast<double>(rows_per_tile);
      }
  // Dense attention with the same tiles: every key row, offsets covering the whole last axis.
  double dense_tiles = 1;
  for (int a = 0; a < p.rank; ++a) dense_tiles *= (p.axis[a].length + tq[a] - 1) / tq[a];
  const std::int64_t dense_items =
      p.tokens() / p.axis[la].length * (p.axis[la].length + kLanes - 1);
  r.dense_computed = dense_tiles * static_cast<double>(rows_per_tile) *
                     static_cast<double>((dense_items + tk - 1) / tk) * tk;
  r.kv_chunks_per_tile = r.query_tiles ? steps_total / static_cast<double>(r.query_tiles) : 0;
  r.useful = static_cast<double>(p.attended_pairs()) / (p.batch * p.heads);
  return r;
}

}  // namespace openna
