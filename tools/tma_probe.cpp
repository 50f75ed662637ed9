// Can an OpenCL program on NVIDIA's driver use the TMA (cp.async.bulk.tensor) with a tensor map
// that the GPU builds from zeros (tensormap.replace, PTX ISA 8.3, sm_90a), and can wgmma read the
// boxes it writes in the 128-byte swizzle layout? Kernels: tools/tma_probe.cl. The program is
// built as the library builds marked sm_90a programs (runtime/program_cache.cpp, sm90a_rewrite),
// with PTX ISA 8.3. Prints, for each case, whether the GPU's result matches the host's.
// Build and run on the GPU machine from the repository root:
//   g++ -O1 -std=c++17 tools/tma_probe.cpp -lOpenCL -o /tmp/tma_probe && /tmp/tma_probe
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

std::string build_log(cl_program p, cl_device_id d) {
  size_t n = 0;
  clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
  std::string log(n, '\0');
  clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, n, &log[0], nullptr);
  return log.substr(0, 3000);
}

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
  cl_uint np = 0;
  clGetPlatformIDs(0, nullptr, &np);
  std::vector<cl_platform_id> plats(np);
  clGetPlatformIDs(np, plats.data(), nullptr);
  cl_device_id dev = nullptr;
  for (auto p : plats) {
    char name[256] = {0};
    clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof name, name, nullptr);
    if (std::strstr(name, "NVIDIA") &&
        clGetDeviceIDs(p, CL_DEVICE_TYPE_GPU, 1, &dev, nullptr) == CL_SUCCESS)
      break;
    dev = nullptr;
  }
  if (!dev) {
    std::printf("no NVIDIA OpenCL GPU\n");
    return 1;
  }
  cl_int err = 0;
  cl_context ctx = clCreateContext(nullptr, 1, &dev, nullptr, nullptr, &err);
  cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &err);
  std::ifstream f("tools/tma_probe.cl");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string src = ss.str();
  const char* s = src.c_str();
  cl_program p = clCreateProgramWithSource(ctx, 1, &s, nullptr, &err);
  const char* opts = "-I cl_kernels -DDTYPE=1 -DHDP=64 -DHDVP=64";
  err = clBuildProgram(p, 1, &dev, opts, nullptr, nullptr);
  std::printf("source build: %d\n", err);
  if (err != CL_SUCCESS) {
    std::printf("%s\n", build_log(p, dev).c_str());
    return 1;
  }
  const std::string ptx = rewrite(ptx_of(p));
  std::ofstream("/tmp/tma_probe_sm90a.ptx") << ptx;
  const unsigned char* bin = reinterpret_cast<const unsigned char*>(ptx.c_str());
  const size_t len = ptx.size() + 1;
  cl_int bstat = 0;
  cl_program pa = clCreateProgramWithBinary(ctx, 1, &dev, &len, &bin, &bstat, &err);
  CHECK_CL(err);
  err = clBuildProgram(pa, 1, &dev, "", nullptr, nullptr);
  std::printf("sm_90a PTX build: %d\n%s\n", err, build_log(pa, dev).c_str());
  if (err != CL_SUCCESS) return 1;

  // K and V: [kB][kN][kH][kHd] small integers; Q: 64 x 64.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> d5(-2, 2);
  const size_t n = static_cast<size_t>(kB) * kN * kH * kHd;
  std::vector<int> kv(n), vv(n), qv(64 * 64);
  for (auto& x : kv) x = d5(rng);
  for (auto& x : vv) x = d5(rng);
  for (auto& x : qv) x = d5(rng);
  std::vector<uint16_t> kh(n), vh(n), qh(64 * 64);
  for (size_t i = 0; i < n; ++i) kh[i] = half_of(kv[i]), vh[i] = half_of(vv[i]);
  for (size_t i = 0; i < qh.size(); ++i) qh[i] = half_of(qv[i]);
  cl_mem K = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, n * 2, kh.data(), &err);
  cl_mem V = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, n * 2, vh.data(), &err);
  cl_mem Q = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, qh.size() * 2, qh.data(),
                            &err);
  cl_mem maps = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 256, nullptr, &err);
  cl_mem out = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4 * 4096, nullptr, &err);
  cl_mem so = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4 * 4096, nullptr, &err);
  cl_mem oo = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4 * 4096, nullptr, &err);

  // Two maps (K, V) in one buffer: sub-buffers at 0 and 128.
  cl_buffer_region r0{0, 128}, r1{128, 128};
  cl_mem kmap = clCreateSubBuffer(maps, 0, CL_BUFFER_CREATE_TYPE_REGION, &r0, &err);
  CHECK_CL(err);
  cl_mem vmap = clCreateSubBuffer(maps, 0, CL_BUFFER_CREATE_TYPE_REGION, &r1, &err);
  CHECK_CL(err);
  cl_kernel kb = clCreateKernel(pa, "build_map", &err);
  CHECK_CL(err);
  int B = kB, N = kN, H = kH, hd = kHd, rows = kRows;
  for (int which = 0; which < 2; ++which) {
    cl_mem m = which ? vmap : kmap, src = which ? V : K;
    clSetKernelArg(kb, 0, sizeof m, &m);
    clSetKernelArg(kb, 1, sizeof src, &src);
    clSetKernelArg(kb, 2, 4, &B);
    clSetKernelArg(kb, 3, 4, &N);
    clSetKernelArg(kb, 4, 4, &H);
    clSetKernelArg(kb, 5, 4, &hd);
    clSetKernelArg(kb, 6, 4, &rows);
    size_t g = 32, l = 32;
    CHECK_CL(clEnqueueNDRangeKernel(q, kb, 1, nullptr, &g, &l, 0, nullptr, nullptr));
  }
  CHECK_CL(clFinish(q));
  std::vector<uint32_t> mapbytes(64);
  clEnqueueReadBuffer(q, maps, CL_TRUE, 0, 256, mapbytes.data(), 0, nullptr, nullptr);
  std::printf("K map words:");
  for (int i = 0; i < 32; ++i) std::printf(" %08x", mapbytes[i]);
  std::printf("\n");

  // 1. Raw copies: tokens tok0.., head hk, batch b; rows past kN must be zeros.
  cl_kernel kc = clCreateKernel(pa, "tma_copy", &err);
  CHECK_CL(err);
  for (const int tok0 : {0, 32, 100}) {
    const int hk = 1, b = 1, bytes = kRows * 128;
    clSetKernelArg(kc, 0, sizeof kmap, &kmap);
    clSetKernelArg(kc, 1, sizeof out, &out);
    clSetKernelArg(kc, 2, 4, &tok0);
    clSetKernelArg(kc, 3, 4, &hk);
    clSetKernelArg(kc, 4, 4, &b);
    clSetKernelArg(kc, 5, 4, &bytes);
    size_t g = 128, l = 128;
    CHECK_CL(clEnqueueNDRangeKernel(q, kc, 1, nullptr, &g, &l, 0, nullptr, nullptr));
    const cl_int fin = clFinish(q);
    if (fin != CL_SUCCESS) {
      std::printf("tma_copy tok0 %d: finish %d\n", tok0, fin);
      return 1;
    }
    std::vector<uint16_t> got(4098 * 2);
    clEnqueueReadBuffer(q, out, CL_TRUE, 0, 4 * 2049, got.data(), 0, nullptr, nullptr);
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

  // 2. wgmma from the swizzled boxes.
  cl_kernel kw = clCreateKernel(pa, "tma_wgmma", &err);
  CHECK_CL(err);
  struct Desc {
    cl_uint klbo, ksbo, vlbo, vsbo;
  };
  for (const Desc d : {Desc{16, 1024, 8192, 1024}, Desc{16, 1024, 1024, 8192},
                       Desc{0, 1024, 0, 1024}, Desc{1024, 16, 1024, 16}}) {
    const int tok0 = 40, hk = 1, b = 0;
    int a = 0;
    clSetKernelArg(kw, a++, sizeof kmap, &kmap);
    clSetKernelArg(kw, a++, sizeof vmap, &vmap);
    clSetKernelArg(kw, a++, sizeof Q, &Q);
    clSetKernelArg(kw, a++, sizeof so, &so);
    clSetKernelArg(kw, a++, sizeof oo, &oo);
    clSetKernelArg(kw, a++, 4, &tok0);
    clSetKernelArg(kw, a++, 4, &hk);
    clSetKernelArg(kw, a++, 4, &b);
    clSetKernelArg(kw, a++, 4, &d.klbo);
    clSetKernelArg(kw, a++, 4, &d.ksbo);
    clSetKernelArg(kw, a++, 4, &d.vlbo);
    clSetKernelArg(kw, a++, 4, &d.vsbo);
    size_t g = 128, l = 128;
    CHECK_CL(clEnqueueNDRangeKernel(q, kw, 1, nullptr, &g, &l, 0, nullptr, nullptr));
    const cl_int fin = clFinish(q);
    if (fin != CL_SUCCESS) {
      std::printf("tma_wgmma: finish %d\n", fin);
      return 1;
    }
    std::vector<float> sg(4096), og(4096);
    clEnqueueReadBuffer(q, so, CL_TRUE, 0, 4 * 4096, sg.data(), 0, nullptr, nullptr);
    clEnqueueReadBuffer(q, oo, CL_TRUE, 0, 4 * 4096, og.data(), 0, nullptr, nullptr);
    auto at = [&](const std::vector<int>& t, int tok, int c) {
      return tok < kN ? t[((static_cast<size_t>(b) * kN + tok) * kH + hk) * kHd + c] : 0;
    };
    int bad_s = 0, bad_o = 0;
    std::vector<double> sref(4096);
    for (int i = 0; i < 64; ++i)
      for (int j = 0; j < 64; ++j) {
        double acc = 0;
        for (int c = 0; c < 64; ++c) acc += qv[i * 64 + c] * at(kv, tok0 + j, c);
        sref[i * 64 + j] = acc;
        bad_s += sg[i * 64 + j] != acc;
      }
    for (int i = 0; i < 64; ++i)
      for (int c = 0; c < 64; ++c) {
        double acc = 0;
        for (int j = 0; j < 64; ++j) acc += sref[i * 64 + j] * at(vv, tok0 + j, c);
        bad_o += og[i * 64 + c] != acc;
      }
    std::printf("tma_wgmma K lbo/sbo %u/%u V lbo/sbo %u/%u: S %d of 4096 wrong, O %d of 4096 "
                "wrong%s\n",
                d.klbo, d.ksbo, d.vlbo, d.vsbo, bad_s, bad_o,
                bad_s == 0 && bad_o == 0 ? "  <== CORRECT" : "");
  }
  return 0;
}
