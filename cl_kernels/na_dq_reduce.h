/* na_dq_reduce.h: the dQ partials' reduction of the 5-product backward (included by
   na_fused_bwd_lanes.cl and na_fused_bwd.cl). */
/* The 5-product backward's second pass (the lanes form's DQP=1 and the work-group form's):
   d_q[row] = scale * (sum of the partials of the key-tile columns (CT tiles on axis 0; CT = 1:
   single tiles) that the query's window touches, in row-major column order). The scratch holds,
   per (batch, head), one slot per column of QB rows (the rows of the column's inverse box,
   row-major, axis 0 slowest) of HDP floats:
   - DQ_DMAJOR 0 (the lanes form): row-major slots (QB rows of HDP floats); one work-item per
     (batch, query) for all heads (the windows, columns and offsets depend on neither head, so
     they are found once), VW-wide loads along the head dims;
   - DQ_DMAJOR 1 (the work-group form): head-dim major slots (HDP runs of QB floats); one
     work-item per (DQR_DIMS head dims, batch, head, query), queries fastest, so that a warp's
     loads of one head dim are neighbouring floats of a slot.
   Needs the tile (TQ0..TQ2), the window (K0.., AX_*), HDP and VW (vec_t, na_vec.h). */
#ifndef NA_DQ_REDUCE_H
#define NA_DQ_REDUCE_H
#ifndef DQ_DMAJOR
#define DQ_DMAJOR 0
#endif
#if DQ_DMAJOR && !defined(DQR_DIMS)
#error "DQR_DIMS (head dims per work-item) comes from the host, which sizes the launch by it"
#endif
__kernel void na_fused_bwd_dq_reduce(__global const float* dq_part, __global stor_t* d_q, int B,
                                     int L0, int L1, int L2, int H, int hd, float scale,
                                     int nt0, int nt1, int nt2, int QB, int CT) {
  const int N = L0 * L1 * L2;
  const int id = get_global_id(0);
#if DQ_DMAJOR
  if (id >= B * H * N * (HDP / DQR_DIMS)) return;
  const int tok = id % N, h0 = (id / N) % H, b = (id / (N * H)) % B, h1 = h0 + 1;
  const int dg = id / (N * H * B) * DQR_DIMS; /* the item's first head dim */
#else
  if (id >= B * N) return;
  const int tok = id % N, b = id / N, h0 = 0, h1 = H;
#endif
  const int pos[3] = {tok / (L1 * L2), (tok / L2) % L1, tok % L2};
  const int Lx[3] = {L0, L1, L2}, ntx[3] = {nt0, nt1, nt2}, tq[3] = {TQ0, TQ1, TQ2};
  /* Per axis: the slots the query's window touches (within-group indices w0..w1, at most
     NA_RT of them: on axis 0 columns of CT tiles, on the others tiles), and for each the
     query's place in that slot's box: on axis 0 from the column's first tile's inverse box
     start. A window of at most K keys touches at most (K + 2 TQ - 2) / TQ tiles of TQ. */
#define NA_RT_AX(k, tq) (((k) + 2 * (tq) - 2) / (tq))
#define NA_RT NA_MAX(NA_MAX(NA_RT_AX(K0, TQ0), NA_RT_AX(K1, TQ1)), NA_RT_AX(K2, TQ2))
  int tbase[3], w0[3], nw[3], off[3][NA_RT], cnt[3][NA_RT];
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const int g = pos[a] % AX_D(a), x = pos[a] / AX_D(a);
    const int glen = na_group_len(Lx[a], AX_D(a), g);
    const int ws = na_win_start(x, glen, AX_K(a), AX_S(a), AX_C(a));
    const int we = na_win_end(x, glen, AX_K(a), AX_S(a), AX_C(a));
    const int ct = a == 0 ? CT : 1;
    const int tpg = ntx[a] / AX_D(a);
    tbase[a] = g * ((tpg + ct - 1) / ct);
    w0[a] = ws / tq[a] / ct;
    nw[a] = (we - 1) / tq[a] / ct - w0[a] + 1;
    for (int w = 0; w < nw[a]; ++w) {
      const int first = (w0[a] + w) * ct * tq[a];
      const int last = NA_MIN(first + tq[a], glen) - 1;
      const int lo = na_inv_lo(first, glen, AX_K(a), AX_S(a), AX_C(a));
      off[a][w] = x - lo;
      cnt[a][w] = na_inv_hi(last, glen, AX_K(a), AX_S(a), AX_C(a)) - lo + 1;
    }
  }
  const int slots = AX_D(0) * ((nt0 / AX_D(0) + CT - 1) / CT) * nt1 * nt2;
  for (int h = h0; h < h1; ++h) {
    const int row = (b * N + tok) * H + h;
    __global const float* base = dq_part + (b * H + h) * slots * QB * HDP;
#if DQ_DMAJOR
    float acc[DQR_DIMS];
#pragma unroll
    for (int d = 0; d < DQR_DIMS; ++d) acc[d] = 0.0f;
#else
    /* The sums stay in registers (no pointer to them is taken): whole rows of 16 are stored
       from them, only the rest goes through a private copy. */
    vec_t acc[HDP / VW];
#pragma unroll
    for (int i = 0; i < HDP / VW; ++i) acc[i] = (vec_t)(0.0f);
#endif
#if DQ_DMAJOR
    /* The slots in one sequence, two at a time: both slots' loads are issued before either is
       added (twice the loads in flight; the sum's order is unchanged). */
    const int nslot = nw[0] * nw[1] * nw[2];
    for (int w = 0; w < nslot; w += 2) {
      float v0[DQR_DIMS], v1[DQR_DIMS];
      __global const float* src[2];
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int ww = NA_MIN(w + u, nslot - 1);
        const int i2 = ww % nw[2], i1 = (ww / nw[2]) % nw[1], i0 = ww / (nw[2] * nw[1]);
        const int tile = ((tbase[0] + w0[0] + i0) * nt1 + tbase[1] + w0[1] + i1) * nt2 +
                         tbase[2] + w0[2] + i2;
        const int flat = (off[0][i0] * cnt[1][i1] + off[1][i1]) * cnt[2][i2] + off[2][i2];
        src[u] = base + (tile * HDP + dg) * QB + flat;
      }
#pragma unroll
      for (int d = 0; d < DQR_DIMS; ++d) v0[d] = dg + d < hd ? src[0][d * QB] : 0.0f;
#pragma unroll
      for (int d = 0; d < DQR_DIMS; ++d) v1[d] = dg + d < hd ? src[1][d * QB] : 0.0f;
#pragma unroll
      for (int d = 0; d < DQR_DIMS; ++d) acc[d] += v0[d];
      if (w + 1 < nslot) {
#pragma unroll
        for (int d = 0; d < DQR_DIMS; ++d) acc[d] += v1[d];
      }
    }
#else
    for (int i0 = 0; i0 < nw[0]; ++i0)
      for (int i1 = 0; i1 < nw[1]; ++i1)
        for (int i2 = 0; i2 < nw[2]; ++i2) {
          const int tile = ((tbase[0] + w0[0] + i0) * nt1 + tbase[1] + w0[1] + i1) * nt2 +
                           tbase[2] + w0[2] + i2;
          const int flat = (off[0][i0] * cnt[1][i1] + off[1][i1]) * cnt[2][i2] + off[2][i2];
          __global const float* src = base + (tile * QB + flat) * HDP;
#pragma unroll
          for (int i = 0; i < HDP / VW; ++i)
            if (i * VW < hd) acc[i] += VLOAD(&src[i * VW]);
        }
#endif
#if DQ_DMAJOR
#pragma unroll
    for (int d = 0; d < DQR_DIMS; ++d)
      if (dg + d < hd) STOREF(d_q, row * hd + dg + d, acc[d] * scale);
#else
    int d0 = 0;
#if VW == 16 && defined(STOREF16)
#pragma unroll
    for (int i = 0; i < HDP / VW; ++i)
      if ((i + 1) * VW <= hd) {
        STOREF16(acc[i] * scale, d_q, row * hd + i * VW);
        d0 = (i + 1) * VW;
      }
#endif
    float dq[HDP];
#pragma unroll
    for (int i = 0; i < HDP / VW; ++i) VSTORE(acc[i], &dq[i * VW]);
    for (int d = d0; d < hd; ++d) STOREF(d_q, row * hd + d, dq[d] * scale);
#endif
  }
}
#endif
