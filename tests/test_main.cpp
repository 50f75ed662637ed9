// GoogleTest main of every test program: says which OpenCL device the tests run on.
#include <gtest/gtest.h>

#include <cstdio>

#include "core/errors.hpp"
#include "runtime/device.hpp"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (GTEST_FLAG_GET(list_tests)) return RUN_ALL_TESTS();  // test discovery parses this output
  try {
    const openna::DeviceInfo dev = openna::select_device("");
    std::printf("openna tests on %s (driver %s)\n", dev.label().c_str(),
                dev.driver_version.c_str());
  } catch (const openna::Error& e) {
    std::printf("openna tests: no OpenCL device: %s\n", e.what());
  }
  return RUN_ALL_TESTS();
}
