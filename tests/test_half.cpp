// The host's f16/bf16 conversions (core/half.hpp), which make every test's inputs, read every
// output and check the mma probe: exact round trips of every 16-bit pattern, and
// round-to-nearest-even from float.
#include <gtest/gtest.h>

#include <cmath>

#include "core/half.hpp"

namespace openna {
namespace {

TEST(Half, EveryPatternRoundTrips) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const float f = f16_to_float(bits);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(f)))) << h;
    } else {
      EXPECT_EQ(bits, float_to_f16(f)) << h;
    }
    const float g = bf16_to_float(bits);
    if (std::isnan(g)) {
      EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(g)))) << h;
    } else {
      EXPECT_EQ(bits, float_to_bf16(g)) << h;
    }
  }
}

TEST(Half, RoundsToNearestEven) {
  EXPECT_EQ(f16_to_float(float_to_f16(1.0f + 1.0f / 2048)), 1.0f);  // tie, even below
  EXPECT_EQ(f16_to_float(float_to_f16(1.0f + 3.0f / 2048)), 1.0f + 4.0f / 2048);  // tie, even above
  EXPECT_EQ(f16_to_float(float_to_f16(65520.0f)), INFINITY);  // past the largest half
  EXPECT_EQ(f16_to_float(float_to_f16(5.96e-8f)), 5.9604645e-8f);  // smallest subnormal
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
  for (int x = -300; x <= 300; ++x) {  // small integers, as the mma probe uses them
    if (std::abs(x) <= 256) EXPECT_EQ(bf16_to_float(float_to_bf16(x)), x);
    EXPECT_EQ(f16_to_float(float_to_f16(x)), x);
  }
}

}  // namespace
}  // namespace openna
