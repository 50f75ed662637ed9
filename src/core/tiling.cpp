// The box-tiling simulator (see tiling.hpp).
#include "core/tiling.hpp"

namespace openna {

void query_box(const Problem& p, int target, int tq[3]) {
  tq[0] = tq[1] = tq[2] = 1;
  if (p.rank == 1) {
    tq[0] = target;
  } else if (p.rank == 2) {
    int side = 1;
    while (side * side * 4 <= target) side *= 2;
    tq[0] = side;
    tq[1] = target / side;
  } else {
    int side = 1;
    while (side * side * side * 8 <= target) side *= 2;
    tq[0] = side;
    tq[1] = side;
    tq[2] = target / (side * side);
  }
}

SimResult simulate_box_tiles(const Problem& p, const int tq[3], int tk, const int* kb) {
  SimResult r;
  int tiles[3] = {1, 1, 1};
  for (int a = 0; a < p.rank; ++a) tiles[a] = tiles_on_axis(p.axis[a], tq[a]);
  std::int64_t rows_per_tile = 1;
  for (int a = 0; a < p.rank; ++a) rows_per_tile *= tq[a];
  const double dense_chunks = static_cast<double>((p.tokens() + tk - 1) / tk);
  double chunks_total = 0;
  for (int t0 = 0; t0 < tiles[0]; ++t0)
    for (int t1 = 0; t1 < tiles[1]; ++t1)
      for (int t2 = 0; t2 < tiles[2]; ++t2) {
        const int t[3] = {t0, t1, t2};
        std::int64_t box = 1, valid = 1, box_chunks = 1;
        for (int a = 0; a < p.rank; ++a) {
          const TileAxis ta = tile_axis(p.axis[a], tq[a], t[a]);
          const int count = tile_key_range(p.axis[a], ta).count;
          box *= count;
          if (kb) box_chunks *= (count + kb[a] - 1) / kb[a];
          valid *= ta.valid;
        }
        if (valid == 0) continue;
        ++r.query_tiles;
        const double chunks = static_cast<double>(kb ? box_chunks : (box + tk - 1) / tk);
        chunks_total += chunks;
        r.computed += chunks * tk * static_cast<double>(rows_per_tile);
      }
  // Dense attention (kernel = shape, no dilation) with the same tile shape and chunk size.
  double dense_tiles = 1;
  for (int a = 0; a < p.rank; ++a) dense_tiles *= (p.axis[a].length + tq[a] - 1) / tq[a];
  r.dense_computed = dense_tiles * static_cast<double>(rows_per_tile) * dense_chunks * tk;
  r.kv_chunks_per_tile = r.query_tiles ? chunks_total / static_cast<double>(r.query_tiles) : 0;
  r.useful = static_cast<double>(p.attended_pairs()) / (p.batch * p.heads);
  return r;
}

double box_chunks(const Problem& p, const int tq[3], const int kb[3]) {
  double total = 1;
  for (int a = 0; a < p.rank; ++a) {
    double sum = 0;
    for (int i = 0, n = tiles_on_axis(p.axis[a], tq[a]); i < n; ++i) {
      const TileAxis ta = tile_axis(p.axis[a], tq[a], i);
      if (ta.valid > 0) sum += (tile_key_range(p.axis[a], ta).count + kb[a] - 1) / kb[a];
    }
    total *= sum;
  }
  return total;
}

}  // namespace openna
