// Query tiles as boxes on the grid and the key boxes they visit: the planning shared by the
// tiled kernels' host code, the tuner and the simulator. A query tile lives inside one dilation
// group per axis (group coordinates), so the keys its queries see are one box in that group too.
#pragma once

#include <cstdint>

#include "core/problem.hpp"
#include "core/window.hpp"

namespace openna {

// Tiles per axis: dilation groups times tiles per group (the longest group), so that a work-group
// index maps to (group, tile) without tables; tiles past a short group's end have no valid query.
inline int tiles_on_axis(const Axis& ax, int tq) {
  const int longest = (ax.length + ax.dilation - 1) / ax.dilation;
  return ax.dilation * ((longest + tq - 1) / tq);
}

// One axis of a query tile: its group, its first index in the group, and how many of its tq
// queries are valid (0 for a tile past the end of a short group).
struct TileAxis {
  int group = 0;
  int first = 0;
  int valid = 0;
  int group_len = 0;
};

inline TileAxis tile_axis(const Axis& ax, int tq, int tile) {
  const int per_group = tiles_on_axis(ax, tq) / ax.dilation;
  TileAxis t;
  t.group = tile / per_group;
  t.first = (tile % per_group) * tq;
  t.group_len = na_group_len(ax.length, ax.dilation, t.group);
  t.valid = t.first >= t.group_len ? 0 : (t.group_len - t.first < tq ? t.group_len - t.first : tq);
  return t;
}

// The keys (group coordinates [start, start + count)) that the valid queries of a tile axis see:
// window start and end are nondecreasing in the query, so the union is one range.
struct KeyRange {
  int start = 0;
  int count = 0;
};

inline KeyRange tile_key_range(const Axis& ax, const TileAxis& t) {
  if (t.valid == 0) return {};
  const int last = t.first + t.valid - 1;
  const int s = na_win_start(t.first, t.group_len, ax.kernel, ax.stride, ax.causal);
  const int e = na_win_end(last, t.group_len, ax.kernel, ax.stride, ax.causal);
  return {s, e - s};
}

// A query box of `target` queries (a power of two) spread over the used axes, square-ish with
// the fastest axis widest: rank 2 gives side x (target / side) with side = 2^floor(log4 target)
// (64 -> 8x8, 32 -> 4x8), rank 3 gives side x side x rest with side = 2^floor(log8 target)
// (64 -> 4x4x4).
void query_box(const Problem& p, int target, int tq[3]);

// What a box-tiled kernel computes, from its tile shape alone (the analytical "simulator" of the
// Generalized Neighborhood Attention paper): per (batch, head), the score entries computed
// (query-tile rows times key-box entries rounded up to whole key chunks), the entries inside
// the neighborhood, and the same count for dense attention tiled the same way.
struct SimResult {
  std::int64_t query_tiles = 0;   // tiles with at least one valid query
  double kv_chunks_per_tile = 0;  // mean key chunks a tile visits
  double computed = 0;            // score entries computed, NA
  double useful = 0;              // entries inside the neighborhood
  double dense_computed = 0;      // entries computed by dense attention, same tiles
  double density() const { return computed > 0 ? useful / computed : 0; }
  double attainable_speedup() const { return computed > 0 ? dense_computed / computed : 0; }
};

// tq: query tile box per axis; tk: keys per chunk (the key box is visited in chunks of tk).
// kb (optional): the chunks are boxes of kb[0] x kb[1] x kb[2] keys (tk = their product) laid
// over the key box from its first key, the last ones on an axis reaching past it (the mma
// variant's TMA chunks at ranks 2 and 3).
SimResult simulate_box_tiles(const Problem& p, const int tq[3], int tk, const int* kb = nullptr);

// The key-box chunks that all tiles of tq visit per (batch, head) with chunk boxes of kb keys:
// simulate_box_tiles' count (kv_chunks_per_tile * query_tiles) in O(tiles per axis), since
// the tiles are a product of their axes.
double box_chunks(const Problem& p, const int tq[3], const int kb[3]);

}  // namespace openna
