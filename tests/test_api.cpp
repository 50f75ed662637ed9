// The C API beyond validation: version, device selection (specs, OPENNA_DEVICE, the list of
// devices in the error), contexts around an application's own OpenCL objects, device-resident
// entry points agreeing bit for bit with the host ones, variant selection, lse = NULL, and the
// per-thread last error.
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS  // clCreateCommandQueue: works on 1.2 platforms too
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "api_test_util.hpp"

namespace openna_test {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// What OpenCL itself reports, to check the library's choices against.
struct ClDevice {
  cl_device_id id;
  cl_device_type type;
  std::string platform_name;
};
std::vector<std::vector<ClDevice>> all_devices() {
  std::vector<std::vector<ClDevice>> out;
  cl_uint np = 0;
  if (clGetPlatformIDs(0, nullptr, &np) != CL_SUCCESS || np == 0) return out;
  std::vector<cl_platform_id> platforms(np);
  clGetPlatformIDs(np, platforms.data(), nullptr);
  for (cl_platform_id pl : platforms) {
    char name[256] = {0};
    clGetPlatformInfo(pl, CL_PLATFORM_NAME, sizeof name - 1, name, nullptr);
    std::vector<ClDevice> devs;
    cl_uint nd = 0;
    if (clGetDeviceIDs(pl, CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) == CL_SUCCESS && nd > 0) {
      std::vector<cl_device_id> ids(nd);
      clGetDeviceIDs(pl, CL_DEVICE_TYPE_ALL, nd, ids.data(), nullptr);
      for (cl_device_id id : ids) {
        cl_device_type t = 0;
        clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof t, &t, nullptr);
        devs.push_back({id, t, name});
      }
    }
    out.push_back(devs);
  }
  return out;
}

bool any_device(cl_device_type type) {
  for (const auto& pl : all_devices())
    for (const auto& d : pl)
      if (d.type & type) return true;
  return false;
}

cl_device_type type_of(cl_device_id id) {
  cl_device_type t = 0;
  clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof t, &t, nullptr);
  return t;
}

cl_uint ref_count(cl_context c) {
  cl_uint n = 0;
  clGetContextInfo(c, CL_CONTEXT_REFERENCE_COUNT, sizeof n, &n, nullptr);
  return n;
}

// Creates a context for `spec`, expecting success; returns it (caller destroys).
openna_context* create_ok(const char* spec) {
  openna_context* c = nullptr;
  const openna_status s = openna_context_create(spec, &c);
  EXPECT_EQ(s, OPENNA_OK) << "spec \"" << (spec ? spec : "(NULL)") << "\": " << openna_last_error();
  EXPECT_NE(c, nullptr);
  return c;
}

// ---- version -----------------------------------------------------------------------------------

TEST(Version, MatchesHeader) {
  int major = -1, minor = -1, patch = -1;
  const char* v = openna_version(&major, &minor, &patch);
  EXPECT_EQ(major, OPENNA_VERSION_MAJOR);
  EXPECT_EQ(minor, OPENNA_VERSION_MINOR);
  EXPECT_EQ(patch, OPENNA_VERSION_PATCH);
  char want[64];
  std::snprintf(want, sizeof want, "%d.%d.%d", major, minor, patch);
  EXPECT_STREQ(v, want);
  EXPECT_STREQ(openna_version(nullptr, nullptr, nullptr), want);
}

// ---- device selection ------------------------------------------------------------------------

TEST(DeviceSelection, DefaultNullAndEmptyAgree) {
  ScopedEnv env("OPENNA_DEVICE", nullptr);
  openna_context* a = create_ok(nullptr);
  openna_context* b = create_ok("");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(openna_context_cl_device(a), openna_context_cl_device(b));
  EXPECT_STRNE(openna_context_device_name(a), "");
  // Default: the first GPU, else the first CPU.
  const cl_device_type t = type_of(openna_context_cl_device(a));
  if (any_device(CL_DEVICE_TYPE_GPU)) {
    EXPECT_TRUE(t & CL_DEVICE_TYPE_GPU);
  } else if (any_device(CL_DEVICE_TYPE_CPU)) {
    EXPECT_TRUE(t & CL_DEVICE_TYPE_CPU);
  }
  openna_context_destroy(a);
  openna_context_destroy(b);
}

TEST(DeviceSelection, TypePlatformIndexAndName) {
  ScopedEnv env("OPENNA_DEVICE", nullptr);
  const auto devices = all_devices();
  ASSERT_FALSE(devices.empty());
  if (any_device(CL_DEVICE_TYPE_CPU)) {
    openna_context* c = create_ok("cpu");
    EXPECT_TRUE(type_of(openna_context_cl_device(c)) & CL_DEVICE_TYPE_CPU);
    openna_context_destroy(c);
    c = create_ok("CPU");  // case-insensitive
    openna_context_destroy(c);
  }
  if (any_device(CL_DEVICE_TYPE_GPU)) {
    openna_context* c = create_ok("gpu");
    EXPECT_TRUE(type_of(openna_context_cl_device(c)) & CL_DEVICE_TYPE_GPU);
    openna_context_destroy(c);
  }
  for (std::size_t pi = 0; pi < devices.size(); ++pi) {
    for (std::size_t di = 0; di < devices[pi].size(); ++di) {
      const std::string spec = std::to_string(pi) + ":" + std::to_string(di);
      openna_context* c = create_ok(spec.c_str());
      EXPECT_EQ(openna_context_cl_device(c), devices[pi][di].id) << spec;
      openna_context_destroy(c);
    }
  }
  bool pocl = false;
  for (const auto& pl : devices)
    if (!pl.empty() && lower(pl[0].platform_name).find("pocl") != std::string::npos) pocl = true;
  if (pocl) {
    for (const char* spec : {"pocl", "PoCL", "  pocl  "}) {
      openna_context* c = create_ok(spec);
      openna_context_destroy(c);
    }
  }
  // A substring of the device's own name selects it.
  openna_context* any = create_ok("0:0");
  const std::string name = openna_context_device_name(any);
  openna_context_destroy(any);
  openna_context* by_name =
      create_ok(name.substr(0, std::min<std::size_t>(name.size(), 12)).c_str());
  openna_context_destroy(by_name);
}

TEST(DeviceSelection, UnknownSpecListsDevices) {
  ScopedEnv env("OPENNA_DEVICE", nullptr);
  openna_context* def = create_ok(nullptr);
  const std::string def_name = openna_context_device_name(def);
  openna_context_destroy(def);
  for (const char* spec : {"no-such-device-xyz", "99:0", "0:99", "gpu-and-more"}) {
    openna_context* c = reinterpret_cast<openna_context*>(0x1);
    const openna_status s = openna_context_create(spec, &c);
    const std::string msg = openna_last_error();
    EXPECT_EQ(s, OPENNA_ERROR_NO_DEVICE) << spec << ": " << msg;
    EXPECT_EQ(c, nullptr) << spec << ": out must be NULL after a failure";
    EXPECT_NE(msg.find(spec), std::string::npos) << msg;
    EXPECT_NE(msg.find("available devices"), std::string::npos) << msg;
    EXPECT_NE(msg.find(def_name), std::string::npos)
        << "the list should name " << def_name << ": " << msg;
  }
  if (!any_device(CL_DEVICE_TYPE_GPU)) {
    EXPECT_EQ(openna_context_create("gpu", &def), OPENNA_ERROR_NO_DEVICE);
  }
  EXPECT_EQ(openna_context_create("cpu", nullptr), OPENNA_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(names_argument(openna_last_error(), "out")) << openna_last_error();
}

TEST(DeviceSelection, EnvironmentUsedOnlyWithoutSpec) {
  {
    ScopedEnv env("OPENNA_DEVICE", "no-such-device-xyz");
    for (const char* spec : {static_cast<const char*>(nullptr), ""}) {
      openna_context* c = nullptr;
      EXPECT_EQ(openna_context_create(spec, &c), OPENNA_ERROR_NO_DEVICE);
      const std::string msg = openna_last_error();
      EXPECT_NE(msg.find("OPENNA_DEVICE"), std::string::npos) << msg;
      EXPECT_NE(msg.find("no-such-device-xyz"), std::string::npos) << msg;
    }
    // An explicit spec wins over the environment.
    openna_context* c = create_ok("0:0");
    openna_context_destroy(c);
  }
  const auto devices = all_devices();
  const std::size_t last_pi = devices.size() - 1;
  if (devices[last_pi].empty()) GTEST_SKIP() << "last platform has no device";
  const std::string spec =
      std::to_string(last_pi) + ":" + std::to_string(devices[last_pi].size() - 1);
  ScopedEnv env("OPENNA_DEVICE", spec.c_str());
  openna_context* c = create_ok(nullptr);
  EXPECT_EQ(openna_context_cl_device(c), devices[last_pi].back().id);
  openna_context_destroy(c);
}

TEST(Context, NullHandlesAreHarmless) {
  openna_context_destroy(nullptr);
  EXPECT_STREQ(openna_context_device_name(nullptr), "");
  EXPECT_EQ(openna_context_cl_context(nullptr), nullptr);
  EXPECT_EQ(openna_context_cl_queue(nullptr), nullptr);
  EXPECT_EQ(openna_context_finish(shared_ctx()), OPENNA_OK);
}

// ---- contexts around an application's objects --------------------------------------------------

struct AppObjects {
  cl_device_id device = nullptr;
  cl_context context = nullptr;
  cl_command_queue queue = nullptr;
  explicit AppObjects(cl_device_id dev, cl_command_queue_properties props = 0) : device(dev) {
    cl_int err = CL_SUCCESS;
    context = clCreateContext(nullptr, 1, &device, nullptr, nullptr, &err);
    EXPECT_EQ(err, CL_SUCCESS);
    queue = clCreateCommandQueue(context, device, props, &err);
    if (err != CL_SUCCESS) queue = nullptr;
  }
  ~AppObjects() {
    if (queue) clReleaseCommandQueue(queue);
    if (context) clReleaseContext(context);
  }
};

openna_problem small_problem(openna_dtype dtype) {
  openna_problem p{};
  p.dtype = dtype;
  p.rank = 2;
  p.batch = 2;
  p.spatial[0] = 5;
  p.spatial[1] = 4;
  p.kernel_size[0] = 3;
  p.kernel_size[1] = 2;
  p.dilation[1] = 2;
  p.is_causal[0] = 1;
  p.heads = 4;
  p.heads_kv = 2;
  p.head_dim = 6;
  p.head_dim_v = 5;
  return p;
}

TEST(FromCl, WrapsApplicationObjectsAndReleasesThem) {
  AppObjects app(openna_context_cl_device(shared_ctx()));
  ASSERT_NE(app.queue, nullptr);
  const cl_uint before = ref_count(app.context);
  openna_context* c = nullptr;
  ASSERT_EQ(openna_context_create_from_cl(app.context, app.device, app.queue, &c), OPENNA_OK)
      << openna_last_error();
  EXPECT_EQ(openna_context_cl_context(c), app.context);
  EXPECT_EQ(openna_context_cl_device(c), app.device);
  EXPECT_EQ(openna_context_cl_queue(c), app.queue);
  EXPECT_STREQ(openna_context_device_name(c), openna_context_device_name(shared_ctx()));
  EXPECT_GT(ref_count(app.context), before) << "the library should retain the context";

  // Runs on the application's queue with the application's buffers, and agrees with the host
  // entry point on the library's own context.
  const openna_problem p = small_problem(OPENNA_F32);
  const openna_tensor_bytes b = bytes_of(p);
  const auto q = random_tensor(p.dtype, b.q, 1), k = random_tensor(p.dtype, b.k, 2),
             v = random_tensor(p.dtype, b.v, 3);
  std::vector<std::uint8_t> out_host(b.out);
  std::vector<float> lse_host(b.lse / 4);
  ASSERT_EQ(openna_na_forward_host(shared_ctx(), &p, q.data(), k.data(), v.data(), out_host.data(),
                                   lse_host.data()),
            OPENNA_OK)
      << openna_last_error();
  {
    // Buffers retain the context too: scoped, so the count below sees only the library.
    DeviceBuffer dq(app.context, b.q, q.data()), dk(app.context, b.k, k.data()),
        dv(app.context, b.v, v.data()), dout(app.context, b.out), dlse(app.context, b.lse);
    ASSERT_EQ(openna_na_forward(c, &p, dq.get(), dk.get(), dv.get(), dout.get(), dlse.get()),
              OPENNA_OK)
        << openna_last_error();
    EXPECT_EQ(clFinish(app.queue), CL_SUCCESS);
    EXPECT_EQ(dout.read(app.queue), out_host);
    std::vector<std::uint8_t> lse_bytes(b.lse);
    std::memcpy(lse_bytes.data(), lse_host.data(), b.lse);
    EXPECT_EQ(dlse.read(app.queue), lse_bytes);
  }

  openna_context_destroy(c);
  EXPECT_EQ(ref_count(app.context), before) << "destroy should release what it retained";
}

TEST(FromCl, RejectsMismatchedOrMissingObjects) {
  cl_device_id dev = openna_context_cl_device(shared_ctx());
  AppObjects a(dev), b(dev);
  ASSERT_TRUE(a.queue && b.queue);
  openna_context* c = reinterpret_cast<openna_context*>(0x1);
  EXPECT_EQ(openna_context_create_from_cl(a.context, dev, b.queue, &c),
            OPENNA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(openna_last_error()).find("queue"), std::string::npos)
      << openna_last_error();
  EXPECT_EQ(c, nullptr);
  EXPECT_EQ(openna_context_create_from_cl(nullptr, dev, a.queue, &c),
            OPENNA_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(names_argument(openna_last_error(), "context")) << openna_last_error();
  EXPECT_EQ(openna_context_create_from_cl(a.context, nullptr, a.queue, &c),
            OPENNA_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(names_argument(openna_last_error(), "device")) << openna_last_error();
  EXPECT_EQ(openna_context_create_from_cl(a.context, dev, nullptr, &c),
            OPENNA_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(names_argument(openna_last_error(), "queue")) << openna_last_error();
  EXPECT_EQ(openna_context_create_from_cl(a.context, dev, a.queue, nullptr),
            OPENNA_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(names_argument(openna_last_error(), "out")) << openna_last_error();
}

TEST(FromCl, OutOfOrderQueueUnsupported) {
  cl_device_id dev = openna_context_cl_device(shared_ctx());
  AppObjects a(dev, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE);
  if (!a.queue) GTEST_SKIP() << "device has no out-of-order queues";
  openna_context* c = nullptr;
  EXPECT_EQ(openna_context_create_from_cl(a.context, dev, a.queue, &c), OPENNA_ERROR_UNSUPPORTED);
  EXPECT_NE(std::string(openna_last_error()).find("out-of-order"), std::string::npos)
      << openna_last_error();
  EXPECT_EQ(c, nullptr);
}

// ---- device-resident entry points agree with the host ones ------------------------------------

class DeviceResident : public ::testing::TestWithParam<openna_dtype> {};

TEST_P(DeviceResident, ForwardAndBackwardMatchHostBitForBit) {
  openna_context* ctx = shared_ctx();
  cl_command_queue queue = openna_context_cl_queue(ctx);
  const openna_problem p = small_problem(GetParam());
  const openna_tensor_bytes b = bytes_of(p);
  const auto q = random_tensor(p.dtype, b.q, 11), k = random_tensor(p.dtype, b.k, 12),
             v = random_tensor(p.dtype, b.v, 13), d_out = random_tensor(p.dtype, b.out, 14);

  std::vector<std::uint8_t> out(b.out), dq(b.q), dk(b.k), dv(b.v);
  std::vector<float> lse(b.lse / 4);
  ASSERT_EQ(openna_na_forward_host(ctx, &p, q.data(), k.data(), v.data(), out.data(), lse.data()),
            OPENNA_OK)
      << openna_last_error();
  ASSERT_EQ(openna_na_backward_host(ctx, &p, q.data(), k.data(), v.data(), out.data(), d_out.data(),
                                    lse.data(), dq.data(), dk.data(), dv.data()),
            OPENNA_OK)
      << openna_last_error();

  DeviceBuffer mq(ctx, b.q, q.data()), mk(ctx, b.k, k.data()), mv(ctx, b.v, v.data()),
      mdo(ctx, b.out, d_out.data()), mout(ctx, b.out), mlse(ctx, b.lse), mdq(ctx, b.q),
      mdk(ctx, b.k), mdv(ctx, b.v);
  ASSERT_EQ(openna_na_forward(ctx, &p, mq.get(), mk.get(), mv.get(), mout.get(), mlse.get()),
            OPENNA_OK)
      << openna_last_error();
  // The backward consumes the forward's outputs straight from the device, without a finish in
  // between: the queue is in order.
  ASSERT_EQ(openna_na_backward(ctx, &p, mq.get(), mk.get(), mv.get(), mout.get(), mdo.get(),
                               mlse.get(), mdq.get(), mdk.get(), mdv.get()),
            OPENNA_OK)
      << openna_last_error();
  ASSERT_EQ(openna_context_finish(ctx), OPENNA_OK);
  std::vector<std::uint8_t> lse_bytes(b.lse);
  std::memcpy(lse_bytes.data(), lse.data(), b.lse);
  EXPECT_EQ(mout.read(queue), out);
  EXPECT_EQ(mlse.read(queue), lse_bytes);
  EXPECT_EQ(mdq.read(queue), dq);
  EXPECT_EQ(mdk.read(queue), dk);
  EXPECT_EQ(mdv.read(queue), dv);
  // Not trivially equal: the outputs hold something.
  EXPECT_NE(out, std::vector<std::uint8_t>(b.out, 0));
  EXPECT_NE(dk, std::vector<std::uint8_t>(b.k, 0));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, DeviceResident,
                         ::testing::Values(OPENNA_F32, OPENNA_F16, OPENNA_BF16),
                         [](const auto& info) {
                           return std::string(info.param == OPENNA_F32   ? "f32"
                                              : info.param == OPENNA_F16 ? "f16"
                                                                         : "bf16");
                         });

TEST(Forward, NullLseGivesSameOutput) {
  openna_context* ctx = shared_ctx();
  const openna_problem p = small_problem(OPENNA_F32);
  const openna_tensor_bytes b = bytes_of(p);
  const auto q = random_tensor(p.dtype, b.q, 21), k = random_tensor(p.dtype, b.k, 22),
             v = random_tensor(p.dtype, b.v, 23);
  std::vector<std::uint8_t> with(b.out), without(b.out, 0);
  std::vector<float> lse(b.lse / 4);
  ASSERT_EQ(openna_na_forward_host(ctx, &p, q.data(), k.data(), v.data(), with.data(), lse.data()),
            OPENNA_OK);
  ASSERT_EQ(openna_na_forward_host(ctx, &p, q.data(), k.data(), v.data(), without.data(), nullptr),
            OPENNA_OK)
      << openna_last_error();
  EXPECT_EQ(with, without);
  DeviceBuffer mq(ctx, b.q, q.data()), mk(ctx, b.k, k.data()), mv(ctx, b.v, v.data()),
      mout(ctx, b.out);
  ASSERT_EQ(openna_na_forward(ctx, &p, mq.get(), mk.get(), mv.get(), mout.get(), nullptr),
            OPENNA_OK)
      << openna_last_error();
  EXPECT_EQ(mout.read(openna_context_cl_queue(ctx)), with);
}

// ---- variant selection
// ---------------------------------------------------------------------------

TEST(SelectVariant, ForcedNaiveAndTruncation) {
  openna_context* ctx = shared_ctx();
  const openna_problem p = small_problem(OPENNA_F16);
  ScopedEnv env("OPENNA_VARIANT", "naive");
  char buf[256];
  ASSERT_EQ(openna_select_variant(ctx, &p, OPENNA_PASS_FORWARD, buf, sizeof buf), OPENNA_OK)
      << openna_last_error();
  EXPECT_EQ(std::string(buf).rfind("na_fwd_naive", 0), 0u) << buf;
  EXPECT_NE(std::string(buf).find("f16"), std::string::npos) << buf;
  ASSERT_EQ(openna_select_variant(ctx, &p, OPENNA_PASS_BACKWARD, buf, sizeof buf), OPENNA_OK);
  EXPECT_EQ(std::string(buf).rfind("na_bwd_naive", 0), 0u) << buf;
  char small[7];
  std::memset(small, 'x', sizeof small);
  ASSERT_EQ(openna_select_variant(ctx, &p, OPENNA_PASS_FORWARD, small, sizeof small), OPENNA_OK);
  EXPECT_STREQ(small, "na_fwd");  // truncated and NUL-terminated
}

TEST(SelectVariant, AutoGivesAName) {
  ScopedEnv env("OPENNA_VARIANT", nullptr);
  char buf[256];
  const openna_problem p = small_problem(OPENNA_F32);
  ASSERT_EQ(openna_select_variant(shared_ctx(), &p, OPENNA_PASS_FORWARD, buf, sizeof buf),
            OPENNA_OK)
      << openna_last_error();
  EXPECT_EQ(std::string(buf).rfind("na_fwd_", 0), 0u) << buf;
  ScopedEnv env_auto("OPENNA_VARIANT", "auto");
  char buf2[256];
  ASSERT_EQ(openna_select_variant(shared_ctx(), &p, OPENNA_PASS_FORWARD, buf2, sizeof buf2),
            OPENNA_OK);
  EXPECT_STREQ(buf, buf2);
}

// ---- problem sizes ---------------------------------------------------------------------------

TEST(ProblemBytes, FollowTheLayout) {
  openna_problem p = small_problem(OPENNA_F16);
  const openna_tensor_bytes b = bytes_of(p);
  const std::size_t tokens = 2 * 5 * 4;  // batch * spatial
  EXPECT_EQ(b.q, tokens * 4 * 6 * 2);
  EXPECT_EQ(b.k, tokens * 2 * 6 * 2);
  EXPECT_EQ(b.v, tokens * 2 * 5 * 2);
  EXPECT_EQ(b.out, tokens * 4 * 5 * 2);
  EXPECT_EQ(b.lse, tokens * 4 * 4);  // always float
  p.dtype = OPENNA_F32;
  EXPECT_EQ(bytes_of(p).q, tokens * 4 * 6 * 4);
}

// ---- the last error is per thread
// ----------------------------------------------------------------

TEST(LastError, PerThreadAndKeptUntilTheNextFailure) {
  openna_problem bad = small_problem(OPENNA_F32);
  bad.rank = 0;
  ASSERT_EQ(openna_problem_validate(&bad), OPENNA_ERROR_INVALID_ARGUMENT);
  const std::string mine = openna_last_error();
  ASSERT_NE(mine.find("problem.rank = 0"), std::string::npos) << mine;

  std::string fresh, theirs;
  std::thread t([&] {
    fresh = openna_last_error();
    openna_problem other = small_problem(OPENNA_F32);
    other.batch = -5;
    openna_problem_validate(&other);
    theirs = openna_last_error();
  });
  t.join();
  EXPECT_EQ(fresh, "") << "a new thread starts with no error";
  EXPECT_NE(theirs.find("problem.batch = -5"), std::string::npos) << theirs;
  EXPECT_EQ(openna_last_error(), mine) << "another thread's failure changed this thread's error";

  // A successful call does not erase it: it is the last *failed* call's message.
  const openna_problem good = small_problem(OPENNA_F32);
  ASSERT_EQ(openna_problem_validate(&good), OPENNA_OK);
  EXPECT_EQ(openna_last_error(), mine);
}

}  // namespace
}  // namespace openna_test
