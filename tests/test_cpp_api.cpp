// The C++ API (openna.hpp): RAII contexts (move-only), openna::Error carrying the status and the
// library's message, the Problem builder, host-pointer and cl::Buffer overloads agreeing with the
// C API, and a Context wrapped around an application's own OpenCL objects. This file enables
// exceptions in the Khronos bindings before including openna.hpp, as an application may: the
// header must keep the application's settings (the install test's consumer uses the defaults).
#define CL_HPP_ENABLE_EXCEPTIONS
#define CL_HPP_TARGET_OPENCL_VERSION 300
#define CL_HPP_MINIMUM_OPENCL_VERSION 110
#include <gtest/gtest.h>

#include <CL/opencl.hpp>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "api_test_util.hpp"
#include "openna/openna.hpp"

namespace {

using openna_test::random_tensor;
using openna_test::ScopedEnv;

static_assert(!std::is_copy_constructible_v<openna::Context>, "Context is move-only");
static_assert(std::is_nothrow_move_constructible_v<openna::Context>);
static_assert(std::is_base_of_v<std::runtime_error, openna::Error>);
static_assert(std::is_base_of_v<openna_problem, openna::Problem>);

openna::Problem small_problem(openna_dtype dtype = OPENNA_F32) {
  return openna::Problem({6, 5}, {3}, 4, 8, dtype)
      .with_heads_kv(2)
      .with_head_dim_v(6)
      .with_dilation({2, 1})
      .with_causal({0, 1})
      .with_batch(2);
}

// Runs `f`, expecting an openna::Error with `status`; returns its message.
template <typename F>
std::string expect_error(F&& f, openna_status status) {
  try {
    f();
  } catch (const openna::Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_STREQ(e.what(), openna_last_error());
    return e.what();
  }
  ADD_FAILURE() << "no openna::Error thrown";
  return "";
}

TEST(CppApi, Version) {
  EXPECT_EQ(openna::version(), openna_version(nullptr, nullptr, nullptr));
  EXPECT_EQ(openna::version(), std::to_string(OPENNA_VERSION_MAJOR) + "." +
                                   std::to_string(OPENNA_VERSION_MINOR) + "." +
                                   std::to_string(OPENNA_VERSION_PATCH));
}

TEST(CppApi, ProblemBuilder) {
  const openna::Problem p = small_problem(OPENNA_F16);
  EXPECT_EQ(p.rank, 2);
  EXPECT_EQ(p.spatial[0], 6);
  EXPECT_EQ(p.spatial[1], 5);
  EXPECT_EQ(p.spatial[2], 0);
  EXPECT_EQ(p.kernel_size[0], 3);  // one value for every axis
  EXPECT_EQ(p.kernel_size[1], 3);
  EXPECT_EQ(p.kernel_size[2], 0);
  EXPECT_EQ(p.dilation[0], 2);
  EXPECT_EQ(p.is_causal[1], 1);
  EXPECT_EQ(p.heads, 4);
  EXPECT_EQ(p.heads_kv, 2);
  EXPECT_EQ(p.head_dim, 8);
  EXPECT_EQ(p.head_dim_v, 6);
  EXPECT_EQ(p.batch, 2);
  EXPECT_EQ(p.dtype, OPENNA_F16);
  EXPECT_EQ(p.scale, 0.0f);
  EXPECT_NO_THROW(p.validate());
  const openna_tensor_bytes b = p.bytes();
  EXPECT_EQ(b.q, 2u * 30 * 4 * 8 * 2);
  EXPECT_EQ(b.lse, 2u * 30 * 4 * 4);

  const openna::Problem p3 = openna::Problem({4, 5, 6}, {3, 3, 5}, 1, 16).with_scale(0.5f);
  EXPECT_EQ(p3.rank, 3);
  EXPECT_EQ(p3.kernel_size[2], 5);
  EXPECT_EQ(p3.scale, 0.5f);
  EXPECT_EQ(p3.batch, 1);
  EXPECT_NO_THROW(p3.validate());

  // Two kernel sizes for a rank-3 problem: refused at once, naming the field.
  const std::string msg = [] {
    try {
      openna::Problem({4, 5, 6}, {3, 3}, 1, 16);
    } catch (const openna::Error& e) {
      EXPECT_EQ(e.status(), OPENNA_ERROR_INVALID_ARGUMENT);
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_NE(msg.find("kernel_size"), std::string::npos) << msg;

  // Rules are checked by the library: a kernel larger than the axis.
  const openna::Problem bad = openna::Problem({4}, {5}, 1, 16);
  const std::string why = expect_error([&] { bad.validate(); }, OPENNA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(why.find("problem.kernel_size[0] = 5"), std::string::npos) << why;
  expect_error([&] { bad.bytes(); }, OPENNA_ERROR_INVALID_ARGUMENT);
}

TEST(CppApi, ContextIsRaiiAndMoveOnly) {
  openna::Context a;
  ASSERT_TRUE(a);
  const std::string name = a.device_name();
  EXPECT_FALSE(name.empty());
  openna_context* handle = a.get();
  openna::Context b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(b.get(), handle);
  EXPECT_EQ(b.device_name(), name);
  EXPECT_EQ(a.device_name(), "");
  // A moved-from context fails cleanly instead of crashing.
  const openna::Problem p = small_problem();
  const std::string msg =
      expect_error([&] { a.selected_variant(p); }, OPENNA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(msg.find("ctx is NULL"), std::string::npos) << msg;
  openna::Context c("0:0");
  c = std::move(b);  // destroys c's own context, takes b's
  EXPECT_EQ(c.get(), handle);
  EXPECT_NO_THROW(c.finish());
}

TEST(CppApi, ErrorsCarryStatusAndMessage) {
  const std::string msg =
      expect_error([] { openna::Context bad("no-such-device-xyz"); }, OPENNA_ERROR_NO_DEVICE);
  EXPECT_NE(msg.find("available devices"), std::string::npos) << msg;

  openna::Context ctx;
  openna::Problem p = small_problem();
  p.heads_kv = 3;
  std::vector<float> buf(4096);
  expect_error([&] { ctx.forward(p, buf.data(), buf.data(), buf.data(), buf.data()); },
               OPENNA_ERROR_INVALID_ARGUMENT);
  p = small_problem();
  expect_error([&] { ctx.forward(p, nullptr, buf.data(), buf.data(), buf.data()); },
               OPENNA_ERROR_INVALID_ARGUMENT);

  ScopedEnv env("OPENNA_VARIANT", "naive");
  const openna::Problem huge = openna::Problem({2}, {1}, 1, 1024);
  std::vector<float> big(2 * 1024);
  const std::string why =
      expect_error([&] { ctx.forward(huge, big.data(), big.data(), big.data(), big.data()); },
                   OPENNA_ERROR_UNSUPPORTED);
  EXPECT_NE(why.find("naive"), std::string::npos) << why;

  // Caught as a std::exception too.
  try {
    openna::Problem({0}, {1}, 1, 1).validate();
    ADD_FAILURE() << "no exception";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("problem.spatial[0] = 0"), std::string::npos);
  }
}

// Host and cl::Buffer overloads of forward and backward give the C API's results.
TEST(CppApi, HostAndBufferOverloadsAgreeWithC) {
  openna::Context ctx;
  const openna::Problem p = small_problem(OPENNA_BF16);
  const openna_tensor_bytes b = p.bytes();
  const auto q = random_tensor(p.dtype, b.q, 31), k = random_tensor(p.dtype, b.k, 32),
             v = random_tensor(p.dtype, b.v, 33), d_out = random_tensor(p.dtype, b.out, 34);

  // The C API on its own context.
  std::vector<std::uint8_t> out_c(b.out), dq_c(b.q), dk_c(b.k), dv_c(b.v);
  std::vector<float> lse_c(b.lse / 4);
  openna_context* c_ctx = nullptr;
  ASSERT_EQ(openna_context_create(nullptr, &c_ctx), OPENNA_OK);
  ASSERT_EQ(
      openna_na_forward_host(c_ctx, &p, q.data(), k.data(), v.data(), out_c.data(), lse_c.data()),
      OPENNA_OK);
  ASSERT_EQ(
      openna_na_backward_host(c_ctx, &p, q.data(), k.data(), v.data(), out_c.data(), d_out.data(),
                              lse_c.data(), dq_c.data(), dk_c.data(), dv_c.data()),
      OPENNA_OK);
  openna_context_destroy(c_ctx);

  // Host overloads.
  std::vector<std::uint8_t> out(b.out), dq(b.q), dk(b.k), dv(b.v);
  std::vector<float> lse(b.lse / 4);
  ctx.forward(p, q.data(), k.data(), v.data(), out.data(), lse.data());
  ctx.backward(p, q.data(), k.data(), v.data(), out.data(), d_out.data(), lse.data(), dq.data(),
               dk.data(), dv.data());
  EXPECT_EQ(out, out_c);
  EXPECT_EQ(lse, lse_c);
  EXPECT_EQ(dq, dq_c);
  EXPECT_EQ(dk, dk_c);
  EXPECT_EQ(dv, dv_c);

  // cl::Buffer overloads, on buffers of the context's own OpenCL context.
  cl::Context clctx(ctx.opencl_context(), /*retainObject=*/true);
  cl::CommandQueue queue(ctx.opencl_queue(), /*retainObject=*/true);
  auto in = [&](const std::vector<std::uint8_t>& h) {
    return cl::Buffer(clctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, h.size(),
                      const_cast<std::uint8_t*>(h.data()));
  };
  cl::Buffer bq = in(q), bk = in(k), bv = in(v), bdo = in(d_out);
  cl::Buffer bout(clctx, CL_MEM_READ_WRITE, b.out), blse(clctx, CL_MEM_READ_WRITE, b.lse);
  cl::Buffer bdq(clctx, CL_MEM_READ_WRITE, b.q), bdk(clctx, CL_MEM_READ_WRITE, b.k),
      bdv(clctx, CL_MEM_READ_WRITE, b.v);
  ctx.forward(p, bq, bk, bv, bout, blse);
  ctx.backward(p, bq, bk, bv, bout, bdo, blse, bdq, bdk, bdv);
  ctx.finish();
  auto read = [&](const cl::Buffer& buf, std::size_t n) {
    std::vector<std::uint8_t> h(n);
    queue.enqueueReadBuffer(buf, CL_TRUE, 0, n, h.data());
    return h;
  };
  EXPECT_EQ(read(bout, b.out), out_c);
  EXPECT_EQ(read(bdq, b.q), dq_c);
  EXPECT_EQ(read(bdk, b.k), dk_c);
  EXPECT_EQ(read(bdv, b.v), dv_c);
  std::vector<float> lse_dev(b.lse / 4);
  queue.enqueueReadBuffer(blse, CL_TRUE, 0, b.lse, lse_dev.data());
  EXPECT_EQ(lse_dev, lse_c);

  // Without lse (a default cl::Buffer), the output is the same.
  cl::Buffer bout2(clctx, CL_MEM_READ_WRITE, b.out);
  ctx.forward(p, bq, bk, bv, bout2);
  ctx.finish();
  EXPECT_EQ(read(bout2, b.out), out_c);

  // A buffer one byte short: an Error naming it, before anything runs.
  cl::Buffer short_out(clctx, CL_MEM_READ_WRITE, b.out - 1);
  const std::string msg =
      expect_error([&] { ctx.forward(p, bq, bk, bv, short_out); }, OPENNA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(msg.find("out holds"), std::string::npos) << msg;
}

TEST(CppApi, WrapsApplicationObjects) {
  // The application's own OpenCL objects, made with the bindings.
  openna::Context probe;
  cl::Device device(probe.opencl_device(), /*retainObject=*/true);
  cl::Context app_ctx(device);
  cl::CommandQueue app_queue(app_ctx, device);
  openna::Context ctx = openna::Context::wrap(app_ctx, device, app_queue);
  EXPECT_EQ(ctx.opencl_context(), app_ctx());
  EXPECT_EQ(ctx.opencl_queue(), app_queue());
  EXPECT_EQ(ctx.opencl_device(), device());
  EXPECT_EQ(ctx.device_name(), probe.device_name());

  const openna::Problem p = openna::Problem({7}, {3}, 2, 4);
  const openna_tensor_bytes b = p.bytes();
  const auto q = random_tensor(p.dtype, b.q, 41), k = random_tensor(p.dtype, b.k, 42),
             v = random_tensor(p.dtype, b.v, 43);
  std::vector<std::uint8_t> want(b.out);
  probe.forward(p, q.data(), k.data(), v.data(), want.data());
  cl::Buffer bq(app_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, b.q,
                const_cast<std::uint8_t*>(q.data()));
  cl::Buffer bk(app_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, b.k,
                const_cast<std::uint8_t*>(k.data()));
  cl::Buffer bv(app_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, b.v,
                const_cast<std::uint8_t*>(v.data()));
  cl::Buffer bout(app_ctx, CL_MEM_READ_WRITE, b.out);
  ctx.forward(p, bq, bk, bv, bout);
  std::vector<std::uint8_t> got(b.out);
  app_queue.enqueueReadBuffer(bout, CL_TRUE, 0, b.out, got.data());  // same in-order queue
  EXPECT_EQ(got, want);

  // A buffer of the probe's context is foreign to the wrapped one.
  cl::Context probe_ctx(probe.opencl_context(), /*retainObject=*/true);
  cl::Buffer foreign(probe_ctx, CL_MEM_READ_WRITE, b.out);
  const std::string msg =
      expect_error([&] { ctx.forward(p, bq, bk, bv, foreign); }, OPENNA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(msg.find("another OpenCL context"), std::string::npos) << msg;

  // A queue of another context.
  cl::Context other(device);
  expect_error([&] { openna::Context::wrap(other, device, app_queue); },
               OPENNA_ERROR_INVALID_ARGUMENT);
  // Raw handles work too.
  openna::Context raw = openna::Context::wrap(app_ctx(), device(), app_queue());
  EXPECT_EQ(raw.opencl_queue(), app_queue());
}

TEST(CppApi, SelectedVariant) {
  openna::Context ctx;
  const openna::Problem p = small_problem(OPENNA_F16);
  ScopedEnv env("OPENNA_VARIANT", "naive");
  EXPECT_EQ(ctx.selected_variant(p).rfind("na_fwd_naive", 0), 0u) << ctx.selected_variant(p);
  EXPECT_EQ(ctx.selected_variant(p, OPENNA_PASS_BACKWARD).rfind("na_bwd_naive", 0), 0u);
  ScopedEnv bogus("OPENNA_VARIANT", "bogus");
  expect_error([&] { ctx.selected_variant(p); }, OPENNA_ERROR_INVALID_ARGUMENT);
}

TEST(CppApi, StatusNames) {
  EXPECT_STREQ(openna::status_name(OPENNA_OK), "OPENNA_OK");
  EXPECT_STREQ(openna::status_name(OPENNA_ERROR_BUILD), "OPENNA_ERROR_BUILD");
  EXPECT_STREQ(openna::status_name(static_cast<openna_status>(42)), "OPENNA_ERROR_UNKNOWN");
  EXPECT_NO_THROW(openna::check(OPENNA_OK));
}

}  // namespace
