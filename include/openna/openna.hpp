// openna: the C++ interface. Header-only on top of the C API (openna.h, openna_cl.h), so no C++
// exception or standard-library type ever crosses the shared library's boundary: every failed
// call becomes an openna::Error carrying the status and openna_last_error()'s message.
// Device buffers are Khronos C++ bindings objects (CL/opencl.hpp) or raw cl_mem handles.
#ifndef OPENNA_OPENNA_HPP_
#define OPENNA_OPENNA_HPP_

// Defaults for the Khronos C++ bindings, only where the application has not chosen its own (an
// application that included CL/opencl.hpp first keeps its settings). MINIMUM 110, not 120: the
// 2023.02 bindings fail to compile with 120 (their version helpers are left undefined).
#ifndef CL_HPP_TARGET_OPENCL_VERSION
#define CL_HPP_TARGET_OPENCL_VERSION 300
#endif
#ifndef CL_HPP_MINIMUM_OPENCL_VERSION
#define CL_HPP_MINIMUM_OPENCL_VERSION 110
#endif
#include <CL/opencl.hpp>
#include <cstddef>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

#include "openna/openna.h"
#include "openna/openna_cl.h"

namespace openna {
// The library's own internals also live in namespace openna and test programs link them
// statically; this inline namespace gives the public classes distinct symbol names so the two
// can never be confused by the linker. Users write openna::Context as usual.
inline namespace api {

// "OPENNA_ERROR_INVALID_ARGUMENT" and so on.
inline const char* status_name(openna_status s) noexcept {
  switch (s) {
    case OPENNA_OK:
      return "OPENNA_OK";
    case OPENNA_ERROR_INVALID_ARGUMENT:
      return "OPENNA_ERROR_INVALID_ARGUMENT";
    case OPENNA_ERROR_UNSUPPORTED:
      return "OPENNA_ERROR_UNSUPPORTED";
    case OPENNA_ERROR_NO_DEVICE:
      return "OPENNA_ERROR_NO_DEVICE";
    case OPENNA_ERROR_OUT_OF_MEMORY:
      return "OPENNA_ERROR_OUT_OF_MEMORY";
    case OPENNA_ERROR_BUILD:
      return "OPENNA_ERROR_BUILD";
    case OPENNA_ERROR_DEVICE:
      return "OPENNA_ERROR_DEVICE";
  }
  return "OPENNA_ERROR_UNKNOWN";
}

// Every failure of the C++ API. what() is the library's message (openna_last_error()).
class Error : public std::runtime_error {
 public:
  Error(openna_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  openna_status status() const noexcept { return status_; }

 private:
  openna_status status_;
};

// Throws the calling thread's last error when `s` is not OPENNA_OK.
inline void check(openna_status s) {
  if (s == OPENNA_OK) return;
  const char* msg = openna_last_error();
  throw Error(s, msg != nullptr && *msg != '\0' ? std::string(msg) : std::string(status_name(s)));
}

// "major.minor.patch" of the library actually loaded.
inline std::string version() { return openna_version(nullptr, nullptr, nullptr); }

// An openna_problem with a constructor for rank 1-3 and chainable setters; it is an
// openna_problem, so it goes wherever the C API takes one. Zero fields mean the SPEC defaults
// (heads_kv = heads, head_dim_v = head_dim, stride 1, dilation 1, scale 1/sqrt(head_dim)).
struct Problem : openna_problem {
  Problem() : openna_problem() {}

  // rank = spatial.size(); kernel_size has one entry per axis, or one entry for every axis.
  Problem(std::initializer_list<int> lengths, std::initializer_list<int> kernels, int n_heads,
          int dim, openna_dtype type = OPENNA_F32)
      : openna_problem() {
    dtype = type;
    rank = static_cast<int>(lengths.size());
    batch = 1;
    heads = n_heads;
    head_dim = dim;
    set_axes(lengths, spatial, "spatial", false);
    set_axes(kernels, kernel_size, "kernel_size", true);
  }

  Problem& with_batch(int b) {
    batch = b;
    return *this;
  }
  Problem& with_heads_kv(int h) {
    heads_kv = h;
    return *this;
  }
  Problem& with_head_dim_v(int d) {
    head_dim_v = d;
    return *this;
  }
  Problem& with_dtype(openna_dtype t) {
    dtype = t;
    return *this;
  }
  Problem& with_scale(float s) {
    scale = s;
    return *this;
  }
  Problem& with_stride(std::initializer_list<int> s) {
    set_axes(s, stride, "stride", true);
    return *this;
  }
  Problem& with_dilation(std::initializer_list<int> d) {
    set_axes(d, dilation, "dilation", true);
    return *this;
  }
  Problem& with_causal(std::initializer_list<int> c) {
    set_axes(c, is_causal, "is_causal", true);
    return *this;
  }

  // Throws Error(OPENNA_ERROR_INVALID_ARGUMENT) naming the rule the problem breaks.
  void validate() const { check(openna_problem_validate(this)); }
  // Bytes of q, k, v, out and lse (validates first).
  openna_tensor_bytes bytes() const {
    openna_tensor_bytes b{};
    check(openna_problem_bytes(this, &b));
    return b;
  }

 private:
  // A list of one value applies to every axis when `broadcast`; otherwise it needs `rank` values
  // (validation reports a bad rank itself, so only the first three are stored). The setters use
  // the rank, so they come after the constructor that sets it.
  void set_axes(std::initializer_list<int> values, int* field, const char* name, bool broadcast) {
    const int n = static_cast<int>(values.size());
    if (broadcast && n == 1) {
      for (int a = 0; a < 3; ++a) field[a] = a < rank ? *values.begin() : 0;
      return;
    }
    if (broadcast && n != rank) {
      throw Error(OPENNA_ERROR_INVALID_ARGUMENT,
                  std::string("problem.") + name + " has " + std::to_string(n) +
                      " entries; rank is " + std::to_string(rank) + " (give 1 or rank entries)");
    }
    int a = 0;
    for (int v : values) {
      if (a < 3) field[a] = v;
      ++a;
    }
  }
};

// One device, its OpenCL context and in-order queue, and the compiled programs. Move-only;
// destroying it waits for the queue. Several threads may share one Context.
class Context {
 public:
  // device: "" for the default (first GPU, else first CPU; OPENNA_DEVICE when set), "gpu",
  // "cpu", "P:D", or a case-insensitive substring of the platform or device name.
  explicit Context(const std::string& device = "") {
    check(openna_context_create(device.c_str(), &ctx_));
  }

  // Around an application's own OpenCL objects (retained by the library, released when the
  // Context goes). The queue must belong to the context and device and be in-order.
  static Context wrap(cl_context context, cl_device_id device, cl_command_queue queue) {
    openna_context* c = nullptr;
    check(openna_context_create_from_cl(context, device, queue, &c));
    return Context(c);
  }
  static Context wrap(const cl::Context& context, const cl::Device& device,
                      const cl::CommandQueue& queue) {
    return wrap(context(), device(), queue());
  }

  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  Context(Context&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}
  Context& operator=(Context&& o) noexcept {
    if (this != &o) {
      openna_context_destroy(ctx_);
      ctx_ = std::exchange(o.ctx_, nullptr);
    }
    return *this;
  }
  ~Context() { openna_context_destroy(ctx_); }

  // The C handle, for mixing with the C API (still owned by this Context).
  openna_context* get() const noexcept { return ctx_; }
  explicit operator bool() const noexcept { return ctx_ != nullptr; }

  std::string device_name() const { return openna_context_device_name(ctx_); }
  // The OpenCL objects underneath (not retained for the caller).
  cl_context opencl_context() const noexcept { return openna_context_cl_context(ctx_); }
  cl_device_id opencl_device() const noexcept { return openna_context_cl_device(ctx_); }
  cl_command_queue opencl_queue() const noexcept { return openna_context_cl_queue(ctx_); }

  // Waits for everything enqueued on the context's queue.
  void finish() { check(openna_context_finish(ctx_)); }

  // The kernel variant the dispatcher would run ("na_fwd_naive_r1_k3_..."); honours
  // OPENNA_VARIANT. Nothing is built.
  std::string selected_variant(const openna_problem& p,
                               openna_pass pass = OPENNA_PASS_FORWARD) const {
    char buf[512];
    check(openna_select_variant(ctx_, &p, pass, buf, sizeof buf));
    return buf;
  }

  // ---- host memory: copy in, run, copy out, block ----
  void forward(const openna_problem& p, const void* q, const void* k, const void* v, void* out,
               float* lse = nullptr) {
    check(openna_na_forward_host(ctx_, &p, q, k, v, out, lse));
  }
  void backward(const openna_problem& p, const void* q, const void* k, const void* v,
                const void* out, const void* d_out, const float* lse, void* d_q, void* d_k,
                void* d_v) {
    check(openna_na_backward_host(ctx_, &p, q, k, v, out, d_out, lse, d_q, d_k, d_v));
  }

  // ---- device buffers: enqueued on the context's queue, returns without waiting ----
  // A default-constructed cl::Buffer for lse means "no lse".
  void forward(const openna_problem& p, const cl::Buffer& q, const cl::Buffer& k,
               const cl::Buffer& v, const cl::Buffer& out, const cl::Buffer& lse = cl::Buffer()) {
    check(openna_na_forward(ctx_, &p, q(), k(), v(), out(), lse()));
  }
  void backward(const openna_problem& p, const cl::Buffer& q, const cl::Buffer& k,
                const cl::Buffer& v, const cl::Buffer& out, const cl::Buffer& d_out,
                const cl::Buffer& lse, const cl::Buffer& d_q, const cl::Buffer& d_k,
                const cl::Buffer& d_v) {
    check(openna_na_backward(ctx_, &p, q(), k(), v(), out(), d_out(), lse(), d_q(), d_k(), d_v()));
  }

 private:
  explicit Context(openna_context* c) noexcept : ctx_(c) {}
  openna_context* ctx_ = nullptr;
};

}  // namespace api
}  // namespace openna

#endif  // OPENNA_OPENNA_HPP_
