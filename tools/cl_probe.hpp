// Helpers shared by the stand-alone OpenCL probes in tools/ (each built alone with g++ on the GPU
// machine; see their headers).
#pragma once
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include <cstdio>
#include <string>

// The program's binary for its one device (PTX on NVIDIA's driver), without trailing NULs.
static inline std::string ptx_of(cl_program p) {
  size_t n = 0;
  clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, nullptr);
  std::string s(n, '\0');
  unsigned char* b = reinterpret_cast<unsigned char*>(&s[0]);
  clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof b, &b, nullptr);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

// The first GPU of an OpenCL platform whose name holds "NVIDIA", or nullptr.
static inline cl_device_id first_nvidia_gpu() {
  cl_platform_id plats[16];
  cl_uint np = 0;
  clGetPlatformIDs(16, plats, &np);
  for (cl_uint i = 0; i < np && i < 16; ++i) {
    char name[256] = {0};
    clGetPlatformInfo(plats[i], CL_PLATFORM_NAME, sizeof name, name, nullptr);
    cl_device_id dev = nullptr;
    if (std::string(name).find("NVIDIA") != std::string::npos &&
        clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_GPU, 1, &dev, nullptr) == CL_SUCCESS)
      return dev;
  }
  return nullptr;
}

// A program's build log for its device, cut to `max` characters.
static inline std::string build_log_of(cl_program p, cl_device_id d, std::size_t max = 3000) {
  std::size_t n = 0;
  clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
  std::string log(n, '\0');
  clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, n, &log[0], nullptr);
  return log.substr(0, max);
}

// The first NVIDIA GPU with a context and a queue; false (after saying so) where there is none.
struct NvidiaCl {
  cl_device_id dev = nullptr;
  cl_context ctx = nullptr;
  cl_command_queue q = nullptr;
};
static inline bool open_nvidia(NvidiaCl& cl) {
  cl.dev = first_nvidia_gpu();
  if (!cl.dev) {
    std::printf("no NVIDIA OpenCL GPU\n");
    return false;
  }
  cl_int err = 0;
  cl.ctx = clCreateContext(nullptr, 1, &cl.dev, nullptr, nullptr, &err);
  cl.q = clCreateCommandQueue(cl.ctx, cl.dev, 0, &err);
  return err == CL_SUCCESS;
}
