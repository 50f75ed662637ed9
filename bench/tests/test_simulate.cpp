// The simulator that `openna-bench simulate` and the run table print, against counts computed
// by hand (the box tiling of src/core/tiling.hpp), and the shrinking of a problem for --check.
// No device is used.
#include <gtest/gtest.h>

#include <array>

#include "check.hpp"
#include "core/problem.hpp"
#include "core/tiling.hpp"
#include "presets.hpp"
#include "variants/variant.hpp"

namespace openna::bench {
namespace {

Problem make(int rank, std::vector<int> shape, std::vector<int> kernel, std::vector<int> dil) {
  openna_problem p{};
  p.dtype = OPENNA_F32;
  p.rank = rank;
  p.batch = 1;
  p.heads = 1;
  p.head_dim = 8;
  for (int a = 0; a < rank; ++a) {
    p.spatial[a] = shape[a];
    p.kernel_size[a] = kernel[a];
    p.dilation[a] = dil[a];
  }
  return normalize(&p);
}

// 1-D, L = 16, K = 3, query tiles of 4, key chunks of 4.
//   Tiles: 16 / 4 = 4, all full.
//   Windows (SPEC.md): q0 [0,3), q3 [2,5) -> tile 0 sees [0,5): 5 keys -> 2 chunks.
//                      q4 [3,6), q7 [6,9) -> tile 1 sees [3,9): 6 keys -> 2 chunks.
//                      q8 [7,10), q11 [10,13) -> tile 2 sees [7,13): 6 keys -> 2 chunks.
//                      q12 [11,14), q15 [13,16) (slid inward) -> tile 3 sees [11,16): 5 -> 2.
//   computed = 4 tiles * 2 chunks * 4 keys * 4 rows = 128; useful = 16 * 3 = 48;
//   density = 48 / 128 = 0.375.
//   dense, same tiles: 4 tiles * 4 rows * ceil(16 / 4) = 4 chunks * 4 keys = 256;
//   attainable speedup = 256 / 128 = 2.
TEST(BenchSimulate, OneAxisByHand) {
  const Problem p = make(1, {16}, {3}, {1});
  const int tq[3] = {4, 1, 1};
  const SimResult s = simulate_box_tiles(p, tq, 4);
  EXPECT_EQ(s.query_tiles, 4);
  EXPECT_DOUBLE_EQ(s.kv_chunks_per_tile, 2.0);
  EXPECT_DOUBLE_EQ(s.computed, 128);
  EXPECT_DOUBLE_EQ(s.useful, 48);
  EXPECT_DOUBLE_EQ(s.density(), 0.375);
  EXPECT_DOUBLE_EQ(s.dense_computed, 256);
  EXPECT_DOUBLE_EQ(s.attainable_speedup(), 2.0);
}

// 2-D, shape 9x6, kernel 3x3, dilation 2x1, query tiles 2x3, key chunks of 4.
//   Axis 0 (L = 9, d = 2): group 0 = {0,2,4,6,8} (5 members), group 1 = {1,3,5,7} (4).
//     Tiles per group = ceil(5 / 2) = 3, so 6 tiles on the axis; in group coordinates:
//     t0: g0 q'0-1 -> keys [0,3) = 3     t3: g1 q'0-1 -> [0,3) = 3
//     t1: g0 q'2-3 -> keys [1,5) = 4     t4: g1 q'2-3 -> [1,4) = 3 (q'3 slides inward)
//     t2: g0 q'4 (1 valid) -> [2,5) = 3  t5: g1 starts at q'4 = past its end: no query.
//   Axis 1 (L = 6, d = 1): u0 q0-2 -> [0,4) = 4; u1 q3-5 -> [2,6) = 4.
//   Tiles with a query: 5 * 2 = 10. Key boxes: axis-0 counts (3,4,3,3,3) times 4 =
//   (12,16,12,12,12) -> chunks of 4: (3,4,3,3,3) = 16 per u, 32 in all; mean 3.2 per tile.
//   computed = 32 chunks * 4 keys * (2 * 3) rows = 768; useful = (9 * 3) * (6 * 3) = 486;
//   density = 486 / 768 = 0.6328125.
//   dense: tiles ceil(9/2) * ceil(6/3) = 10, rows 6, chunks ceil(54 / 4) = 14 of 4 keys:
//   10 * 6 * 14 * 4 = 3360; attainable speedup = 3360 / 768 = 4.375.
TEST(BenchSimulate, DilatedTwoAxesByHand) {
  const Problem p = make(2, {9, 6}, {3, 3}, {2, 1});
  const int tq[3] = {2, 3, 1};
  const SimResult s = simulate_box_tiles(p, tq, 4);
  EXPECT_EQ(s.query_tiles, 10);
  EXPECT_DOUBLE_EQ(s.kv_chunks_per_tile, 3.2);
  EXPECT_DOUBLE_EQ(s.computed, 768);
  EXPECT_DOUBLE_EQ(s.useful, 486);
  EXPECT_DOUBLE_EQ(s.density(), 0.6328125);
  EXPECT_DOUBLE_EQ(s.dense_computed, 3360);
  EXPECT_DOUBLE_EQ(s.attainable_speedup(), 4.375);
}

// 2-D, shape 6x10, kernel 3x5, query tiles 2x4, key chunks of 16 as boxes of 2 x 8 (the mma
// variant's TMA chunks at rank 2).
//   Axis 0 (starts clamp(i - 1, 0, 3)): tile 0 (q 0-1) keys [0,3) = 3, tile 1 (q 2-3) [1,5) = 4,
//     tile 2 (q 4-5) [3,6) = 3 -> boxes of 2: 2, 2, 2.
//   Axis 1 (starts clamp(i - 2, 0, 5)): tile 0 (q 0-3) [0,6) = 6, tile 1 (q 4-7) [2,10) = 8,
//     tile 2 (q 8-9, 2 valid) [5,10) = 5 -> boxes of 8: 1, 1, 1.
//   Box chunks: 2 per tile, 9 tiles: computed = 18 * 16 keys * 8 rows = 2304 (flattened chunks
//   of 16 would take 2, 2, 1 / 2, 2, 2 / 2, 2, 1 = 16 chunks: 2048).
//   useful = (3 * 6) * (5 * 10) = 900; dense: 9 tiles * 8 rows * ceil(60 / 16) = 4 chunks * 16
//   = 4608; attainable speedup = 4608 / 2304 = 2.
TEST(BenchSimulate, BoxChunksByHand) {
  const Problem p = make(2, {6, 10}, {3, 5}, {1, 1});
  const int tq[3] = {2, 4, 1};
  const int kb[3] = {2, 8, 1};
  const SimResult s = simulate_box_tiles(p, tq, 16, kb);
  EXPECT_EQ(s.query_tiles, 9);
  EXPECT_DOUBLE_EQ(s.kv_chunks_per_tile, 2.0);
  EXPECT_DOUBLE_EQ(s.computed, 2304);
  EXPECT_DOUBLE_EQ(s.useful, 900);
  EXPECT_DOUBLE_EQ(s.dense_computed, 4608);
  EXPECT_DOUBLE_EQ(s.attainable_speedup(), 2.0);
  EXPECT_DOUBLE_EQ(simulate_box_tiles(p, tq, 16).computed, 2048);
  EXPECT_DOUBLE_EQ(box_chunks(p, tq, kb), 18);  // 9 tiles of 2 chunks
}

// box_chunks (per axis) counts what simulate_box_tiles (tile by tile) counts, with dilations,
// strides, causal axes and tiles past short dilation groups.
TEST(BenchSimulate, BoxChunksPerAxisEqualsTileByTile) {
  const Problem ps[] = {
      make(2, {6, 10}, {3, 5}, {1, 1}), make(3, {16, 32, 32}, {8, 16, 16}, {1, 1, 1}),
      make(2, {37, 45}, {7, 9}, {3, 2}), make(3, {9, 13, 21}, {3, 5, 7}, {2, 1, 3})};
  for (Problem p : ps) {
    p.axis[0].causal = p.rank == 3;
    p.axis[1].stride = 2;
    for (const auto& tq :
         {std::array<int, 3>{2, 4, 1}, std::array<int, 3>{1, 8, 8}, std::array<int, 3>{4, 2, 8}})
      for (const auto& kb : {std::array<int, 3>{2, 8, 1}, std::array<int, 3>{8, 1, 8},
                             std::array<int, 3>{1, 4, 16}}) {
        int q[3] = {tq[0], tq[1], p.rank == 3 ? tq[2] : 1};
        int b[3] = {kb[0], kb[1], p.rank == 3 ? kb[2] : 1};
        const SimResult s = simulate_box_tiles(p, q, b[0] * b[1] * b[2], b);
        SCOPED_TRACE(p.describe());
        EXPECT_DOUBLE_EQ(s.kv_chunks_per_tile * static_cast<double>(s.query_tiles),
                         box_chunks(p, q, b));
      }
  }
}

// The naive variant computes exactly the neighborhood: small-cpu's 32x32 grid with a 7x7
// kernel has 32 * 7 = 224 pairs per axis, 224^2 = 50176 per head, against 1024^2 dense:
// speedup 1048576 / 50176 = 20.898 (the CLI test checks the printed form of the same numbers).
TEST(BenchSimulate, NaiveVariantCountsTheNeighborhood) {
  const Variant* naive = find_variant("naive");
  ASSERT_NE(naive, nullptr);
  const Problem p = normalize(&find_preset("small-cpu")->problem);
  const SimResult s = naive->simulate(p, Config{});
  EXPECT_EQ(s.query_tiles, 1024);
  EXPECT_DOUBLE_EQ(s.useful, 50176);
  EXPECT_DOUBLE_EQ(s.computed, 50176);
  EXPECT_DOUBLE_EQ(s.density(), 1.0);
  EXPECT_DOUBLE_EQ(s.dense_computed, 1048576);
  EXPECT_NEAR(s.attainable_speedup(), 1048576.0 / 50176.0, 1e-12);
}

TEST(BenchCheckProblem, SmallProblemIsCheckedAsIs) {
  const Problem p = normalize(&find_preset("small-cpu")->problem);
  bool shrunk = true;
  const openna_problem c = check_problem(p, &shrunk);
  EXPECT_FALSE(shrunk);
  EXPECT_EQ(normalize(&c).describe(), p.describe());
}

TEST(BenchCheckProblem, LargeProblemKeepsItsCompileTimeOptions) {
  for (const char* name : {"flux-2d", "vision-2d-dilated", "video-3d", "long-1d-causal"}) {
    SCOPED_TRACE(name);
    const Problem p = normalize(&find_preset(name)->problem);
    bool shrunk = false;
    const openna_problem c = check_problem(p, &shrunk);
    EXPECT_TRUE(shrunk);
    const Problem s = normalize(&c);
    // Same program (the tuning key holds every compile-time fact), smaller sizes.
    EXPECT_EQ(find_variant("naive")->tuning_key(s, Pass::Forward),
              find_variant("naive")->tuning_key(p, Pass::Forward));
    EXPECT_EQ(s.batch, 1);
    EXPECT_LE(s.heads, 2);
    EXPECT_LT(s.tokens(), p.tokens());
    for (int a = 0; a < p.rank; ++a)
      EXPECT_GE(s.axis[a].length, p.axis[a].kernel * p.axis[a].dilation);
  }
  // Dilation groups stay uneven, so the short-group edge is checked too.
  const Problem d = normalize(&find_preset("vision-2d-dilated")->problem);
  bool shrunk = false;
  const openna_problem c = check_problem(d, &shrunk);
  EXPECT_NE(c.spatial[0] % 4, 0);
}

}  // namespace
}  // namespace openna::bench
