// Helpers for the tests that go through the public C API only (validation, api, cache, threads):
// a per-process context, device buffers made with plain OpenCL calls, sentinel-filled outputs,
// scoped environment variables and message matching. Nothing here includes library internals.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "openna/openna.h"
#include "openna/openna_cl.h"

namespace openna_test {

// Sets (or with nullptr unsets) an environment variable for one scope and restores it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = std::string(old);
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// One context for the whole test program (the default device: PoCL in CI). Never destroyed, so
// tests may use it until exit.
inline openna_context* shared_ctx() {
  static openna_context* ctx = [] {
    openna_context* c = nullptr;
    const openna_status s = openna_context_create(nullptr, &c);
    if (s != OPENNA_OK) {
      ADD_FAILURE() << "openna_context_create: " << s << " " << openna_last_error();
    }
    return c;
  }();
  return ctx;
}

// Whether `msg` names `arg` as a whole word: "q is NULL" names q, "d_q is NULL" does not.
inline bool names_argument(const std::string& msg, const std::string& arg) {
  auto ident = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (std::size_t pos = msg.find(arg); pos != std::string::npos; pos = msg.find(arg, pos + 1)) {
    const bool left_ok = pos == 0 || !ident(msg[pos - 1]);
    const std::size_t end = pos + arg.size();
    const bool right_ok = end >= msg.size() || !ident(msg[end]);
    if (left_ok && right_ok) return true;
  }
  return false;
}

// Random floats in [-1, 1], reproducible per seed.
inline std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& e : x) e = u(rng);
  return x;
}

// Random bytes of a tensor of `bytes` bytes in the problem's dtype, finite values only.
inline std::vector<std::uint8_t> random_tensor(openna_dtype dtype, std::size_t bytes,
                                               std::uint64_t seed) {
  std::vector<std::uint8_t> raw(bytes);
  std::mt19937_64 rng(seed);
  if (dtype == OPENNA_F32) {
    const std::vector<float> f = random_floats(bytes / 4, seed);
    std::memcpy(raw.data(), f.data(), f.size() * 4);
  } else {
    // f16: sign, exponent 13..15 (values in [2^-2, 2)); bf16: exponent 125..127, same range.
    std::uniform_int_distribution<int> mant(0, dtype == OPENNA_F16 ? 1023 : 127);
    std::uniform_int_distribution<int> ex(0, 2), sign(0, 1);
    for (std::size_t i = 0; i + 1 < bytes; i += 2) {
      std::uint16_t h;
      if (dtype == OPENNA_F16) {
        h = static_cast<std::uint16_t>((sign(rng) << 15) | ((13 + ex(rng)) << 10) | mant(rng));
      } else {
        h = static_cast<std::uint16_t>((sign(rng) << 15) | ((125 + ex(rng)) << 7) | mant(rng));
      }
      std::memcpy(&raw[i], &h, 2);
    }
  }
  return raw;
}

// A plain OpenCL buffer on ctx's context, optionally initialized; released by the destructor.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(cl_context context, std::size_t bytes, const void* init = nullptr) : bytes_(bytes) {
    cl_int err = CL_SUCCESS;
    mem_ = clCreateBuffer(context, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0),
                          bytes == 0 ? 1 : bytes, const_cast<void*>(init), &err);
    EXPECT_EQ(err, CL_SUCCESS) << "clCreateBuffer(" << bytes << ")";
  }
  DeviceBuffer(openna_context* ctx, std::size_t bytes, const void* init = nullptr)
      : DeviceBuffer(openna_context_cl_context(ctx), bytes, init) {}
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : mem_(o.mem_), bytes_(o.bytes_) { o.mem_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(mem_, o.mem_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~DeviceBuffer() {
    if (mem_) clReleaseMemObject(mem_);
  }
  cl_mem get() const { return mem_; }
  std::size_t bytes() const { return bytes_; }

  // Blocking read and write through a queue of the buffer's context.
  std::vector<std::uint8_t> read(cl_command_queue queue) const {
    std::vector<std::uint8_t> out(bytes_);
    EXPECT_EQ(clEnqueueReadBuffer(queue, mem_, CL_TRUE, 0, bytes_, out.data(), 0, nullptr, nullptr),
              CL_SUCCESS);
    return out;
  }
  void write(cl_command_queue queue, const std::vector<std::uint8_t>& data) {
    ASSERT_EQ(data.size(), bytes_);
    EXPECT_EQ(
        clEnqueueWriteBuffer(queue, mem_, CL_TRUE, 0, bytes_, data.data(), 0, nullptr, nullptr),
        CL_SUCCESS);
  }

 private:
  cl_mem mem_ = nullptr;
  std::size_t bytes_ = 0;
};

constexpr std::uint8_t kSentinel = 0xA5;

inline bool all_sentinel(const std::vector<std::uint8_t>& bytes) {
  for (std::uint8_t b : bytes)
    if (b != kSentinel) return false;
  return true;
}

inline openna_tensor_bytes bytes_of(const openna_problem& p) {
  openna_tensor_bytes b{};
  EXPECT_EQ(openna_problem_bytes(&p, &b), OPENNA_OK) << openna_last_error();
  return b;
}

}  // namespace openna_test
