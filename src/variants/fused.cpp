// Host side of the fused variant: tile configurations (validity, defaults per device kind,
// tuning candidates), launch geometry and the simulator hook.
#include "variants/fused.hpp"

#include <algorithm>
#include <climits>

#include "core/errors.hpp"
#include "core/window.hpp"
#include "variants/fused_rows.hpp"

namespace openna {

namespace {

constexpr const char* kFwdFile = "na_fused_fwd.cl";
constexpr const char* kFwdLanesFile = "na_fused_fwd_lanes.cl";
constexpr const char* kBwdLanesFile = "na_fused_bwd_lanes.cl";
// Work-groups per compute unit of a lanes-form launch that takes its tiles from a counter.
constexpr std::size_t kLanesGroupsPerUnit = 4;
std::size_t lanes_counter_groups(Context& ctx) {
  return kLanesGroupsPerUnit * std::max(1u, ctx.device().compute_units);
}
constexpr const char* kBwdFile = "na_fused_bwd.cl";

// FORM=0: the work-group form (na_fused_fwd.cl, GPUs); FORM=1: the lanes form
// (na_fused_fwd_lanes.cl, one work-item per tile with queries in vector lanes, CPUs); FORM=2:
// the rows form (na_fused_fwd_rows.cl, forward only: 16 queries of a row of the last axis in
// the lanes, keys addressed by offset in a transposed copy of K and V; fused_rows.cpp).
enum Form { kWorkGroup = 0, kLanes = 1, kRows = 2 };

struct Tile {
  int form = kWorkGroup;
  int tq[3] = {1, 1, 1};
  int tk = 16, rq = 1, tc = 1, vw = 1;
  // Backward only (lanes and work-group forms): 1 for the 5-product backward (dQ partials
  // through a scratch buffer), 0 for the 7-product one (its own dQ kernel); -1 where the key
  // is absent (0).
  int dq = -1;
  // 5-product lanes backward only: key tiles per column on axis 0 whose dQ partials share one
  // scratch slot (na_bwd_dkdv_lanes_column); 0 for the whole axis (a dilation group's tiles),
  // kNoDqc where the key is absent (one tile per slot, as 1; the work-group form's only way).
  static constexpr int kNoDqc = INT_MIN;
  int dqc = kNoDqc;
  int bq() const { return tq[0] * tq[1] * tq[2]; }
  int nt() const { return form == kWorkGroup ? bq() / rq * tc : 1; }
};

Tile tile_of(const Config& c) {
  Tile t;
  t.form = c.get("FORM", kWorkGroup);
  t.tq[0] = c.get("TQ0", 1);
  t.tq[1] = c.get("TQ1", 1);
  t.tq[2] = c.get("TQ2", 1);
  t.tk = c.get("TK", 16);
  t.rq = c.get("RQ", 1);
  t.tc = c.get("TC", 1);
  t.vw = c.get("VW", 1);
  t.dq = c.get("DQ", -1);
  t.dqc = c.get("DQC", Tile::kNoDqc);
  return t;
}

Config config_of(const Tile& t) {
  Config c;
  c.set("FORM", t.form);
  c.set("TQ0", t.tq[0]);
  c.set("TQ1", t.tq[1]);
  c.set("TQ2", t.tq[2]);
  c.set("TK", t.tk);
  if (t.form == kWorkGroup) {
    c.set("RQ", t.rq);
    c.set("TC", t.tc);
  }
  c.set("VW", t.vw);
  if (t.dq >= 0) c.set("DQ", t.dq);
  if (t.dqc != Tile::kNoDqc) c.set("DQC", t.dqc);
  return c;
}

// Tiles of one dilation group on an axis (each group's tiles are consecutive, as the kernels
// number them).
int group_tiles(const Axis& ax, int tq) { return tiles_on_axis(ax, tq) / ax.dilation; }

// Key tiles per column of the 5-product backward (DQC; absent: 1), at most a dilation group's
// tiles on axis 0.
int dq_column_tiles(const Problem& p, const Tile& t) {
  const int per_group = group_tiles(p.axis[0], t.tq[0]);
  return t.dqc == Tile::kNoDqc ? 1 : t.dqc == 0 ? per_group : std::min(t.dqc, per_group);
}

// The 5-product backward's dQ scratch (lanes form, DQ=1): one slot per (batch, query head,
// column of key tiles: dq_column_tiles on axis 0, one tile on the others) of `slot_rows` rows
// (the largest union of a column's inverse boxes, i.e. the queries that see any key of the
// column) of head_dim-bucket floats.
struct DqScratch {
  std::int64_t slot_rows = 0;
  std::int64_t floats = 0;
};

DqScratch dq_scratch(const Problem& p, const Tile& t) {
  std::int64_t rows = 1, slots = 1;
  for (int a = 0; a < p.rank; ++a) {
    const Axis& ax = p.axis[a];
    const int ct = a == 0 ? dq_column_tiles(p, t) : 1;
    const int per_group = group_tiles(ax, t.tq[a]), columns = (per_group + ct - 1) / ct;
    int widest = 1;
    for (int g = 0; g < ax.dilation; ++g)
      for (int c = 0; c < columns; ++c) {
        const TileAxis first = tile_axis(ax, t.tq[a], g * per_group + c * ct);
        if (first.valid == 0) continue;
        TileAxis last = first;  // the column's last tile with a valid key
        for (int i = c * ct + 1; i < std::min((c + 1) * ct, per_group); ++i) {
          const TileAxis ta = tile_axis(ax, t.tq[a], g * per_group + i);
          if (ta.valid > 0) last = ta;
        }
        const int lo = na_inv_lo(first.first, first.group_len, ax.kernel, ax.stride, ax.causal);
        const int hi =
            na_inv_hi(last.first + last.valid - 1, last.group_len, ax.kernel, ax.stride, ax.causal);
        widest = std::max(widest, hi - lo + 1);
      }
    rows *= widest;
    slots *= static_cast<std::int64_t>(ax.dilation) * columns;
  }
  // The work-group form's slots are head-dim major, written as float4 runs of 4 queries: rows
  // in multiples of 4.
  if (t.form == kWorkGroup) rows = (rows + 3) / 4 * 4;
  DqScratch s;
  s.slot_rows = rows;
  s.floats =
      static_cast<std::int64_t>(p.batch) * p.heads * slots * rows * head_dim_bucket(p.head_dim);
  return s;
}

// Whether a backward may take the 5-product path (the lanes default, the GPU default, the
// tuning candidates): only while its scratch stays within kDqScratchRatio (work-group form:
// kDqScratchRatioWorkGroup) times the (head-dim-bucket padded) size of Q, a quarter of the
// device memory and the 32-bit index range. The scratch grows like
// (1 + (kernel - 1) / (tile CT)) (1 + (kernel - 1) / tile)^(rank - 1) times Q (CT: the
// column's tiles, DQC), and writing and reading it back costs memory traffic that the saved
// dQ kernel must pay for. Measured on CPU2 (docs/PERFORMANCE.md, 2026-11-26, session 7), the
// 5-product backward against the 7-product one: 64x64 k13 faster with scratch 4x Q
// (whole-axis columns), 7x (columns of 4) and 10x (columns of 2: 14.15 against 15.21 ms),
// slower at 16x (one tile per slot: 17.39 against 15.75, its reduce alone reading 67 MB); 3-D
// 16^3 on 2x2x4 tiles with whole-axis columns faster at 10x (k7: 12.91 against 16.60 ms), 15x
// (k9: 26.84 against 32.53) and 21x (k11: 38.24 against 51.99); small-cpu faster from 2.5x to
// 6.25x. The bound keeps the memory use moderate as well. (Session 2's bound was 8, between
// 6.25x and 16x with one tile per slot.)
constexpr std::int64_t kDqScratchRatio = 16;
// The work-group form's bound (GPUs, one key tile per slot), where the scratch's traffic costs
// less against the products it saves: on the H100 in f32 the 5-product backward won at 10x Q
// (vision-2d, 24% faster) and 49x (flux-2d, 19%, a 2.5 GB scratch: every slot is as large as
// the largest inverse box, 28x28 queries at the tiles next to the border, where the windows
// pile up; an interior tile's is 20x20); docs/PERFORMANCE.md, session 9. (flux-2d's default
// tile is 4x8 since, with 8-row chunks: 28x Q.)
constexpr std::int64_t kDqScratchRatioWorkGroup = 64;

// The default DQC: columns as long as possible (the scratch shrinks and the reduce reads less)
// while the dK/dV kernel keeps at least kColumnTasksPerUnit columns per compute unit to share
// out from its counter (a column is a work-item's whole task). Whole axis 0 first (DQC=0),
// then powers of two down to one tile. Whole-axis columns gave 32 tasks per unit on 64x64 k13
// and 16 on small-cpu (2 units) and were the fastest there of 1, 2, 4 and whole.
constexpr std::int64_t kColumnTasksPerUnit = 16;

int default_dqc(const Problem& p, const DeviceInfo& dev, const Tile& t) {
  const int per_group = group_tiles(p.axis[0], t.tq[0]);
  std::int64_t others = static_cast<std::int64_t>(p.batch) * p.heads_kv * p.axis[0].dilation;
  for (int a = 1; a < p.rank; ++a) others *= tiles_on_axis(p.axis[a], t.tq[a]);
  const std::int64_t want = kColumnTasksPerUnit * std::max(1u, dev.compute_units);
  if (others >= want) return 0;
  int c = 1;
  while (2 * c < per_group) c *= 2;
  for (; c > 1; c /= 2)
    if (others * ((per_group + c - 1) / c) >= want) return c;
  return 1;
}

// Also within a quarter of the device's memory where that is known (the least largest
// allocation OpenCL allows a device), so that a default never asks for a scratch the device
// cannot allocate.
bool dq_scratch_fits(const Problem& p, const DeviceInfo& dev, const Tile& t) {
  const std::int64_t q_padded =
      static_cast<std::int64_t>(p.batch) * p.tokens() * p.heads * head_dim_bucket(p.head_dim);
  const DqScratch s = dq_scratch(p, t);
  if (dev.global_mem > 0 &&
      static_cast<unsigned long long>(s.floats) * sizeof(float) > dev.global_mem / 4) {
    return false;
  }
  const std::int64_t ratio = t.form == kWorkGroup ? kDqScratchRatioWorkGroup : kDqScratchRatio;
  return s.floats <= ratio * q_padded && s.floats <= INT_MAX;
}

// Local memory of the work-group kernels in bytes (must match na_fused_fwd.cl and
// na_fused_bwd.cl; the backward figure is the larger of its two kernels).
std::size_t local_bytes(const Tile& t, int hdp, int hdvp, Pass pass) {
  const std::size_t bq = t.bq(), tk = t.tk;
  // The large float arrays are 16-byte aligned (each rounded up here to whole 16-byte runs).
  const auto run16 = [](std::size_t floats) { return (floats + 3) / 4 * 4; };
  if (pass == Pass::Forward) {
    const std::size_t kv = std::max<std::size_t>(hdp * tk, tk * hdvp);
    return 4 * (run16(hdp * bq) + run16(kv) + run16(tk * bq) + 3 * bq) + 16 * tk;
  }
  // dQ kernel: the tile's Q and dO rows, the chunk's K and V rows, dS, lse and D per row, and
  // the chunks' double-buffered metadata (4 words per key).
  const std::size_t dq = run16(hdp * bq) + run16(hdvp * bq) + run16(hdp * tk) + run16(hdvp * tk) +
                         run16(bq * tk) + 2 * bq + 8 * tk;
  // dK/dV kernel: K (rows padded by two floats with DQ=1, KSTR), V, the chunk's Q and dO rows,
  // P^T and dS^T, and the chunks' double-buffered metadata (9 words per row).
  const std::size_t kstr = bq + (t.dq == 1 ? 2 : 0);
  const std::size_t dkdv = run16(hdp * kstr) + run16(hdvp * bq) + run16(hdp * tk) +
                           run16(hdvp * tk) + 2 * run16(bq * tk) + 18 * tk;
  return 4 * std::max(dq, dkdv);
}

std::string tile_error(const Problem& p, const DeviceInfo& dev, const Tile& t, Pass pass) {
  const int hdp = head_dim_bucket(p.head_dim), hdvp = head_dim_bucket(p.head_dim_v);
  for (int a = 0; a < 3; ++a) {
    if (t.tq[a] < 1 || t.tq[a] > 256) return "TQ" + std::to_string(a) + " outside 1..256";
    if (a >= p.rank && t.tq[a] != 1) return "TQ" + std::to_string(a) + " must be 1 past the rank";
  }
  if (t.tk < 1 || t.tk > 256) return "TK outside 1..256";
  if (t.vw != 1 && t.vw != 2 && t.vw != 4 && t.vw != 8 && t.vw != 16) return "VW must be 1, 2, 4, 8 or 16";
  if (t.dq != -1) {
    if (t.form == kRows || pass != Pass::Backward) {
      return "DQ applies to the backward of the lanes and work-group forms only";
    }
    if (t.dq != 0 && t.dq != 1)
      return "DQ must be 0 (7-product backward) or 1 (5-product, dQ scratch)";
  }
  if (t.dqc != Tile::kNoDqc) {
    if (t.dq != 1 || t.form != kLanes)
      return "DQC=" + std::to_string(t.dqc) +
             ": DQC applies to the 5-product lanes backward (FORM=1, DQ=1) only";
    if (t.dqc < 0 || t.dqc > 256) {
      return "DQC=" + std::to_string(t.dqc) +
             ": DQC must be 0 (a column spans the whole axis 0) or 1..256 key tiles per column";
    }
  }
  if (t.form == kRows) return rows_tile_error(p, t.tq, t.tk, t.vw, pass);
  if (t.form == kLanes) {
    if (t.bq() % t.vw != 0) return "VW must divide the query tile (" + std::to_string(t.bq()) + ")";
    if (t.tk > 32) return "TK over 32 (the lanes form keeps TK score vectors in registers)";
    if (t.bq() > 64) return "query tile over 64 in the lanes form";
    return "";
  }
  if (t.form != kWorkGroup) return "FORM must be 0 (work-group), 1 (lanes) or 2 (rows)";
  if (t.rq < 1 || t.bq() % t.rq != 0) return "RQ must divide the query tile (" + std::to_string(t.bq()) + ")";
  if (t.tc < 1 || t.tk % (t.tc * t.vw) != 0) return "TC * VW must divide TK";
  if (hdvp % (t.tc * t.vw) != 0) {
    return "TC * VW must divide the head_dim_v bucket " + std::to_string(hdvp);
  }
  if (pass == Pass::Backward && hdp % (t.tc * t.vw) != 0) {
    return "TC * VW must divide the head_dim bucket " + std::to_string(hdp);
  }
  if (t.rq * (t.tk / t.tc) > 256 || t.rq * (hdvp / t.tc) > 256) return "per-item register tile over 256";
  if (static_cast<std::size_t>(t.nt()) > dev.max_work_group_size) {
    return std::to_string(t.nt()) + " work-items over the device's " +
           std::to_string(dev.max_work_group_size);
  }
  const std::size_t local = local_bytes(t, hdp, hdvp, pass);
  if (local > dev.local_mem) {
    return std::to_string(local) + " bytes of local memory over the device's " +
           std::to_string(dev.local_mem);
  }
  return "";
}

}  // namespace

int head_dim_bucket(int dim) {
  for (int b : {16, 32, 48, 64, 80, 96, 128, 160, 192, 256})
    if (dim <= b) return b;
  return 0;
}

std::string FusedVariant::unsupported_reason(const Problem& p, const DeviceInfo& dev,
                                             Pass pass) const {
  if (head_dim_bucket(p.head_dim) == 0 || head_dim_bucket(p.head_dim_v) == 0) {
    return "head_dim " + std::to_string(p.head_dim) + "/" + std::to_string(p.head_dim_v) +
           " over the tiled variants' limit of 256";
  }
  const std::string why = config_error(p, dev, pass, default_config(p, dev, pass));
  if (!why.empty()) return "no tile configuration fits this device: " + why;
  return "";
}

namespace {

// Keys in the key box of a query tile in the middle of the grid (every axis's first dilation
// group), the box most tiles visit.
std::int64_t interior_key_box(const Problem& p, const int tq[3]) {
  std::int64_t keys = 1;
  for (int a = 0; a < p.rank; ++a) {
    const Axis& ax = p.axis[a];
    const int lg = na_group_len(ax.length, ax.dilation, 0);
    const int first = std::max(0, (lg / 2 / tq[a]) * tq[a]);
    const int last = std::min(first + tq[a] - 1, lg - 1);
    keys *= na_win_end(last, lg, ax.kernel, ax.stride, ax.causal) -
            na_win_start(first, lg, ax.kernel, ax.stride, ax.causal);
  }
  return keys;
}

// The lanes forward's keys per step: of 8, 10 and 12, the one that leaves the fewest unused
// keys in the last step of an interior tile's box (ties: the smaller). Measured on CPU2 (PoCL
// 3.1, small-cpu, one thread, fastest of 50 calls, two runs each): TK 8 0.489/0.490 ms, 10
// 0.473/0.470 (its 10x10 box in 10 whole steps instead of 13 with 4 keys unused), 12
// 0.480/0.508, 16 0.607/0.581 (more score vectors than registers). The backward keeps 8.
int lanes_forward_tk(const Problem& p, const int tq[3]) {
  const std::int64_t box = interior_key_box(p, tq);
  int best = 8;
  std::int64_t best_slots = (box + 7) / 8 * 8;
  for (int tk : {10, 12}) {
    const std::int64_t slots = (box + tk - 1) / tk * tk;
    if (slots < best_slots) {
      best = tk;
      best_slots = slots;
    }
  }
  return best;
}

}  // namespace

Config FusedVariant::default_config(const Problem& p, const DeviceInfo& dev, Pass pass) const {
  const int hdvp = std::max(16, head_dim_bucket(p.head_dim_v));
  Tile t;
  if (dev.is_gpu() && pass == Pass::Forward) {
    // 128 work-items in 16 rows x 8 columns, float4 register tiles (16-byte local loads),
    // 32-key chunks; the query box shrinks with the head dim so Q, K/V and P fit in 48 KB.
    const int hdp = head_dim_bucket(p.head_dim);
    const int bq = hdp <= 64 ? 64 : hdp <= 160 ? 32 : 16;
    query_box(p, bq, t.tq);
    t.tk = 32;
    t.rq = bq / 16;
    t.tc = 8;
    t.vw = 4;
  } else if (dev.is_gpu()) {
    // Backward: Q, dO, K and V tiles all live in local memory, so the other side comes in
    // chunks of 8 rows, which leaves room for 64-query tiles in rank 1 and 32 elsewhere (at
    // head dim 128 too), with 8 work-item columns of scalars and 4 tile rows per item up to
    // head dim 128, 2 beyond (4 at head dim 128 since session 11, once the local arrays were
    // 16-byte aligned: H100, f32, ms, RQ 2 -> 4: flux-2d 5.78 -> 5.25, video-3d 161.9 -> 147.3).
    // `openna-bench tune --dtype f32 --pass bwd` on the H100 (2026-11-26, session 9,
    // docs/PERFORMANCE.md; ms, the best candidate against the earlier default of 16-row chunks
    // and 16-query tiles at head dim 128): long-1d-causal 59.44 (exactly this,
    // with DQ=1) against 97.39, vision-2d 6.059 (exactly this) against 6.397, the dilated
    // preset 6.024 (RQ 2, TC 4, VW 2; this 6.11) against 6.15, flux-2d 7.337 (exactly this)
    // against 12.01, video-3d 193.5 (exactly this, 7 products) against 349.8.
    const int hdp = std::max(head_dim_bucket(p.head_dim), hdvp);
    query_box(p, hdp <= 64 && p.rank == 1 ? 64 : 32, t.tq);
    t.tk = 8;
    t.rq = hdp <= 128 ? 4 : 2;
    t.tc = 8;
    t.vw = 1;
  } else {
    // CPUs: the lanes form, a 16-query box in the lanes of one 16-wide vector (an AVX-512
    // register; narrower units split it), 8 keys per step (the forward: 8, 10 or 12, whichever
    // fits its key boxes best, lanes_forward_tk). The forward's rows form (FORM=2,
    // denser: 0.63-0.68 against 0.55 on small-cpu) measured slower on both CPU problems of
    // docs/PERFORMANCE.md (2026-11-25, session 3: its K/V transpose pre-pass plus a main kernel
    // at about half the lanes form's FMA rate), so it is only a tuning candidate.
    t.form = kLanes;
    query_box(p, 16, t.tq);
    t.tk = pass == Pass::Forward ? lanes_forward_tk(p, t.tq) : 8;
    t.vw = 16;
    // Backward: the 5-product form (dQ partials through a scratch buffer, summed over columns
    // of key tiles: default_dqc) unless its scratch is over the bound; the choice is in the
    // configuration (DQ, DQC) and the variant's name.
    if (pass == Pass::Backward) {
      t.dq = 1;
      t.dqc = default_dqc(p, dev, t);
      if (!dq_scratch_fits(p, dev, t)) {
        t.dq = 0;
        t.dqc = Tile::kNoDqc;
      }
    }
    return config_of(t);
  }
  while (t.tc > 1 && hdvp % (t.tc * t.vw) != 0) t.tc /= 2;
  while (t.vw > 1 && hdvp % (t.tc * t.vw) != 0) t.vw /= 2;
  while (t.tc > 1 && pass == Pass::Backward &&
         head_dim_bucket(p.head_dim) % (t.tc * t.vw) != 0) {
    t.tc /= 2;
  }
  // Shrink until it fits: key chunk first (keeping TC * VW a divisor), then the query box.
  const auto shrink = [&](Tile& x) {
    for (int guard = 0; guard < 16 && !tile_error(p, dev, x, pass).empty(); ++guard) {
      if (x.tk > 8) {
        x.tk /= 2;
        while (x.tk % (x.tc * x.vw) != 0) (x.vw > 1 ? x.vw : x.tc) /= 2;
      } else {
        int a = 0;
        for (int y = 1; y < p.rank; ++y)
          if (x.tq[y] > x.tq[a]) a = y;
        if (x.tq[a] == 1) break;
        x.tq[a] /= 2;
        while (x.rq > 1 && (x.bq() % x.rq != 0 || x.bq() / x.rq < 4)) x.rq /= 2;
      }
    }
  };
  shrink(t);
  // GPU backward: the 5-product form wherever its scratch is within the bound
  // (dq_scratch_fits), on a smaller tile where its local memory (K's padded rows) needs one.
  // H100, f32, 2026-11-26 session 9 (docs/PERFORMANCE.md), on the earlier 16-row chunks:
  // vision-2d 8.549 -> 6.495 ms, vision-2d-dilated 7.92 -> 6.268, flux-2d 14.85 -> 12.04
  // (scratch 49x Q); video-3d keeps 7 products (its scratch is over the 32-bit index limit).
  if (pass == Pass::Backward) {
    Tile t5 = t;
    t5.dq = 1;
    shrink(t5);
    if (dq_scratch_fits(p, dev, t5) && tile_error(p, dev, t5, pass).empty()) t = t5;
  }
  return config_of(t);
}

std::vector<Config> FusedVariant::candidates(const Problem& p, const DeviceInfo& dev,
                                             Pass pass) const {
  std::vector<Config> out;
  if (!dev.is_gpu()) {
    for (int bq : {16, 32, 64})
      for (int tk : {4, 8, 16})
        for (int vw : {8, 16}) {
          Tile t;
          t.form = kLanes;
          query_box(p, bq, t.tq);
          t.tk = tk;
          t.vw = vw;
          // Backward: 7 products, and 5 products with the default columns and with one
          // tile per slot, where the scratch is within the bound.
          const int dqc = default_dqc(p, dev, t);
          for (int dq : {0, 1, 2}) {
            if (pass == Pass::Backward) {
              t.dq = std::min(dq, 1);
              t.dqc = dq == 0 ? Tile::kNoDqc : dq == 1 ? dqc : 1;
              if (dq == 2 && dqc == 1) continue;
              if (dq > 0 && !dq_scratch_fits(p, dev, t)) continue;
            } else if (dq > 0) {
              continue;
            }
            const Config c = config_of(t);
            if (config_error(p, dev, pass, c).empty()) out.push_back(c);
          }
        }
    // The rows form (forward only): 1, 2 or 4 rows of 16 queries, 4 to 16 items per step.
    for (int nr : {1, 2, 4})
      for (int tk : {4, 8, 16}) {
        if (pass != Pass::Forward || (nr > 1 && p.rank < 2)) continue;
        Tile t;
        t.form = kRows;
        rows_box(p, nr, t.tq);
        t.tk = tk;
        t.vw = 16;
        const Config c = config_of(t);
        if (config_error(p, dev, pass, c).empty()) out.push_back(c);
      }
  }
  const std::vector<int> sizes = dev.is_gpu() ? std::vector<int>{32, 64, 128}
                                              : std::vector<int>{16};
  // GPUs: 8-key (8-query) chunks too, which leave room for larger tiles in the backward (H100,
  // f32, session 9: long-1d-causal 97.39 -> 77.45 ms with 64-query tiles, flux-2d 12.07 ->
  // 10.27 and video-3d 349.8 -> 257.5 with 32).
  const std::vector<int> chunks = dev.is_gpu() ? std::vector<int>{8, 16, 32, 64}
                                               : std::vector<int>{16, 32, 64};
  for (int bq : sizes)
    for (int tk : chunks)
      for (int rq : {1, 2, 4, 8})
        for (int tc : {1, 2, 4, 8, 16, 32}) {
          Tile t;
          query_box(p, bq, t.tq);
          t.tk = tk;
          t.rq = rq;
          t.tc = tc;
          t.vw = dev.is_gpu() ? 4 : 16;
          while (t.vw > 1 && (tk % (tc * t.vw) != 0 ||
                              head_dim_bucket(p.head_dim_v) % (tc * t.vw) != 0)) {
            t.vw /= 2;
          }
          if (dev.is_gpu() && (t.nt() < 32 || t.nt() > 256)) continue;
          if (!dev.is_gpu() && t.nt() > 16) continue;
          const Config c = config_of(t);
          if (config_error(p, dev, pass, c).empty()) out.push_back(c);
          // GPU backward: the 5-product form too, where its scratch is within the bound.
          if (dev.is_gpu() && pass == Pass::Backward) {
            t.dq = 1;
            const Config c5 = config_of(t);
            if (dq_scratch_fits(p, dev, t) && config_error(p, dev, pass, c5).empty())
              out.push_back(c5);
          }
        }
  const Config def = default_config(p, dev, pass);
  if (std::find(out.begin(), out.end(), def) == out.end()) out.insert(out.begin(), def);
  return out;
}

std::string FusedVariant::config_error(const Problem& p, const DeviceInfo& dev, Pass pass,
                                       const Config& c) const {
  for (const auto& kv : c.params) {
    static const char* known[] = {"FORM", "TQ0", "TQ1", "TQ2", "TK",
                                  "RQ",   "TC",  "VW",  "DQ",  "DQC"};
    if (std::find_if(std::begin(known), std::end(known),
                     [&](const char* k) { return kv.first == k; }) == std::end(known)) {
      return "unknown parameter " + kv.first;
    }
  }
  return tile_error(p, dev, tile_of(c), pass);
}

std::string FusedVariant::config_suffix(const Problem& p, const Config& c) const {
  const Tile t = tile_of(c);
  std::string s = t.form == kLanes ? "lanes_q" : t.form == kRows ? "rows_q" : "q";
  for (int a = 0; a < p.rank; ++a) s += (a ? "x" : "") + std::to_string(t.tq[a]);
  if (t.form == kRows) return s + "_k" + std::to_string(t.tk);
  s += "_k" + std::to_string(t.tk);
  if (t.form == kWorkGroup) s += "_r" + std::to_string(t.rq) + "_c" + std::to_string(t.tc);
  s += "_v" + std::to_string(t.vw);
  // The backward's form (lanes and work-group), and the lanes form's columns.
  if (t.dq >= 0) s += t.dq == 1 ? "_5prod" : "_7prod";
  if (t.dqc != Tile::kNoDqc) s += t.dqc == 0 ? "_colall" : "_col" + std::to_string(t.dqc);
  return s;
}

SimResult FusedVariant::simulate(const Problem& p, const Config& c) const {
  const Tile t = tile_of(c);
  if (t.form == kRows) return simulate_rows(p, t.tq, t.tk);
  return simulate_box_tiles(p, t.tq, t.tk);
}

namespace {

// The work-group form's reduce (na_dq_reduce.h, DQ_DMAJOR): head dims per work-item, its
// DQR_DIMS; the launch has a work-item per (that many head dims, batch, head, query).
int dq_reduce_dims(int hdp) { return hdp % 32 == 0 ? 32 : 16; }

// Compile options of a fused program: head-dim buckets and the tile.
std::string fused_options(const DeviceInfo& dev, const Problem& p, const Tile& t) {
  const int hdp = head_dim_bucket(p.head_dim), hdvp = head_dim_bucket(p.head_dim_v);
  std::vector<std::pair<std::string, int>> defs = {
      {"HD", hdp},        {"HDV", hdvp},      {"HDP", hdp},       {"HDVP", hdvp},
      {"TQ0", t.tq[0]},   {"TQ1", t.tq[1]},   {"TQ2", t.tq[2]},   {"TK", t.tk},
      {"VW", t.vw}};
  if (t.form == kWorkGroup) {
    defs.emplace_back("RQ", t.rq);
    defs.emplace_back("TC", t.tc);
  }
  if (t.dq >= 0) defs.emplace_back("DQP", t.dq);
  if (t.dq == 1 && t.form == kWorkGroup) defs.emplace_back("DQR_DIMS", dq_reduce_dims(hdp));
  // The lanes kernels compile one copy of their tile: with constant head dims where the
  // problem's equal their buckets (na_lanes.h).
  if (t.form == kLanes) {
    defs.emplace_back("HDX", p.head_dim == hdp && p.head_dim_v == hdvp ? 1 : 0);
  }
  return compile_options(dev, p, defs);
}

// The 5-product backward (DQ=1): the D pass, then dK/dV over key tiles writing dQ partials
// into a scratch buffer, then the per-query reduction of those partials in a fixed order
// (na_dq_reduce.h). The lanes form (na_fused_bwd_lanes.cl) walks columns of key tiles from a
// counter and leaves the partials unscaled; the work-group form (na_fused_bwd.cl) runs one
// work-group per key tile, one tile per slot, and its partials carry the scale already. A
// scratch the device cannot hold is an out-of-memory error before anything is enqueued.
void backward_5prod(Context& ctx, const Problem& p, const Tile& t, const BwdArgs& a,
                    const std::string& opts, const std::string& label, Events* events) {
  const bool lanes = t.form == kLanes;
  const DqScratch sc = dq_scratch(p, t);
  if (sc.floats > INT_MAX) {
    throw Unsupported(label + ": dQ scratch of " + std::to_string(sc.floats) +
                      " floats over the kernels' 32-bit index limit (DQ=0 needs none)");
  }
  const std::size_t bytes = static_cast<std::size_t>(sc.floats) * sizeof(float);
  const cl_ulong max_alloc = ctx.device().device.getInfo<CL_DEVICE_MAX_MEM_ALLOC_SIZE>();
  if (bytes > max_alloc) {
    throw Error(OPENNA_ERROR_OUT_OF_MEMORY,
                label + ": dQ scratch of " + std::to_string(bytes) +
                    " bytes over the device's largest allocation (" + std::to_string(max_alloc) +
                    " bytes); the 7-product backward (DQ=0) needs none");
  }
  // Held until the three kernels are enqueued (Context::scratch).
  std::unique_lock<std::mutex> held = ctx.lock_scratch();
  const cl::Buffer part = ctx.scratch(bytes, held, label + ": allocating the dQ scratch");
  const char* file = lanes ? kBwdLanesFile : kBwdFile;
  cl::Kernel k_dkdv =
      ctx.kernel(file, opts, lanes ? "na_fused_bwd_dkdv_lanes" : "na_fused_bwd_dkdv", label);
  cl::Kernel k_red = ctx.kernel(file, opts, "na_fused_bwd_dq_reduce", label);
  const int work_items = lanes ? 1 : t.nt();
  check_fits(k_dkdv, ctx.device(), work_items, label);
  // The reduce: one work-item per (batch, query) in the lanes form, per (head-dim group,
  // batch, head, query) in the work-group form (na_dq_reduce.h, DQ_DMAJOR and DQR_DIMS).
  const int hdp = head_dim_bucket(p.head_dim);
  const std::int64_t rows = static_cast<std::int64_t>(p.batch) * p.tokens() *
                            (lanes ? 1 : p.heads * (hdp / dq_reduce_dims(hdp)));
  Geometry g1;
  g1.local[0] = std::min<std::size_t>(64, ctx.device().max_work_group_size);
  g1.global[0] = round_up(static_cast<std::size_t>(rows), g1.local[0]);
  int nt[3];
  const Geometry gk = tiled_geometry(p, t.tq, work_items, p.heads_kv, nt);
  const int L0 = p.axis[0].length, L1 = p.axis[1].length, L2 = p.axis[2].length;
  const int qb = static_cast<int>(sc.slot_rows);
  const int ct = dq_column_tiles(p, t);
  Events ev;
  const DeltaPass d = launch_delta(ctx, p, a.out, a.d_out, label);
  const cl::Buffer& delta = d.delta;
  ev.push_back(d.event);
  const TiledKernel tk{&k_dkdv, t.tq, work_items, lanes ? lanes_counter_groups(ctx) : 0};
  ev.push_back(launch_tiles(ctx, tk, gk, MemArg{a.q}, MemArg{a.k}, MemArg{a.v}, MemArg{a.d_out},
                            MemArg{a.lse}, delta, MemArg{a.d_k}, MemArg{a.d_v}, part, qb,
                            ct, p.batch, L0, L1, L2, p.heads, p.heads_kv, p.head_dim, p.head_dim_v,
                            p.scale, nt[0], nt[1], nt[2]));
  ev.push_back(ctx.launch(k_red, g1, part, MemArg{a.d_q}, p.batch, L0, L1, L2, p.heads,
                          p.head_dim, lanes ? p.scale : 1.0f, nt[0], nt[1], nt[2], qb, ct));
  if (events) events->insert(events->end(), ev.begin(), ev.end());
}

}  // namespace

void FusedVariant::forward(Context& ctx, const Problem& p, const Config& c, const FwdArgs& a,
                           Events* events) const {
  const Tile t = tile_of(c);
  const std::string why = config_error(p, ctx.device(), Pass::Forward, c);
  if (!why.empty()) throw Unsupported("fused configuration " + c.str() + ": " + why);
  const std::string label = name(p, c, Pass::Forward);
  const std::string opts = fused_options(ctx.device(), p, t);
  if (t.form == kRows) {
    rows_forward(ctx, p, t.tq, a, opts, label, events);
    return;
  }
  cl::Kernel k = t.form == kLanes ? ctx.kernel(kFwdLanesFile, opts, "na_fused_fwd_lanes", label)
                                  : ctx.kernel(kFwdFile, opts, "na_fused_fwd", label);
  check_fits(k, ctx.device(), t.nt(), label);
  int nt[3];
  const Geometry g = tiled_geometry(p, t.tq, t.nt(), p.heads, nt);
  // The lanes form takes its tiles from a counter (LANES_FOR_EACH_TILE, na_lanes.h): a few
  // work-groups per compute unit, a fresh zeroed counter per call (no command to reset it, and
  // no sharing between calls that an out-of-order queue could run at once; launch_tiles).
  const TiledKernel tk{&k, t.tq, t.nt(), t.form == kLanes ? lanes_counter_groups(ctx) : 0};
  cl::Event ev = launch_tiles(ctx, tk, g, MemArg{a.q}, MemArg{a.k}, MemArg{a.v}, MemArg{a.out},
                              MemArg{a.lse}, p.batch, p.axis[0].length, p.axis[1].length,
                              p.axis[2].length, p.heads, p.heads_kv, p.head_dim, p.head_dim_v,
                              p.scale, nt[0], nt[1], nt[2]);
  if (events) events->push_back(ev);
}

void FusedVariant::backward(Context& ctx, const Problem& p, const Config& c, const BwdArgs& a,
                            Events* events) const {
  const Tile t = tile_of(c);
  const std::string why = config_error(p, ctx.device(), Pass::Backward, c);
  if (!why.empty()) throw Unsupported("fused configuration " + c.str() + ": " + why);
  const std::string label = name(p, c, Pass::Backward);
  const std::string opts = fused_options(ctx.device(), p, t);
  const bool lanes = t.form == kLanes;
  if (t.dq == 1) {
    backward_5prod(ctx, p, t, a, opts, label, events);
    return;
  }
  cl::Kernel k_dq = ctx.kernel(lanes ? kBwdLanesFile : kBwdFile, opts,
                               lanes ? "na_fused_bwd_dq_lanes" : "na_fused_bwd_dq", label);
  cl::Kernel k_dkdv = ctx.kernel(lanes ? kBwdLanesFile : kBwdFile, opts,
                                 lanes ? "na_fused_bwd_dkdv_lanes" : "na_fused_bwd_dkdv", label);
  // The lanes kernels take their tiles from a counter, as the forward does.
  const std::size_t groups = lanes ? lanes_counter_groups(ctx) : 0;
  launch_tiled_backward(ctx, p, {&k_dq, t.tq, t.nt(), groups}, {&k_dkdv, t.tq, t.nt(), groups}, a,
                        label, events);
}

}  // namespace openna
