// Can an OpenCL program on NVIDIA's driver run Hopper's wgmma (an sm_90a instruction)?
// NVIDIA's OpenCL compiler targets plain sm_90, where ptxas rejects wgmma. This probe tries three
// routes on the first NVIDIA GPU and prints what each gives:
//   1. OpenCL C with wgmma in inline PTX, built as usual;
//   2. the same with the option -cl-nv-arch sm_90a;
//   3. OpenCL C with marker comments in inline PTX, its PTX read back (CL_PROGRAM_BINARIES), the
//      markers replaced by wgmma and `.target sm_90a`, and the PTX loaded again as a binary.
// The product is one m64n8k16 f16 -> f32 wgmma, A (64x16) and B (8x16, K-major) read from shared
// memory through matrix descriptors without swizzle; the probe tries both core-matrix layouts and
// both readings of the descriptor's two byte offsets, and checks each result against the host.
// Build on the GPU machine:  g++ -O1 -std=c++17 -Itools tools/wgmma_probe.cpp -lOpenCL -o /tmp/wgmma_probe
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "cl_probe.hpp"

namespace {

const char* kSource = R"CLC(
// core (i along M/N, j along K) of an operand starts at (LAYOUT ? j * rows/8 + i : i * 2 + j) * 128
// bytes; inside a core, row r and column c (8 x 8 f16) are at r * 16 + c * 2 bytes.
inline int core_off(int row, int col, int rows, int layout) {
  const int i = row / 8, j = col / 8;
  const int core = layout ? j * (rows / 8) + i : i * 2 + j;
  return core * 64 + (row % 8) * 8 + (col % 8); /* in f16 elements */
}
inline ulong desc(__local ushort* p, uint lbo, uint sbo) {
  const uint a = (uint)(size_t)p;
  return (ulong)((a >> 4) & 0x3FFF) | ((ulong)((lbo >> 4) & 0x3FFF) << 16) |
         ((ulong)((sbo >> 4) & 0x3FFF) << 32);
}
__kernel void wg(__global const ushort* A, __global const ushort* B, __global float* D,
                 uint lbo_a, uint sbo_a, uint lbo_b, uint sbo_b, int layout, int mode) {
  __local ushort As[64 * 16] __attribute__((aligned(128)));
  __local ushort Bs[8 * 16] __attribute__((aligned(128)));
  const int tid = get_local_id(0);
  /* mode 1: one thread fills shared memory; mode 2: a second fence and barrier */
  const int step = (mode & 1) ? 1 : 128;
  if (!(mode & 1) || tid == 0) {
    for (int e = tid; e < 64 * 16; e += step) As[core_off(e / 16, e % 16, 64, layout)] = A[e];
    for (int e = tid; e < 8 * 16; e += step) Bs[core_off(e / 16, e % 16, 8, layout)] = B[e];
  }
  @FENCE@
  barrier(CLK_LOCAL_MEM_FENCE);
  if (mode & 2) {
    @FENCE@
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  float d0 = 0.f, d1 = 0.f, d2 = 0.f, d3 = 0.f;
  const ulong da = desc(As, lbo_a, sbo_a), db = desc(Bs, lbo_b, sbo_b);
  @WGMMA@
  const int w = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int r0 = 16 * w + g, c0 = 2 * t;
  D[r0 * 8 + c0] = d0;
  D[r0 * 8 + c0 + 1] = d1;
  D[(r0 + 8) * 8 + c0] = d2;
  D[(r0 + 8) * 8 + c0 + 1] = d3;
}
)CLC";

const char* kFenceAsm = "asm volatile(\"fence.proxy.async.shared::cta;\" ::: \"memory\");";
const char* kWgmmaAsm =
    "asm volatile(\"wgmma.fence.sync.aligned;\\n\\t\"\n"
    "  \"wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16 {%0,%1,%2,%3}, %4, %5, 1, 1, 1, 0, "
    "0;\\n\\t\"\n"
    "  \"wgmma.commit_group.sync.aligned;\\n\\t\"\n"
    "  \"wgmma.wait_group.sync.aligned 0;\"\n"
    "  : \"+f\"(d0), \"+f\"(d1), \"+f\"(d2), \"+f\"(d3) : \"l\"(da), \"l\"(db) : \"memory\");";
const char* kFenceMark = "asm volatile(\"// FENCE_MARK\" ::: \"memory\");";
const char* kWgmmaMark =
    "asm volatile(\"// WGMMA_MARK %0 %1 %2 %3 %4 %5\" : \"+f\"(d0), \"+f\"(d1), \"+f\"(d2), "
    "\"+f\"(d3) : \"l\"(da), \"l\"(db) : \"memory\");";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

uint16_t to_half(float f) {  // exact for the small integers used here
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  if (f == 0.f) return static_cast<uint16_t>(sign);
  const int e = static_cast<int>((x >> 23) & 0xFF) - 127 + 15;
  return static_cast<uint16_t>(sign | (e << 10) | ((x >> 13) & 0x3FF));
}

// Inputs of the decoding tests: test 0 random-ish small integers; tests 1 and 2 give D[m][n] =
// A[m][n] and A[m][n + 8] (B one-hot), tests 3 and 4 give D[m][n] = B[n][m % 8] and
// B[n][m % 8 + 8] (A one-hot); A[m][k] = 16 m + k and B[n][k] = 16 n + k there, so a wrong value
// names the element that was read instead.
void inputs(int test, std::vector<float>& a, std::vector<float>& b) {
  for (int m = 0; m < 64; ++m)
    for (int k = 0; k < 16; ++k)
      a[m * 16 + k] = test == 0   ? static_cast<float>(((m * 16 + k) * 7) % 9) - 4
                      : test <= 2 ? static_cast<float>(16 * m + k)
                                  : static_cast<float>(k == m % 8 + (test == 4 ? 8 : 0));
  for (int n = 0; n < 8; ++n)
    for (int k = 0; k < 16; ++k)
      b[n * 16 + k] = test == 0   ? static_cast<float>(((n * 16 + k) * 5) % 7) - 3
                      : test <= 2 ? static_cast<float>(k == n + (test == 2 ? 8 : 0))
                                  : static_cast<float>(16 * n + k);
}

// Runs the kernel with each layout and descriptor reading; prints which ones match the host,
// and for the decoding tests the (row, column) each wrong value came from.
void run_all(cl_context ctx, cl_command_queue q, cl_program prog, const char* route) {
  cl_int err = 0;
  cl_kernel k = clCreateKernel(prog, "wg", &err);
  if (err != CL_SUCCESS) {
    std::printf("%s: clCreateKernel failed (%d)\n", route, err);
    return;
  }
  cl_mem A = clCreateBuffer(ctx, CL_MEM_READ_ONLY, 64 * 16 * 2, nullptr, &err);
  cl_mem B = clCreateBuffer(ctx, CL_MEM_READ_ONLY, 8 * 16 * 2, nullptr, &err);
  cl_mem D = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, 64 * 8 * 4, nullptr, &err);
  for (int mode = 0; mode < 4; ++mode) {
    const int layout = 0;
    // byte strides between neighbouring cores along K and along M (N)
    const cl_uint k_a = layout ? 1024 : 128, mn_a = layout ? 128 : 256;
    const cl_uint k_b = 128, mn_b = layout ? 128 : 256;
    {
      const int swap = 0;
      cl_uint lbo_a = swap ? mn_a : k_a, sbo_a = swap ? k_a : mn_a;
      cl_uint lbo_b = swap ? mn_b : k_b, sbo_b = swap ? k_b : mn_b;
      for (int test = 0; test < 5; ++test) {
        std::vector<float> a(64 * 16), b(8 * 16), ref(64 * 8, 0.f);
        inputs(test, a, b);
        std::vector<uint16_t> ah(a.size()), bh(b.size());
        for (size_t i = 0; i < a.size(); ++i) ah[i] = to_half(a[i]);
        for (size_t i = 0; i < b.size(); ++i) bh[i] = to_half(b[i]);
        for (int m = 0; m < 64; ++m)
          for (int n = 0; n < 8; ++n)
            for (int kk = 0; kk < 16; ++kk) ref[m * 8 + n] += a[m * 16 + kk] * b[n * 16 + kk];
        clEnqueueWriteBuffer(q, A, CL_TRUE, 0, ah.size() * 2, ah.data(), 0, nullptr, nullptr);
        clEnqueueWriteBuffer(q, B, CL_TRUE, 0, bh.size() * 2, bh.data(), 0, nullptr, nullptr);
        clSetKernelArg(k, 0, sizeof A, &A);
        clSetKernelArg(k, 1, sizeof B, &B);
        clSetKernelArg(k, 2, sizeof D, &D);
        clSetKernelArg(k, 3, 4, &lbo_a);
        clSetKernelArg(k, 4, 4, &sbo_a);
        clSetKernelArg(k, 5, 4, &lbo_b);
        clSetKernelArg(k, 6, 4, &sbo_b);
        clSetKernelArg(k, 7, 4, &layout);
        clSetKernelArg(k, 8, 4, &mode);
        std::vector<float> out(ref.size(), -999.f);
        clEnqueueWriteBuffer(q, D, CL_TRUE, 0, out.size() * 4, out.data(), 0, nullptr, nullptr);
        size_t global = 128, local = 128;
        err = clEnqueueNDRangeKernel(q, k, 1, nullptr, &global, &local, 0, nullptr, nullptr);
        const cl_int fin = clFinish(q);
        if (err != CL_SUCCESS || fin != CL_SUCCESS) {
          std::printf("%s: mode %d swap %d test %d: launch %d finish %d\n", route, mode, swap,
                      test, err, fin);
          clReleaseMemObject(A), clReleaseMemObject(B), clReleaseMemObject(D);
          clReleaseKernel(k);
          return;  // the queue is gone after a fault
        }
        clEnqueueReadBuffer(q, D, CL_TRUE, 0, out.size() * 4, out.data(), 0, nullptr, nullptr);
        int bad = 0;
        std::string shown;
        for (int i = 0; i < 512; ++i) {
          if (out[i] == ref[i]) continue;
          if (++bad <= 12 && test > 0) {
            const int v = static_cast<int>(out[i]);
            char buf[64];
            std::snprintf(buf, sizeof buf, " D[%d][%d]=(%d,%d)want(%d,%d)", i / 8, i % 8, v / 16,
                          v % 16, static_cast<int>(ref[i]) / 16, static_cast<int>(ref[i]) % 16);
            shown += buf;
          }
        }
        std::printf("%s: mode %d layout %s LBO/SBO A %u/%u B %u/%u test %d: %d of 512 wrong%s%s\n",
                    route, mode, layout ? "M-fast" : "K-fast", lbo_a, sbo_a, lbo_b, sbo_b, test, bad,
                    bad == 0 ? "  <== CORRECT" : "", shown.c_str());
      }
    }
  }
  clReleaseMemObject(A);
  clReleaseMemObject(B);
  clReleaseMemObject(D);
  clReleaseKernel(k);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string out_dir = argc > 1 ? argv[1] : "/tmp";
  NvidiaCl cl;
  if (!open_nvidia(cl)) return 1;
  cl_device_id dev = cl.dev;
  cl_context ctx = cl.ctx;
  cl_command_queue q = cl.q;
  cl_int err = 0;

  const std::string direct =
      replace_all(replace_all(kSource, "@FENCE@", kFenceAsm), "@WGMMA@", kWgmmaAsm);
  for (const char* opts : {"", "-cl-nv-arch sm_90a"}) {
    const char* src = direct.c_str();
    cl_program p = clCreateProgramWithSource(ctx, 1, &src, nullptr, &err);
    err = clBuildProgram(p, 1, &dev, opts, nullptr, nullptr);
    const std::string route = std::string("source with wgmma, options '") + opts + "'";
    std::printf("%s: build %d\n%s\n", route.c_str(), err, build_log_of(p, dev, 1500).c_str());
    if (err == CL_SUCCESS) run_all(ctx, q, p, route.c_str());
    clReleaseProgram(p);
  }

  const std::string marked =
      replace_all(replace_all(kSource, "@FENCE@", kFenceMark), "@WGMMA@", kWgmmaMark);
  const char* src = marked.c_str();
  cl_program p = clCreateProgramWithSource(ctx, 1, &src, nullptr, &err);
  err = clBuildProgram(p, 1, &dev, "", nullptr, nullptr);
  std::printf("marked source: build %d\n", err);
  if (err != CL_SUCCESS) {
    std::printf("%s\n", build_log_of(p, dev, 1500).c_str());
    return 1;
  }
  std::string ptx = ptx_of(p);
  std::smatch m;
  std::regex ver(R"(\.version\s+(\d+)\.(\d+))"), tgt(R"(\.target\s+(\w+))");
  if (std::regex_search(ptx, m, ver)) std::printf("PTX .version %s.%s\n", m[1].str().c_str(), m[2].str().c_str());
  if (std::regex_search(ptx, m, tgt)) std::printf("PTX .target %s\n", m[1].str().c_str());
  std::ofstream(out_dir + "/wgmma_marked.ptx") << ptx;
  ptx = std::regex_replace(ptx, ver, ".version 8.0");
  ptx = std::regex_replace(ptx, tgt, ".target sm_90a");
  ptx = std::regex_replace(ptx, std::regex(R"(//\s*FENCE_MARK)"), "fence.proxy.async.shared::cta;");
  const std::regex mark(R"(//\s*WGMMA_MARK\s+(%\w+)\s+(%\w+)\s+(%\w+)\s+(%\w+)\s+(%\w+)\s+(%\w+))");
  const int marks = static_cast<int>(std::distance(std::sregex_iterator(ptx.begin(), ptx.end(), mark), std::sregex_iterator()));
  ptx = std::regex_replace(
      ptx, mark,
      "wgmma.fence.sync.aligned;\n\twgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16 "
      "{$1,$2,$3,$4}, $5, $6, 1, 1, 1, 0, 0;\n\twgmma.commit_group.sync.aligned;\n\t"
      "wgmma.wait_group.sync.aligned 0;");
  std::printf("markers replaced: %d\n", marks);
  std::ofstream(out_dir + "/wgmma_sm90a.ptx") << ptx;
  clReleaseProgram(p);

  const unsigned char* bin = reinterpret_cast<const unsigned char*>(ptx.c_str());
  const size_t len = ptx.size() + 1;
  cl_int bstat = 0;
  p = clCreateProgramWithBinary(ctx, 1, &dev, &len, &bin, &bstat, &err);
  std::printf("PTX as binary: create %d (status %d)\n", err, bstat);
  if (err == CL_SUCCESS) {
    err = clBuildProgram(p, 1, &dev, "", nullptr, nullptr);
    std::printf("PTX as binary: build %d\n%s\n", err, build_log_of(p, dev, 1500).c_str());
    if (err == CL_SUCCESS) run_all(ctx, q, p, "sm_90a PTX as binary");
  }
  return 0;
}
