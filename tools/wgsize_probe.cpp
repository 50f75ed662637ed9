// What limits the work-group size of a kernel on NVIDIA's OpenCL driver (session 13)? Builds a
// trivial kernel with reqd_work_group_size(384) from source, then rebuilds it from its own PTX
// as a binary and as sm_90a PTX with .maxnreg 128, and builds one without the attribute.
// Prints CL_KERNEL_WORK_GROUP_SIZE, the registers from the build log and the PTX entry
// directives of each, and launches the trivial kernels with 256-1024 work-items. Optional
// argument pairs (FILE OPTIONS) build an mma forward (na_mma_fwd.cl with its #include lines
// replaced by the files) the same ways, with .maxnreg 0, 128 and 168.
// H100, driver 580: every kernel reports 256 (a 10-register one too) while the device reports
// 1024, and launches of 384, 512 and 1024 work-items of the trivial kernel ran correctly: the
// driver's figure assumes 255 registers a work-item (docs/DESIGN.md).
// Build on the GPU machine: g++ -O1 -std=c++17 tools/wgsize_probe.cpp -lOpenCL -o /tmp/p
#include "cl_probe.hpp"
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

static cl_context ctx;
static cl_device_id dev;

static std::string log_of(cl_program p) {
  size_t n = 0;
  clGetProgramBuildInfo(p, dev, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
  std::string s(n, '\0');
  clGetProgramBuildInfo(p, dev, CL_PROGRAM_BUILD_LOG, n, &s[0], nullptr);
  return s;
}
static void report(const char* what, cl_program p, const char* kname, cl_int berr) {
  std::printf("== %s: build %d\n", what, berr);
  std::string lg = log_of(p);
  std::istringstream ls(lg);
  std::string line;
  while (std::getline(ls, line))
    if (line.find("registers") != std::string::npos || line.find("rror") != std::string::npos ||
        line.find("spill") != std::string::npos)
      std::printf("   log: %s\n", line.c_str());
  if (berr != CL_SUCCESS) return;
  cl_int e;
  cl_kernel k = clCreateKernel(p, kname, &e);
  if (e != CL_SUCCESS) { std::printf("   kernel %d\n", e); return; }
  size_t wg = 0; cl_ulong lm = 0;
  clGetKernelWorkGroupInfo(k, dev, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg, nullptr);
  clGetKernelWorkGroupInfo(k, dev, CL_KERNEL_LOCAL_MEM_SIZE, sizeof lm, &lm, nullptr);
  std::printf("   CL_KERNEL_WORK_GROUP_SIZE %zu, local %llu\n", wg, (unsigned long long)lm);
  clReleaseKernel(k);
}
static void directives(const std::string& ptx) {
  std::istringstream in(ptx);
  std::string line;
  while (std::getline(in, line))
    if (line.find(".reqntid") != std::string::npos || line.find(".maxntid") != std::string::npos ||
        line.find(".maxnreg") != std::string::npos || line.find(".target") != std::string::npos ||
        line.find(".minnctapersm") != std::string::npos)
      std::printf("   ptx: %s\n", line.c_str());
}
static std::string rewrite(const std::string& ptx, int maxnreg) {
  std::istringstream in(ptx);
  std::string line, out;
  bool entry = false;
  while (std::getline(in, line)) {
    size_t f = line.find_first_not_of(" \t");
    std::string body = f == std::string::npos ? "" : line.substr(f);
    const std::string mk = "// @sm_90a@ ";
    if (body.compare(0, mk.size(), mk) == 0) line = body.substr(mk.size());
    else if (body.compare(0, 8, ".target ") == 0) line = ".target sm_90a";
    else if (body.compare(0, 9, ".version ") == 0) line = ".version 8.0";
    else if (body.find(".entry ") != std::string::npos) entry = true;
    else if (entry && body == "{") { if (maxnreg) out += ".maxnreg " + std::to_string(maxnreg) + "\n"; entry = false; }
    out += line + "\n";
  }
  return out;
}
static cl_program from_binary(const std::string& ptx, const char* opts, cl_int* berr) {
  const unsigned char* b = reinterpret_cast<const unsigned char*>(ptx.c_str());
  size_t n = ptx.size() + 1;
  cl_int st, e;
  cl_program p = clCreateProgramWithBinary(ctx, 1, &dev, &n, &b, &st, &e);
  *berr = clBuildProgram(p, 1, &dev, opts, nullptr, nullptr);
  return p;
}
int main(int argc, char** argv) {
  cl_platform_id plats[8]; cl_uint np = 0;
  clGetPlatformIDs(8, plats, &np);
  for (cl_uint i = 0; i < np && !dev; ++i) {
    char name[256]; clGetPlatformInfo(plats[i], CL_PLATFORM_NAME, sizeof name, name, nullptr);
    if (std::string(name).find("NVIDIA") != std::string::npos)
      clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_GPU, 1, &dev, nullptr);
  }
  if (!dev) { std::printf("no NVIDIA GPU\n"); return 1; }
  size_t maxwg = 0; clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof maxwg, &maxwg, nullptr);
  std::printf("CL_DEVICE_MAX_WORK_GROUP_SIZE %zu\n", maxwg);
  cl_int e;
  ctx = clCreateContext(nullptr, 1, &dev, nullptr, nullptr, &e);
  const char* triv[2] = {
      "__kernel __attribute__((reqd_work_group_size(384, 1, 1))) void k(__global float* x) { x[get_global_id(0)] += 1.0f; }",
      "__kernel void k(__global float* x) { x[get_global_id(0)] += 1.0f; }"};
  for (int t = 0; t < 2; ++t) {
    cl_program p = clCreateProgramWithSource(ctx, 1, &triv[t], nullptr, &e);
    cl_int b = clBuildProgram(p, 1, &dev, "-cl-nv-verbose", nullptr, nullptr);
    report(t ? "trivial, no attribute, source" : "trivial, reqd 384, source", p, "k", b);
    std::string ptx = ptx_of(p);
    directives(ptx);
    {
      cl_command_queue qu = clCreateCommandQueue(ctx, dev, 0, &e);
      cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4096 * 4, nullptr, &e);
      cl_kernel kk = clCreateKernel(p, "k", &e);
      clSetKernelArg(kk, 0, sizeof buf, &buf);
      for (size_t local : {256, 384, 512, 1024}) {
        if (t == 0 && local != 384) continue;
        size_t global = local * 4;
        cl_int le = clEnqueueNDRangeKernel(qu, kk, 1, nullptr, &global, &local, 0, nullptr, nullptr);
        cl_int fe = clFinish(qu);
        std::vector<float> h(global);
        clEnqueueReadBuffer(qu, buf, CL_TRUE, 0, global * 4, h.data(), 0, nullptr, nullptr);
        std::printf("   launch local %zu: enqueue %d, finish %d, x[last] %g\n", local, le, fe, h[global - 1]);
      }
      clReleaseKernel(kk); clReleaseMemObject(buf); clReleaseCommandQueue(qu);
    }
    if (t == 0) {
      cl_program q = from_binary(ptx, "-cl-nv-verbose", &b);
      report("trivial, reqd 384, its PTX as binary", q, "k", b);
      cl_program r = from_binary(rewrite(ptx, 128), "-cl-nv-verbose", &b);
      report("trivial, reqd 384, PTX as sm_90a binary with .maxnreg 128", r, "k", b);
    }
  }
  for (int a = 1; a + 1 < argc; a += 2) {
    std::ifstream in(argv[a]);
    std::stringstream ss; ss << in.rdbuf();
    std::string src = ss.str();
    const char* s = src.c_str();
    cl_program p = clCreateProgramWithSource(ctx, 1, &s, nullptr, &e);
    std::string opts = std::string(argv[a + 1]) + " -cl-nv-verbose";
    cl_int b = clBuildProgram(p, 1, &dev, opts.c_str(), nullptr, nullptr);
    report("openna forward, source", p, "na_mma_fwd", b);
    if (b != CL_SUCCESS) { std::printf("%s\n", log_of(p).substr(0, 2000).c_str()); continue; }
    std::string ptx = ptx_of(p);
    directives(ptx);
    for (int reg : {0, 128, 168}) {
      cl_program q = from_binary(rewrite(ptx, reg), "-cl-nv-verbose", &b);
      std::string what = "openna forward, sm_90a binary, .maxnreg " + std::to_string(reg);
      report(what.c_str(), q, "na_mma_fwd", b);
      if (b != CL_SUCCESS) std::printf("%s\n", log_of(q).substr(0, 1500).c_str());
    }
  }
  return 0;
}
