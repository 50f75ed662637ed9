// The shared window formula (cl_kernels/na_window.h) against SPEC.md's literal rule (the
// reference's spec_axis_window), and the closed-form inverse neighborhood against brute force,
// for every small axis: length, kernel, stride, dilation and causal.
#include <gtest/gtest.h>

#include "core/window.hpp"
#include "testing/reference.hpp"

namespace openna {
namespace {

TEST(Window, MatchesSpecAndInverseMatchesBruteForce) {
  long checked = 0;
  for (int L = 1; L <= 26; ++L)
    for (int d = 1; d <= L; ++d)
      for (int K = 1; K * d <= L; ++K)
        for (int s = 1; s <= K; ++s)
          for (int causal = 0; causal <= 1; ++causal) {
            const Axis ax{L, K, s, d, causal == 1};
            std::vector<std::vector<int>> win(L);
            for (int i = 0; i < L; ++i) {
              win[i] = testing::spec_axis_window(L, K, s, d, causal == 1, i);
              const AxisRange r = axis_window(ax, i);
              std::vector<int> got;
              for (int t = 0; t < r.count; ++t) got.push_back(r.first + t * r.step);
              ASSERT_EQ(got, win[i]) << "window L=" << L << " K=" << K << " s=" << s
                                     << " d=" << d << " causal=" << causal << " i=" << i;
            }
            for (int j = 0; j < L; ++j) {
              std::vector<int> brute;
              for (int i = 0; i < L; ++i)
                for (int key : win[i])
                  if (key == j) brute.push_back(i);
              const AxisRange r = axis_inverse(ax, j);
              std::vector<int> got;
              for (int t = 0; t < r.count; ++t) got.push_back(r.first + t * r.step);
              ASSERT_EQ(got, brute) << "inverse L=" << L << " K=" << K << " s=" << s
                                    << " d=" << d << " causal=" << causal << " j=" << j;
              ++checked;
            }
          }
  EXPECT_GT(checked, 10000);
}

// Every query sees exactly K keys per axis when not causal, at most K when causal, and always
// itself when causal.
TEST(Window, CountsAndSelf) {
  for (int L = 1; L <= 20; ++L)
    for (int d = 1; d <= L; ++d)
      for (int K = 1; K * d <= L; ++K)
        for (int s = 1; s <= K; ++s)
          for (int i = 0; i < L; ++i) {
            EXPECT_EQ(axis_window({L, K, s, d, false}, i).count, K);
            const AxisRange c = axis_window({L, K, s, d, true}, i);
            EXPECT_LE(c.count, K);
            EXPECT_EQ(c.first + (c.count - 1) * c.step, i);
          }
}

}  // namespace
}  // namespace openna
