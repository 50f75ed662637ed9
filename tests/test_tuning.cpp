// The tuning database's lookup order: the user's file, the cache folder's database, then the one
// shipped in the library; and the levels inside each: exact device and driver, device, family,
// vendor and type. Uses synthetic device descriptions, so it needs no GPU.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "runtime/tuning_db.hpp"

namespace openna {
namespace {

DeviceInfo h100(const std::string& name = "NVIDIA H100 80GB HBM3",
                const std::string& driver = "580.159.04") {
  DeviceInfo d;
  d.name = name;
  d.vendor = "NVIDIA Corporation";
  d.driver_version = driver;
  d.type = CL_DEVICE_TYPE_GPU;
  return d;
}

const char* kKey = "na_fwd_fused_r2_k13x13_hd64_f32";  // in data/tuning_builtin.json

class TuningDb : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("OPENNA_TUNING_FILE");
    unsetenv("OPENNA_BUILTIN_TUNING");
    setenv("OPENNA_TUNING_DB", "/nonexistent/openna/tuning.json", 1);
  }
  void TearDown() override {
    unsetenv("OPENNA_TUNING_FILE");
    unsetenv("OPENNA_BUILTIN_TUNING");
  }
};

TEST_F(TuningDb, BuiltinLevels) {
  auto exact = lookup_tuned(h100(), kKey);
  ASSERT_TRUE(exact.has_value());
  EXPECT_EQ("exact", exact->source);
  EXPECT_EQ("builtin", exact->file);
  EXPECT_EQ("FORM=0,TQ0=4,TQ1=8,TQ2=1,TK=16,RQ=2,TC=8,VW=2", exact->config);

  auto other_driver = lookup_tuned(h100("NVIDIA H100 80GB HBM3", "999.1"), kKey);
  ASSERT_TRUE(other_driver.has_value());
  EXPECT_EQ("device", other_driver->source);

  auto family = lookup_tuned(h100("NVIDIA H100 PCIe"), kKey);
  ASSERT_TRUE(family.has_value());
  EXPECT_EQ("family", family->source);

  auto vendor = lookup_tuned(h100("NVIDIA A100-SXM4-40GB"), kKey);
  ASSERT_TRUE(vendor.has_value());
  EXPECT_EQ("vendor", vendor->source);

  DeviceInfo cpu = h100("some cpu");
  cpu.vendor = "GenuineIntel";
  cpu.type = CL_DEVICE_TYPE_CPU;
  EXPECT_FALSE(lookup_tuned(cpu, kKey).has_value());
  EXPECT_FALSE(lookup_tuned(h100(), "na_fwd_fused_no_such_key").has_value());
}

TEST_F(TuningDb, BuiltinCanBeTurnedOff) {
  setenv("OPENNA_BUILTIN_TUNING", "0", 1);
  EXPECT_FALSE(lookup_tuned(h100(), kKey).has_value());
}

TEST_F(TuningDb, UserFileComesFirst) {
  const std::string path = ::testing::TempDir() + "openna_user_tuning.json";
  {
    std::ofstream out(path);
    out << R"({"format": 1, "devices": {"nvidia h100 80gb hbm3": {"vendor": "NVIDIA Corporation",
      "type": "GPU", "drivers": {"580.159.04": {")"
        << kKey << R"(": {"config": "FORM=0,TQ0=8,TQ1=8,TQ2=1,TK=32,RQ=4,TC=8,VW=4"}}}}}})";
  }
  setenv("OPENNA_TUNING_FILE", path.c_str(), 1);
  auto e = lookup_tuned(h100(), kKey);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(path, e->file);
  EXPECT_EQ("FORM=0,TQ0=8,TQ1=8,TQ2=1,TK=32,RQ=4,TC=8,VW=4", e->config);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace openna
