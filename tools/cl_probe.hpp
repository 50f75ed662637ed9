// Helpers shared by the stand-alone OpenCL probes in tools/ (each built alone with g++ on the GPU
// machine; see their headers).
#pragma once
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

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
