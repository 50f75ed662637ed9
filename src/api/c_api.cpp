// The C API boundary: every public function runs its body through guarded(), which turns the
// library's typed errors, cl::Error and anything else into one openna_status and a per-thread
// message. Validation happens before any buffer is created or any output touched.
#include <cstring>
#include <new>
#include <string>

#include "core/cl.hpp"  // first: fixes the OpenCL target version for every header below
#include "core/errors.hpp"
#include "core/problem.hpp"
#include "openna/openna.h"
#include "openna/openna_cl.h"
#include "runtime/context.hpp"
#include "runtime/program_cache.hpp"
#include "variants/dispatcher.hpp"

namespace {

using namespace openna;

thread_local std::string g_last_error;

template <typename F>
openna_status guarded(F&& body) {
  try {
    body();
    return OPENNA_OK;
  } catch (const Error& e) {
    g_last_error = e.what();
    return e.status();
  } catch (const cl::BuildError& e) {
    std::string log;
    for (const auto& entry : e.getBuildLog()) log += entry.second;
    g_last_error = std::string(e.what()) + " failed (" + cl_error_name(e.err()) + "): " + log;
    return OPENNA_ERROR_BUILD;
  } catch (const cl::Error& e) {
    try {
      throw_cl(e.err(), e.what());
    } catch (const Error& mapped) {
      g_last_error = mapped.what();
      return mapped.status();
    }
  } catch (const std::bad_alloc&) {
    g_last_error = "out of host memory";
    return OPENNA_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    g_last_error = std::string("internal error: ") + e.what();
    return OPENNA_ERROR_DEVICE;
  } catch (...) {
    g_last_error = "internal error: unknown exception";
    return OPENNA_ERROR_DEVICE;
  }
  return OPENNA_ERROR_DEVICE;
}

void need(const void* ptr, const char* name) {
  if (ptr == nullptr) throw InvalidArgument(std::string(name) + " is NULL");
}

Context& context_of(openna_context* ctx) {
  need(ctx, "ctx");
  return ctx->ctx;
}

// A device buffer argument: non-null, of this context, at least `bytes` large.
void check_mem(Context& ctx, cl_mem mem, const char* name, std::size_t bytes) {
  if (mem == nullptr) throw InvalidArgument(std::string(name) + " is NULL");
  std::size_t size = 0;
  cl_context owner = nullptr;
  if (clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof size, &size, nullptr) != CL_SUCCESS ||
      clGetMemObjectInfo(mem, CL_MEM_CONTEXT, sizeof owner, &owner, nullptr) != CL_SUCCESS) {
    throw InvalidArgument(std::string(name) + " is not a valid cl_mem");
  }
  if (owner != ctx.ocl_context()()) {
    throw InvalidArgument(std::string(name) + " belongs to another OpenCL context");
  }
  if (size < bytes) {
    throw InvalidArgument(std::string(name) + " holds " + std::to_string(size) +
                          " bytes; the problem needs " + std::to_string(bytes));
  }
}

cl::Buffer upload(Context& ctx, const void* host, std::size_t bytes) {
  return cl::Buffer(ctx.ocl_context(), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes,
                    const_cast<void*>(host));
}

void download(Context& ctx, const cl::Buffer& buf, void* host, std::size_t bytes) {
  ctx.queue().enqueueReadBuffer(buf, CL_TRUE, 0, bytes, host);
}

}  // namespace

extern "C" {

const char* openna_version(int* major, int* minor, int* patch) {
  if (major) *major = OPENNA_VERSION_MAJOR;
  if (minor) *minor = OPENNA_VERSION_MINOR;
  if (patch) *patch = OPENNA_VERSION_PATCH;
  return "0.1.0";
}

const char* openna_last_error(void) { return g_last_error.c_str(); }

openna_status openna_context_create(const char* device, openna_context** out) {
  return guarded([&] {
    need(out, "out");
    *out = nullptr;
    const DeviceInfo dev = select_device(device ? device : "");
    *out = new openna_context(dev);
  });
}

openna_status openna_context_create_from_cl(cl_context context, cl_device_id device,
                                            cl_command_queue queue, openna_context** out) {
  return guarded([&] {
    need(out, "out");
    *out = nullptr;
    *out = new openna_context(context, device, queue);
  });
}

void openna_context_destroy(openna_context* ctx) {
  if (ctx == nullptr) return;
  try {
    ctx->ctx.finish();
  } catch (...) {
    // Destruction never throws; a failed finish leaves nothing for the caller to do.
  }
  delete ctx;
}

const char* openna_context_device_name(const openna_context* ctx) {
  return ctx ? ctx->ctx.device().name.c_str() : "";
}

cl_context openna_context_cl_context(const openna_context* ctx) {
  return ctx ? ctx->ctx.ocl_context()() : nullptr;
}
cl_device_id openna_context_cl_device(const openna_context* ctx) {
  return ctx ? ctx->ctx.device().device() : nullptr;
}
cl_command_queue openna_context_cl_queue(const openna_context* ctx) {
  return ctx ? ctx->ctx.queue()() : nullptr;
}

openna_status openna_context_finish(openna_context* ctx) {
  return guarded([&] { context_of(ctx).finish(); });
}

openna_status openna_problem_validate(const openna_problem* p) {
  return guarded([&] { normalize(p); });
}

openna_status openna_problem_bytes(const openna_problem* p, openna_tensor_bytes* out) {
  return guarded([&] {
    need(out, "out");
    *out = tensor_bytes(normalize(p));
  });
}

void openna_get_cache_stats(openna_cache_stats* out) {
  if (out) *out = cache_counters().snapshot();
}

openna_status openna_select_variant(openna_context* ctx, const openna_problem* p,
                                    openna_pass pass, char* buf, size_t buf_size) {
  return guarded([&] {
    Context& c = context_of(ctx);
    const Problem prob = normalize(p);
    if (pass != OPENNA_PASS_FORWARD && pass != OPENNA_PASS_BACKWARD) {
      throw InvalidArgument("pass = " + std::to_string(static_cast<int>(pass)) +
                            ": not an openna_pass");
    }
    need(buf, "buf");
    if (buf_size == 0) throw InvalidArgument("buf_size = 0");
    const Selection s =
        select_variant(c, prob, pass == OPENNA_PASS_FORWARD ? Pass::Forward : Pass::Backward);
    std::strncpy(buf, s.name.c_str(), buf_size - 1);
    buf[buf_size - 1] = '\0';
  });
}

openna_status openna_na_forward_host(openna_context* ctx, const openna_problem* p, const void* q,
                                     const void* k, const void* v, void* out, float* lse) {
  return guarded([&] {
    Context& c = context_of(ctx);
    const Problem prob = normalize(p);
    need(q, "q");
    need(k, "k");
    need(v, "v");
    need(out, "out");
    const Selection s = select_variant(c, prob, Pass::Forward);
    const openna_tensor_bytes b = tensor_bytes(prob);
    cl::Buffer bq = upload(c, q, b.q), bk = upload(c, k, b.k), bv = upload(c, v, b.v);
    cl::Buffer bo = c.alloc(b.out, CL_MEM_WRITE_ONLY);
    cl::Buffer bl;
    if (lse) bl = c.alloc(b.lse, CL_MEM_WRITE_ONLY);
    s.variant->forward(c, prob, s.config, {bq(), bk(), bv(), bo(), lse ? bl() : nullptr},
                       nullptr);
    download(c, bo, out, b.out);
    if (lse) download(c, bl, lse, b.lse);
  });
}

openna_status openna_na_backward_host(openna_context* ctx, const openna_problem* p, const void* q,
                                      const void* k, const void* v, const void* out,
                                      const void* d_out, const float* lse, void* d_q, void* d_k,
                                      void* d_v) {
  return guarded([&] {
    Context& c = context_of(ctx);
    const Problem prob = normalize(p);
    need(q, "q");
    need(k, "k");
    need(v, "v");
    need(out, "out");
    need(d_out, "d_out");
    need(lse, "lse");
    need(d_q, "d_q");
    need(d_k, "d_k");
    need(d_v, "d_v");
    const Selection s = select_variant(c, prob, Pass::Backward);
    const openna_tensor_bytes b = tensor_bytes(prob);
    cl::Buffer bq = upload(c, q, b.q), bk = upload(c, k, b.k), bv = upload(c, v, b.v);
    cl::Buffer bo = upload(c, out, b.out), bdo = upload(c, d_out, b.out);
    cl::Buffer bl = upload(c, lse, b.lse);
    cl::Buffer bdq = c.alloc(b.q, CL_MEM_WRITE_ONLY), bdk = c.alloc(b.k, CL_MEM_WRITE_ONLY),
               bdv = c.alloc(b.v, CL_MEM_WRITE_ONLY);
    s.variant->backward(c, prob, s.config,
                        {bq(), bk(), bv(), bo(), bdo(), bl(), bdq(), bdk(), bdv()}, nullptr);
    download(c, bdq, d_q, b.q);
    download(c, bdk, d_k, b.k);
    download(c, bdv, d_v, b.v);
  });
}

openna_status openna_na_forward(openna_context* ctx, const openna_problem* p, cl_mem q, cl_mem k,
                                cl_mem v, cl_mem out, cl_mem lse) {
  return guarded([&] {
    Context& c = context_of(ctx);
    const Problem prob = normalize(p);
    const openna_tensor_bytes b = tensor_bytes(prob);
    check_mem(c, q, "q", b.q);
    check_mem(c, k, "k", b.k);
    check_mem(c, v, "v", b.v);
    check_mem(c, out, "out", b.out);
    if (lse) check_mem(c, lse, "lse", b.lse);
    const Selection s = select_variant(c, prob, Pass::Forward);
    s.variant->forward(c, prob, s.config, {q, k, v, out, lse}, nullptr);
  });
}

openna_status openna_na_backward(openna_context* ctx, const openna_problem* p, cl_mem q,
                                 cl_mem k, cl_mem v, cl_mem out, cl_mem d_out, cl_mem lse,
                                 cl_mem d_q, cl_mem d_k, cl_mem d_v) {
  return guarded([&] {
    Context& c = context_of(ctx);
    const Problem prob = normalize(p);
    const openna_tensor_bytes b = tensor_bytes(prob);
    check_mem(c, q, "q", b.q);
    check_mem(c, k, "k", b.k);
    check_mem(c, v, "v", b.v);
    check_mem(c, out, "out", b.out);
    check_mem(c, d_out, "d_out", b.out);
    check_mem(c, lse, "lse", b.lse);
    check_mem(c, d_q, "d_q", b.q);
    check_mem(c, d_k, "d_k", b.k);
    check_mem(c, d_v, "d_v", b.v);
    const Selection s = select_variant(c, prob, Pass::Backward);
    s.variant->backward(c, prob, s.config, {q, k, v, out, d_out, lse, d_q, d_k, d_v}, nullptr);
  });
}

}  // extern "C"
