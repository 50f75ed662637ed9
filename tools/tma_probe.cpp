// Can an OpenCL program on NVIDIA's driver use the TMA (cp.async.bulk.tensor) with a tensor map
// that the GPU builds from zeros (tensormap.replace, PTX ISA 8.3, sm_90a)? Kernels:
// tools/tma_probe.cl. The program is built as the library builds marked sm_90a programs
// (runtime/program_cache.cpp, sm90a_rewrite). Prints the compiler's PTX version, the map's 128
// bytes, and whether boxes at three token offsets (one reaching past the tensor) landed as the
// 128-byte swizzle layout says. H100, session 18: all exact. Which wgmma descriptors read such
// boxes was found by this probe's first version (commit 42d3c39: K-major LBO 16 / SBO 1024 and
// MN-major LBO 8192 / SBO 1024 exact, MN-major LBO 1024 / SBO 8192 faulted); the library's probe
// na_mma_tma_probe checks the ones the kernels use.
// Build and run on the GPU machine from the repository root:
//   g++ -O1 -std=c++17 -Itools tools/tma_probe.cpp -lOpenCL -o /tmp/tma_probe && /tmp/tma_probe
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cl_probe.hpp"

namespace {

constexpr int kB = 2, kN = 128, kH = 2, kHd = 64, kRows = 64;

// The marked lines uncommented, .target sm_90a, .version at least 8.3.
std::string rewrite(const std::string& ptx) {
  std::istringstream in(ptx);
  std::string line, out;
  while (std::getline(in, line)) {
    const size_t f = line.find_first_not_of(" \t");
    const std::string body = f == std::string::npos ? "" : line.substr(f);
    if (body.rfind("// @sm_90a@ ", 0) == 0) {
      line = line.substr(0, f) + body.substr(12);
    } else if (body.rfind(".target ", 0) == 0) {
      line = ".target sm_90a";
    } else if (body.rfind(".version ", 0) == 0) {
      int ma = 0, mi = 0;
      std::sscanf(body.c_str() + 9, "%d.%d", &ma, &mi);
      std::printf("compiler's PTX: %s\n", body.c_str());
      if (ma < 8 || (ma == 8 && mi < 3)) line = ".version 8.3";
    }
    out += line + "\n";
  }
  return out;
}

uint16_t half_of(int v) {  // small integers, exact
  if (v == 0) return 0;
  const uint16_t sign = v < 0 ? 0x8000 : 0;
  int a = v < 0 ? -v : v, e = 0;
  while ((a >> e) > 1) ++e;
  const int mant = (a << (10 - e)) & 0x3FF;
  return static_cast<uint16_t>(sign | ((e + 15) << 10) | mant);
}

#define CHECK_CL(x)                                                         \
  do {                                                                      \
    const cl_int e_ = (x);                                                  \
    if (e_ != CL_SUCCESS) {                                                 \
      std::printf("%s failed: %d (line %d)\n", #x, e_, __LINE__);           \
      return 1;                                                             \
    }                                                                       \
  } while (0)

}  // namespace

int main() {
  NvidiaCl cl;
  if (!open_nvidia(cl)) return 1;
  cl_int err = 0;
  std::ifstream f("tools/tma_probe.cl");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string src = ss.str();
  const char* s = src.c_str();
  cl_program p = clCreateProgramWithSource(cl.ctx, 1, &s, nullptr, &err);
  const char* opts = "-I cl_kernels -DDTYPE=1 -DTMA=1";
  err = clBuildProgram(p, 1, &cl.dev, opts, nullptr, nullptr);
  std::printf("source build: %d\n", err);
  if (err != CL_SUCCESS) {
    std::printf("%s\n", build_log_of(p, cl.dev).c_str());
    return 1;
  }
  const std::string ptx = rewrite(ptx_of(p));
  std::ofstream("/tmp/tma_probe_sm90a.ptx") << ptx;
  const unsigned char* bin = reinterpret_cast<const unsigned char*>(ptx.c_str());
  const size_t len = ptx.size() + 1;
  cl_int bstat = 0;
  cl_program pa = clCreateProgramWithBinary(cl.ctx, 1, &cl.dev, &len, &bin, &bstat, &err);
  CHECK_CL(err);
  err = clBuildProgram(pa, 1, &cl.dev, "", nullptr, nullptr);
  std::printf("sm_90a PTX build: %d\n%s\n", err, build_log_of(pa, cl.dev).c_str());
  if (err != CL_SUCCESS) return 1;

  // K: [kB][kN][kH][kHd] small integers; its map by the library's na_tma_kv_maps (V's beside
  // it is the same tensor's).
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> d5(-2, 2);
  const size_t n = static_cast<size_t>(kB) * kN * kH * kHd;
  std::vector<uint16_t> kh(n);
  for (auto& x : kh) x = half_of(d5(rng));
  cl_mem K = clCreateBuffer(cl.ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, n * 2, kh.data(), &err);
  cl_mem maps = clCreateBuffer(cl.ctx, CL_MEM_READ_WRITE, 256, nullptr, &err);
  cl_mem out = clCreateBuffer(cl.ctx, CL_MEM_READ_WRITE, 4 * 4096, nullptr, &err);
  cl_kernel kb = clCreateKernel(pa, "na_tma_kv_maps", &err);
  CHECK_CL(err);
  int zero = 0, B = kB, N = kN, H = kH, hd = kHd, rows = kRows;
  const void* args[] = {&maps, &zero, &K, &K, &B, &N, &H, &hd, &hd, &rows};
  for (cl_uint a = 0; a < 10; ++a)
    clSetKernelArg(kb, a, a == 0 || a == 2 || a == 3 ? sizeof(cl_mem) : 4, args[a]);
  size_t g32 = 32;
  CHECK_CL(clEnqueueNDRangeKernel(cl.q, kb, 1, nullptr, &g32, &g32, 0, nullptr, nullptr));
  CHECK_CL(clFinish(cl.q));
  std::vector<uint32_t> mapbytes(64);
  clEnqueueReadBuffer(cl.q, maps, CL_TRUE, 0, 256, mapbytes.data(), 0, nullptr, nullptr);
  std::printf("K map words:");
  for (int i = 0; i < 32; ++i) std::printf(" %08x", mapbytes[i]);
  std::printf("\n");

  // Raw copies: tokens tok0.., head hk, batch b; rows past kN must be zeros.
  cl_kernel kc = clCreateKernel(pa, "tma_copy", &err);
  CHECK_CL(err);
  for (const int tok0 : {0, 32, 100}) {
    const int hk = 1, b = 1, bytes = kRows * 128;
    const void* cargs[] = {&maps, &out, &tok0, &hk, &b, &bytes};
    for (cl_uint a = 0; a < 6; ++a) clSetKernelArg(kc, a, a < 2 ? sizeof(cl_mem) : 4, cargs[a]);
    size_t g = 128, l = 128;
    CHECK_CL(clEnqueueNDRangeKernel(cl.q, kc, 1, nullptr, &g, &l, 0, nullptr, nullptr));
    const cl_int fin = clFinish(cl.q);
    if (fin != CL_SUCCESS) {
      std::printf("tma_copy tok0 %d: finish %d\n", tok0, fin);
      return 1;
    }
    std::vector<uint16_t> got(4098 * 2);
    clEnqueueReadBuffer(cl.q, out, CL_TRUE, 0, 4 * 2049, got.data(), 0, nullptr, nullptr);
    int bad_sw = 0, bad_plain = 0;
    for (int r = 0; r < kRows; ++r)
      for (int c = 0; c < 64; ++c) {
        const int tok = tok0 + r;
        const uint16_t want =
            tok < kN ? kh[((static_cast<size_t>(b) * kN + tok) * kH + hk) * kHd + c] : 0;
        const int piece = c / 8, sw = (piece ^ (r & 7)) * 8 + c % 8;
        bad_sw += got[r * 64 + sw] != want;
        bad_plain += got[r * 64 + c] != want;
      }
    uint32_t al;
    std::memcpy(&al, &got[4096], 4);
    std::printf("tma_copy tok0 %3d: %d of 4096 wrong as 128B-swizzled, %d as unswizzled%s; "
                "aligned(1024) __local array at %u mod 1024\n",
                tok0, bad_sw, bad_plain, bad_sw == 0 ? "  <== SWIZZLED, CORRECT" : "", al);
  }

  return 0;
}
