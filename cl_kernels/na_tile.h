/* Query tiles of the tiled kernels (fused, mma): a work-group index names a (batch, head) and a
 * box of TQ0 x TQ1 x TQ2 queries inside one dilation group per axis. Mirrors the host planner
 * (src/core/tiling.hpp: tiles_on_axis, tile_axis, tile_key_range). */
#ifndef NA_TILE_H
#define NA_TILE_H

#include "na_common.h"

/* One tile's geometry, per axis (unused axes: group 0, first 0, valid 1, one key). */
typedef struct {
  int grp[3];   /* dilation group */
  int first[3]; /* first query of the tile (group coordinates) */
  int valid[3]; /* queries of the tile inside the group (>= 1 when the tile is live) */
  int glen[3];  /* group length */
  int kst[3];   /* first key of the union of the tile's windows (group coordinates) */
  int kcnt[3];  /* keys in that union */
  int live;     /* 0 for a tile past the end of a short dilation group */
} na_tile;

NA_FN na_tile na_tile_of(int tile, int L0, int L1, int L2, int nt0, int nt1, int nt2, int tq0,
                         int tq1, int tq2) {
  na_tile t;
  const int tix[3] = {tile / (nt1 * nt2), (tile / nt2) % nt1, tile % nt2};
  const int ntx[3] = {nt0, nt1, nt2};
  const int Lx[3] = {L0, L1, L2};
  const int tqx[3] = {tq0, tq1, tq2};
  t.live = 1;
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const int per_group = ntx[a] / AX_D(a);
    t.grp[a] = tix[a] / per_group;
    t.first[a] = (tix[a] % per_group) * tqx[a];
    t.glen[a] = na_group_len(Lx[a], AX_D(a), t.grp[a]);
    t.valid[a] = NA_MIN(t.glen[a] - t.first[a], tqx[a]);
    if (t.valid[a] <= 0) {
      t.live = 0;
      t.valid[a] = 1; /* keeps the arithmetic below defined; nothing is written */
    }
    t.kst[a] = na_win_start(t.first[a], t.glen[a], AX_K(a), AX_S(a), AX_C(a));
    t.kcnt[a] =
        na_win_end(t.first[a] + t.valid[a] - 1, t.glen[a], AX_K(a), AX_S(a), AX_C(a)) - t.kst[a];
  }
  return t;
}

/* Token of the position (first[a] + x_a) * d_a + grp[a] on every axis. */
#define NA_TOKEN(x0, x1, x2, f, g, L1, L2)                                             \
  ((((f)[0] + (x0)) * DIL0 + (g)[0]) * (L1) + ((f)[1] + (x1)) * DIL1 + (g)[1]) * (L2) + \
      ((f)[2] + (x2)) * DIL2 + (g)[2]

/* Row `row` of a TQ0 x TQ1 x TQ2 tile to its box coordinates (needs TQ1, TQ2 defined). */
#define ROW_X(row, x0, x1, x2) \
  const int x0 = (row) / (TQ1 * TQ2), x1 = ((row) / TQ2) % TQ1, x2 = (row) % TQ2

/* Advances box coordinates (c0, c1, c2) by `step` in row-major order over the used axes (one
   division per crossed row, none for rank 1); n1, n2 are the box's extents on axes 1 and 2. */
#if RANK == 1
#define ADVANCE(c0, c1, c2, step, n1, n2) ((c0) += (step))
#elif RANK == 2
#define ADVANCE(c0, c1, c2, step, n1, n2) \
  do {                                    \
    c1 += (step);                         \
    if (c1 >= (n1)) {                     \
      const int q_ = c1 / (n1);           \
      c1 -= q_ * (n1);                    \
      c0 += q_;                           \
    }                                     \
  } while (0)
#else
#define ADVANCE(c0, c1, c2, step, n1, n2) \
  do {                                    \
    c2 += (step);                         \
    if (c2 >= (n2)) {                     \
      const int q_ = c2 / (n2);           \
      c2 -= q_ * (n2);                    \
      c1 += q_;                           \
      if (c1 >= (n1)) {                   \
        const int r_ = c1 / (n1);         \
        c1 -= r_ * (n1);                  \
        c0 += r_;                         \
      }                                   \
    }                                     \
  } while (0)
#endif

/* Whether (y0, y1, y2) lies in [l0, h0) x [l1, h1) x [l2, h2) on the used axes. With & rather
   than &&, so it works lane-wise on vectors (-1 / 0 per lane) as on scalars (1 / 0); the
   arguments of unused axes are dropped unevaluated. */
#if RANK == 1
#define NA_IN_BOX(y0, y1, y2, l0, h0, l1, h1, l2, h2) (((y0) >= (l0)) & ((y0) < (h0)))
#elif RANK == 2
#define NA_IN_BOX(y0, y1, y2, l0, h0, l1, h1, l2, h2) \
  (((y0) >= (l0)) & ((y0) < (h0)) & ((y1) >= (l1)) & ((y1) < (h1)))
#else
#define NA_IN_BOX(y0, y1, y2, l0, h0, l1, h1, l2, h2)                    \
  (((y0) >= (l0)) & ((y0) < (h0)) & ((y1) >= (l1)) & ((y1) < (h1)) & \
   ((y2) >= (l2)) & ((y2) < (h2)))
#endif

/* Box coordinates of flat index f in a box of extents (., n1, n2). */
#define BOX_COORDS(f, c, n1, n2)    \
  do {                              \
    (c)[2] = (f) % (n2);            \
    (c)[1] = ((f) / (n2)) % (n1);   \
    (c)[0] = (f) / ((n2) * (n1));   \
  } while (0)

#endif /* NA_TILE_H */
