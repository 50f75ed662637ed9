// Can an OpenCL kernel on NVIDIA's driver use more than the 48 KB of local memory that
// CL_DEVICE_LOCAL_MEM_SIZE reports (session 15)? Builds kernels with one static __local array of
// 48 KB to 228 KB (-DWORDS), from source and again from their own PTX as a binary (openna's
// sm_90a path), and a kernel whose __local argument is 40 KB to 227 KB; each work-group fills
// its array, reads it back in another order and writes checksums, which the host checks.
// Prints every OpenCL status. H100 and H200, driver 580.159.04: static arrays up to 227328
// bytes build and run (232448 does not build); arguments fail at enqueue from 49152 bytes
// (CL_OUT_OF_RESOURCES). docs/DESIGN.md.
// Build on the GPU machine: g++ -O1 -std=c++17 tools/dynsmem_probe.cpp -lOpenCL -o /tmp/d
#include "cl_probe.hpp"

#include <cstdio>
#include <string>
#include <vector>

static const char* kSrc = R"CLC(
__kernel void fill(__local uint* buf, int n, __global uint* out) {
  const int lid = get_local_id(0), g = get_group_id(0);
  for (int i = lid; i < n; i += get_local_size(0)) buf[i] = (uint)i * 2654435761u ^ (uint)g;
  barrier(CLK_LOCAL_MEM_FENCE);
  uint s = 0;
  for (int i = lid; i < n; i += get_local_size(0)) s += buf[n - 1 - i];
  out[g * get_local_size(0) + lid] = s;
}
#ifndef WORDS
#define WORDS 16384
#endif
__kernel void fixed64(__global uint* out) {
  __local uint buf[WORDS];
  const int lid = get_local_id(0);
  for (int i = lid; i < WORDS; i += get_local_size(0)) buf[i] = i * 3u + get_group_id(0);
  barrier(CLK_LOCAL_MEM_FENCE);
  uint s = 0;
  for (int i = lid; i < WORDS; i += get_local_size(0)) s += buf[WORDS - 1 - i];
  out[get_group_id(0) * 256 + lid] = s;
}
)CLC";

static cl_context ctx;
static cl_device_id dev;
static cl_command_queue queue;

static void run(cl_program prog, const char* what, size_t bytes) {
  cl_int e;
  cl_kernel k = clCreateKernel(prog, "fill", &e);
  const int groups = 264, lsz = 256;
  const int n = static_cast<int>(bytes / 4);
  cl_mem out = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, sizeof(cl_uint) * groups * lsz, nullptr, &e);
  cl_int ea = clSetKernelArg(k, 0, bytes, nullptr);
  clSetKernelArg(k, 1, sizeof n, &n);
  clSetKernelArg(k, 2, sizeof out, &out);
  size_t gsz = static_cast<size_t>(groups) * lsz, l = lsz;
  cl_int ee = clEnqueueNDRangeKernel(queue, k, 1, nullptr, &gsz, &l, 0, nullptr, nullptr);
  cl_int ef = clFinish(queue);
  std::vector<cl_uint> got(static_cast<size_t>(groups) * lsz, 0xdeadbeef);
  cl_int er = clEnqueueReadBuffer(queue, out, CL_TRUE, 0, sizeof(cl_uint) * got.size(), got.data(),
                                  0, nullptr, nullptr);
  long bad = 0;
  for (int g = 0; g < groups; ++g)
    for (int lid = 0; lid < lsz; ++lid) {
      cl_uint s = 0;
      for (int i = lid; i < n; i += lsz) {
        const int j = n - 1 - i;
        s += static_cast<cl_uint>(j) * 2654435761u ^ static_cast<cl_uint>(g);
      }
      if (got[static_cast<size_t>(g) * lsz + lid] != s) ++bad;
    }
  std::printf("%s, %zu bytes: setarg %d enqueue %d finish %d read %d, wrong %ld of %d\n", what,
              bytes, ea, ee, ef, er, bad, groups * lsz);
  clReleaseMemObject(out);
  clReleaseKernel(k);
}

int main() {
  cl_uint np = 0;
  clGetPlatformIDs(0, nullptr, &np);
  std::vector<cl_platform_id> ps(np);
  clGetPlatformIDs(np, ps.data(), nullptr);
  for (cl_platform_id p : ps) {
    char name[256] = {};
    clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof name, name, nullptr);
    if (std::string(name).find("NVIDIA") == std::string::npos) continue;
    clGetDeviceIDs(p, CL_DEVICE_TYPE_GPU, 1, &dev, nullptr);
  }
  if (!dev) {
    std::printf("no NVIDIA device\n");
    return 1;
  }
  cl_ulong lm = 0;
  clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lm, &lm, nullptr);
  std::printf("CL_DEVICE_LOCAL_MEM_SIZE %llu\n", static_cast<unsigned long long>(lm));
  cl_int e;
  ctx = clCreateContext(nullptr, 1, &dev, nullptr, nullptr, &e);
  queue = clCreateCommandQueue(ctx, dev, 0, &e);
  cl_program prog = clCreateProgramWithSource(ctx, 1, &kSrc, nullptr, &e);
  cl_int eb = clBuildProgram(prog, 1, &dev, "", nullptr, nullptr);
  size_t logn = 0;
  clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, nullptr, &logn);
  std::string lg(logn, '\0');
  clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, logn, &lg[0], nullptr);
  std::printf("build (with a static 64 KB __local array) %d; log: %s\n", eb, lg.c_str());
  if (eb != CL_SUCCESS) {
    // Without the static kernel: the dynamic one alone.
    std::string src(kSrc);
    src = src.substr(0, src.find("__kernel void fixed64"));
    const char* s2 = src.c_str();
    prog = clCreateProgramWithSource(ctx, 1, &s2, nullptr, &e);
    eb = clBuildProgram(prog, 1, &dev, "", nullptr, nullptr);
    std::printf("build without it %d\n", eb);
  }
  for (int words : {12288, 12289, 16384, 25600, 40960, 51200, 56832, 58112, 58368}) {
    // a static __local array of `words` 32-bit words, from source and from its PTX
    const std::string opt = "-DWORDS=" + std::to_string(words);
    cl_program ps = clCreateProgramWithSource(ctx, 1, &kSrc, nullptr, &e);
    cl_int b1 = clBuildProgram(ps, 1, &dev, opt.c_str(), nullptr, nullptr);
    std::string px = ptx_of(ps);
    const unsigned char* pb = reinterpret_cast<const unsigned char*>(px.data());
    size_t pl = px.size();
    cl_int bs2;
    cl_program pp =
        b1 == CL_SUCCESS ? clCreateProgramWithBinary(ctx, 1, &dev, &pl, &pb, &bs2, &e) : nullptr;
    cl_int b2 = pp ? clBuildProgram(pp, 1, &dev, "", nullptr, nullptr) : -999;
    for (cl_program pr : {ps, pp}) {
      if (!pr) continue;
      cl_kernel k = clCreateKernel(pr, "fixed64", &e);
      if (e != CL_SUCCESS) {
        std::printf("%d words: build %d/%d, kernel %d\n", words, b1, b2, e);
        continue;
      }
      cl_ulong klm = 0;
      clGetKernelWorkGroupInfo(k, dev, CL_KERNEL_LOCAL_MEM_SIZE, sizeof klm, &klm, nullptr);
      const int groups = 264;
      cl_mem out = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, 4 * 256 * groups, nullptr, &e);
      clSetKernelArg(k, 0, sizeof out, &out);
      size_t gsz = 256 * groups, l = 256;
      cl_int ee = clEnqueueNDRangeKernel(queue, k, 1, nullptr, &gsz, &l, 0, nullptr, nullptr);
      cl_int ef = clFinish(queue);
      std::vector<cl_uint> got(256 * groups, 0xdeadbeef);
      clEnqueueReadBuffer(queue, out, CL_TRUE, 0, 4 * got.size(), got.data(), 0, nullptr, nullptr);
      long bad = 0;
      for (int g = 0; g < groups; ++g)
        for (int lid = 0; lid < 256; ++lid) {
          cl_uint sum = 0;
          for (int i = lid; i < words; i += 256)
            sum += static_cast<cl_uint>(words - 1 - i) * 3u + g;
          bad += got[g * 256 + lid] != sum;
        }
      std::printf(
          "static %d bytes (%s): build %d/%d, local %llu, enqueue %d finish %d, wrong %ld\n",
          4 * words, pr == ps ? "source" : "PTX binary", b1, b2,
          static_cast<unsigned long long>(klm), ee, ef, bad);
      clReleaseMemObject(out);
      clReleaseKernel(k);
    }
  }
  for (size_t kb : {40, 47, 48, 64}) run(prog, "source", kb * 1024);
  std::string ptx = ptx_of(prog);
  const unsigned char* bin = reinterpret_cast<const unsigned char*>(ptx.data());
  size_t len = ptx.size();
  cl_int bs;
  cl_program pb = clCreateProgramWithBinary(ctx, 1, &dev, &len, &bin, &bs, &e);
  eb = clBuildProgram(pb, 1, &dev, "", nullptr, nullptr);
  std::printf("binary build %d %d %d\n", e, bs, eb);
  for (size_t kb : {40, 64, 100, 227}) run(pb, "PTX binary", kb * 1024);
  return 0;
}
