/* The per-axis neighborhood rule of SPEC.md section 2 and its inverse, shared verbatim by the
 * host (src/core/window.hpp) and every kernel, so there is one formula to get right. Valid C99
 * and OpenCL C. All indices here are inside one dilation group ("group coordinates"); the caller
 * maps position p to group p % d, index p / d, and back with index * d + group.
 *
 * Inverse neighborhood (derivation in docs/DESIGN.md): the window start is nondecreasing in the
 * query index and so is the window end, so the queries that see key j form one contiguous range
 * [na_inv_lo, na_inv_hi], found in closed form below, and never empty (s <= K leaves no key
 * unseen). Property-tested against brute force in tests/test_window.cpp. */
#ifndef NA_WINDOW_H
#define NA_WINDOW_H

#ifndef NA_FN
#define NA_FN static inline
#endif

#define NA_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NA_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Members of dilation group g of an axis of length L with dilation d. */
NA_FN int na_group_len(int L, int d, int g) { return (L - g + d - 1) / d; }

/* First key (group coordinates) in the window of query i of a group of length Lg. */
NA_FN int na_win_start(int i, int Lg, int K, int s, int causal) {
  if (causal) {
    int leader = NA_MIN((i / s) * s + s - 1, Lg - 1);
    return NA_MAX(leader - K + 1, 0);
  }
  /* SPEC: max(leader - left, 0) + (leader + right >= Lg ? Lg - right - leader - 1 : 0), which is
     leader - left clamped to [0, Lg - K] because K <= Lg in every group. */
  int leader = NA_MIN((i / s) * s + s / 2, Lg - 1);
  return NA_MIN(NA_MAX(leader - K / 2, 0), Lg - K);
}

/* One past the last key in the window of query i. */
NA_FN int na_win_end(int i, int Lg, int K, int s, int causal) {
  return causal ? i + 1 : na_win_start(i, Lg, K, s, 0) + K;
}

/* First query whose window holds key j. */
NA_FN int na_inv_lo(int j, int Lg, int K, int s, int causal) {
  if (causal) return j;
  (void)Lg;
  if (j - K + 1 <= 0) return 0; /* every start is >= 0 */
  /* start(i) >= j - K + 1 > 0  <=>  (i / s) * s >= j - right - s / 2 (> 0 here) */
  int right = K - 1 - K / 2;
  int t = j - right - s / 2;
  return ((t + s - 1) / s) * s;
}

/* Last query whose window holds key j. */
NA_FN int na_inv_hi(int j, int Lg, int K, int s, int causal) {
  if (causal) {
    /* leader(i) <= j + K - 1 */
    if (Lg - 1 <= j + K - 1) return Lg - 1;
    return NA_MIN(((j + K - s) / s) * s + s - 1, Lg - 1);
  }
  /* start(i) <= j  <=>  leader(i) <= j + K / 2 (unless j >= Lg - K: every query) */
  if (j >= Lg - K || Lg - 1 <= j + K / 2) return Lg - 1;
  return NA_MIN(((j + K / 2 - s / 2) / s) * s + s - 1, Lg - 1);
}

#endif /* NA_WINDOW_H */
