// Every rule of SPEC.md section 4, every NULL or unusable argument, through all four entry points
// (host and cl_mem, forward and backward): exactly OPENNA_ERROR_INVALID_ARGUMENT, a message naming
// the argument (and its value), and outputs left as they were (sentinel bytes compared after the
// call). Also OPENNA_VARIANT: an unknown name is invalid, a forced variant that cannot run the
// problem is unsupported.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "api_test_util.hpp"

namespace openna_test {
namespace {

enum class Entry { FwdHost, BwdHost, FwdCl, BwdCl };
const char* entry_name(Entry e) {
  switch (e) {
    case Entry::FwdHost:
      return "openna_na_forward_host";
    case Entry::BwdHost:
      return "openna_na_backward_host";
    case Entry::FwdCl:
      return "openna_na_forward";
    case Entry::BwdCl:
      return "openna_na_backward";
  }
  return "?";
}
constexpr Entry kEntries[] = {Entry::FwdHost, Entry::BwdHost, Entry::FwdCl, Entry::BwdCl};

// Argument names of each entry point after (ctx, problem), in order.
const std::vector<std::string>& arg_names(Entry e) {
  static const std::vector<std::string> fwd = {"q", "k", "v", "out", "lse"};
  static const std::vector<std::string> bwd = {"q",   "k",   "v",   "out", "d_out",
                                               "lse", "d_q", "d_k", "d_v"};
  return e == Entry::FwdHost || e == Entry::FwdCl ? fwd : bwd;
}

openna_problem base_problem() {
  openna_problem p{};
  p.dtype = OPENNA_F32;
  p.rank = 2;
  p.batch = 1;
  p.spatial[0] = 6;
  p.spatial[1] = 5;
  p.kernel_size[0] = 3;
  p.kernel_size[1] = 3;
  p.heads = 2;
  p.heads_kv = 1;
  p.head_dim = 4;
  p.head_dim_v = 3;
  return p;
}

// Inputs and sentinel-filled outputs for one problem, on the host and on the device, and the
// calls of the four entry points with any argument replaced.
class Harness {
 public:
  // Host buffers are at least this large, so that a rule the library failed to enforce reads
  // or writes garbage inside the buffer instead of past it.
  static constexpr std::size_t kHostMin = 64 * 1024;

  explicit Harness(const openna_problem& p) : ctx_(shared_ctx()), b_(bytes_of(p)) {
    queue_ = openna_context_cl_queue(ctx_);
    // Order of arg_names(BwdHost): q k v out d_out lse d_q d_k d_v; forward's out/lse are
    // separate outputs.
    const std::size_t sizes[] = {b_.q, b_.k, b_.v, b_.out, b_.out, b_.lse, b_.q, b_.k, b_.v};
    for (int i = 0; i < 9; ++i) {
      const std::size_t n = std::max(sizes[i], kHostMin);
      // Inputs hold finite values (f32 in [-1, 1]); lse is a float tensor in any dtype.
      host_in_.push_back(random_tensor(OPENNA_F32, n, 100 + i));
      dev_in_.emplace_back(ctx_, sizes[i], host_in_.back().data());
    }
    host_fwd_out_.assign(std::max(b_.out, kHostMin), 0);
    host_fwd_lse_.assign(std::max(b_.lse, kHostMin), 0);
    for (int i = 0; i < 3; ++i) host_grads_[i].assign(std::max(sizes[6 + i], kHostMin), 0);
    dev_fwd_out_ = DeviceBuffer(ctx_, b_.out);
    dev_fwd_lse_ = DeviceBuffer(ctx_, b_.lse);
    for (int i = 0; i < 3; ++i) dev_grads_[i] = DeviceBuffer(ctx_, sizes[6 + i]);
    refill();
  }

  const openna_tensor_bytes& bytes() const { return b_; }
  openna_context* ctx() const { return ctx_; }

  // Puts the sentinel into every output, host and device.
  void refill() {
    for (auto* h : host_outputs()) std::fill(h->begin(), h->end(), kSentinel);
    for (auto* d : dev_outputs())
      d->write(queue_, std::vector<std::uint8_t>(d->bytes(), kSentinel));
  }

  // Whether every output still holds the sentinel (device outputs after the queue drains).
  bool outputs_untouched() {
    clFinish(queue_);
    for (auto* h : host_outputs())
      if (!all_sentinel(*h)) return false;
    for (auto* d : dev_outputs())
      if (!all_sentinel(d->read(queue_))) return false;
    return true;
  }

  // Calls `e` with argument `index` (in arg_names(e) order) replaced by `host_sub` (host entry
  // points) or `dev_sub` (cl_mem entry points); index -1 replaces nothing.
  openna_status call(Entry e, openna_context* ctx, const openna_problem* p, int index = -1,
                     void* host_sub = nullptr, cl_mem dev_sub = nullptr) {
    if (e == Entry::FwdHost || e == Entry::BwdHost) {
      std::vector<void*> a;
      if (e == Entry::FwdHost) {
        a = {in(0), in(1), in(2), host_fwd_out_.data(), host_fwd_lse_.data()};
      } else {
        a = {in(0),
             in(1),
             in(2),
             in(3),
             in(4),
             in(5),
             host_grads_[0].data(),
             host_grads_[1].data(),
             host_grads_[2].data()};
      }
      if (index >= 0) a.at(index) = host_sub;
      if (e == Entry::FwdHost) {
        return openna_na_forward_host(ctx, p, a[0], a[1], a[2], a[3], static_cast<float*>(a[4]));
      }
      return openna_na_backward_host(ctx, p, a[0], a[1], a[2], a[3], a[4],
                                     static_cast<const float*>(a[5]), a[6], a[7], a[8]);
    }
    std::vector<cl_mem> m;
    if (e == Entry::FwdCl) {
      m = {dev_in_[0].get(), dev_in_[1].get(), dev_in_[2].get(), dev_fwd_out_.get(),
           dev_fwd_lse_.get()};
    } else {
      m = {dev_in_[0].get(),    dev_in_[1].get(),    dev_in_[2].get(),
           dev_in_[3].get(),    dev_in_[4].get(),    dev_in_[5].get(),
           dev_grads_[0].get(), dev_grads_[1].get(), dev_grads_[2].get()};
    }
    if (index >= 0) m.at(index) = dev_sub;
    if (e == Entry::FwdCl) return openna_na_forward(ctx, p, m[0], m[1], m[2], m[3], m[4]);
    return openna_na_backward(ctx, p, m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]);
  }

  // Size in bytes that argument `index` of `e` must hold.
  std::size_t needed(Entry e, int index) const {
    const std::size_t fwd[] = {b_.q, b_.k, b_.v, b_.out, b_.lse};
    const std::size_t bwd[] = {b_.q, b_.k, b_.v, b_.out, b_.out, b_.lse, b_.q, b_.k, b_.v};
    return e == Entry::FwdHost || e == Entry::FwdCl ? fwd[index] : bwd[index];
  }

 private:
  void* in(int i) { return host_in_[i].data(); }
  std::vector<std::vector<std::uint8_t>*> host_outputs() {
    return {&host_fwd_out_, &host_fwd_lse_, &host_grads_[0], &host_grads_[1], &host_grads_[2]};
  }
  std::vector<DeviceBuffer*> dev_outputs() {
    return {&dev_fwd_out_, &dev_fwd_lse_, &dev_grads_[0], &dev_grads_[1], &dev_grads_[2]};
  }

  openna_context* ctx_;
  cl_command_queue queue_ = nullptr;
  openna_tensor_bytes b_;
  std::vector<std::vector<std::uint8_t>> host_in_;
  std::vector<DeviceBuffer> dev_in_;
  std::vector<std::uint8_t> host_fwd_out_, host_fwd_lse_, host_grads_[3];
  DeviceBuffer dev_fwd_out_, dev_fwd_lse_, dev_grads_[3];
};

// Expects `status` to be INVALID_ARGUMENT with a message containing `text`, outputs untouched.
void expect_refused(Harness& h, openna_status status, const std::string& text,
                    const std::string& where, openna_status want = OPENNA_ERROR_INVALID_ARGUMENT) {
  const std::string msg = openna_last_error();
  EXPECT_EQ(status, want) << where << ": " << msg;
  EXPECT_NE(msg.find(text), std::string::npos)
      << where << ": message \"" << msg << "\" does not contain \"" << text << "\"";
  EXPECT_TRUE(h.outputs_untouched()) << where << " wrote an output";
  h.refill();
}

// ---- the harness itself ----------------------------------------------------------------------

// A valid call through each entry point succeeds and does write its outputs: the sentinel check
// below can fail, and the argument wiring of the harness is right.
TEST(ValidationHarness, ValidCallsSucceedAndSentinelDetectsWrites) {
  const openna_problem p = base_problem();
  Harness h(p);
  for (Entry e : kEntries) {
    ASSERT_TRUE(h.outputs_untouched());
    EXPECT_EQ(h.call(e, h.ctx(), &p), OPENNA_OK) << entry_name(e) << ": " << openna_last_error();
    EXPECT_FALSE(h.outputs_untouched()) << entry_name(e) << " wrote nothing";
    h.refill();
  }
}

TEST(ValidationHarness, NamesArgumentMatchesWholeWords) {
  EXPECT_TRUE(names_argument("q is NULL", "q"));
  EXPECT_FALSE(names_argument("d_q is NULL", "q"));
  EXPECT_FALSE(names_argument("d_out is NULL", "out"));
  EXPECT_TRUE(names_argument("d_out holds 3 bytes", "d_out"));
}

// ---- SPEC.md section 4 rules -----------------------------------------------------------------

struct Rule {
  const char* name;
  std::function<void(openna_problem&)> mutate;
  const char* message;  // a substring naming the argument and its value
};

// gtest prints parameters in test listings and failures: the rule's name, not its bytes.
void PrintTo(const Rule& r, std::ostream* os) { *os << r.name; }

const std::vector<Rule>& rules() {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  static const std::vector<Rule> all = {
      {"rank_0", [](openna_problem& p) { p.rank = 0; }, "problem.rank = 0"},
      {"rank_4", [](openna_problem& p) { p.rank = 4; }, "problem.rank = 4"},
      {"rank_negative", [](openna_problem& p) { p.rank = -1; }, "problem.rank = -1"},
      {"batch_0", [](openna_problem& p) { p.batch = 0; }, "problem.batch = 0"},
      {"batch_negative", [](openna_problem& p) { p.batch = -3; }, "problem.batch = -3"},
      {"heads_0", [](openna_problem& p) { p.heads = 0; }, "problem.heads = 0"},
      {"heads_negative", [](openna_problem& p) { p.heads = -2; }, "problem.heads = -2"},
      {"head_dim_0", [](openna_problem& p) { p.head_dim = 0; }, "problem.head_dim = 0"},
      {"head_dim_negative", [](openna_problem& p) { p.head_dim = -4; }, "problem.head_dim = -4"},
      {"head_dim_v_negative", [](openna_problem& p) { p.head_dim_v = -1; },
       "problem.head_dim_v = -1"},
      {"heads_kv_negative", [](openna_problem& p) { p.heads_kv = -1; }, "problem.heads_kv = -1"},
      {"heads_kv_not_dividing", [](openna_problem& p) { p.heads_kv = 3; }, "problem.heads_kv = 3"},
      {"heads_kv_above_heads",
       [](openna_problem& p) {
         p.heads = 2;
         p.heads_kv = 4;
       },
       "problem.heads_kv = 4"},
      {"spatial_0", [](openna_problem& p) { p.spatial[1] = 0; }, "problem.spatial[1] = 0"},
      {"spatial_negative", [](openna_problem& p) { p.spatial[0] = -6; }, "problem.spatial[0] = -6"},
      {"kernel_0", [](openna_problem& p) { p.kernel_size[0] = 0; }, "problem.kernel_size[0] = 0"},
      {"kernel_negative", [](openna_problem& p) { p.kernel_size[1] = -3; },
       "problem.kernel_size[1] = -3"},
      {"kernel_above_spatial", [](openna_problem& p) { p.kernel_size[1] = 6; },
       "problem.kernel_size[1] = 6"},
      {"kernel_times_dilation_above_spatial", [](openna_problem& p) { p.dilation[0] = 3; },
       "problem.kernel_size[0] = 3"},
      {"stride_negative", [](openna_problem& p) { p.stride[1] = -1; }, "problem.stride[1] = -1"},
      {"stride_above_kernel", [](openna_problem& p) { p.stride[0] = 4; }, "problem.stride[0] = 4"},
      {"dilation_negative", [](openna_problem& p) { p.dilation[0] = -2; },
       "problem.dilation[0] = -2"},
      {"causal_2", [](openna_problem& p) { p.is_causal[0] = 2; }, "problem.is_causal[0] = 2"},
      {"causal_negative", [](openna_problem& p) { p.is_causal[1] = -1; },
       "problem.is_causal[1] = -1"},
      {"scale_inf", [inf](openna_problem& p) { p.scale = inf; }, "problem.scale"},
      {"scale_minus_inf", [inf](openna_problem& p) { p.scale = -inf; }, "problem.scale"},
      {"scale_nan", [nan](openna_problem& p) { p.scale = nan; }, "problem.scale"},
      {"dtype_unknown", [](openna_problem& p) { p.dtype = static_cast<openna_dtype>(3); },
       "problem.dtype = 3"},
      {"dtype_negative", [](openna_problem& p) { p.dtype = static_cast<openna_dtype>(-1); },
       "problem.dtype = -1"},
  };
  return all;
}

class InvalidProblem : public ::testing::TestWithParam<Rule> {};

TEST_P(InvalidProblem, RefusedEverywhereOutputsUntouched) {
  const openna_problem good = base_problem();
  openna_problem p = good;
  GetParam().mutate(p);
  const std::string text = GetParam().message;
  Harness h(good);  // buffers sized for the valid problem the rule was applied to

  expect_refused(h, openna_problem_validate(&p), text, "openna_problem_validate");
  openna_tensor_bytes b{};
  expect_refused(h, openna_problem_bytes(&p, &b), text, "openna_problem_bytes");
  char name[256];
  expect_refused(h, openna_select_variant(h.ctx(), &p, OPENNA_PASS_FORWARD, name, sizeof name),
                 text, "openna_select_variant");
  for (Entry e : kEntries) expect_refused(h, h.call(e, h.ctx(), &p), text, entry_name(e));
}

INSTANTIATE_TEST_SUITE_P(Spec, InvalidProblem, ::testing::ValuesIn(rules()),
                         [](const auto& info) { return std::string(info.param.name); });

// Values that mean "the default" and axes beyond the rank are not errors.
TEST(ValidProblem, DefaultsAndUnusedAxesAccepted) {
  openna_problem p = base_problem();
  p.heads_kv = 0;     // heads
  p.head_dim_v = 0;   // head_dim
  p.stride[0] = 0;    // 1
  p.dilation[1] = 0;  // 1
  p.scale = 0.0f;     // 1/sqrt(head_dim)
  p.rank = 1;         // axis 1 and 2 unused: garbage there is ignored
  p.spatial[1] = -7;
  p.kernel_size[2] = 99;
  p.is_causal[1] = 5;
  EXPECT_EQ(openna_problem_validate(&p), OPENNA_OK) << openna_last_error();
  // The edges of the rules are allowed: kernel * dilation == spatial, stride == kernel.
  p = base_problem();
  p.kernel_size[0] = 3;
  p.dilation[0] = 2;  // 3 * 2 == 6
  p.stride[1] = 3;    // == kernel
  p.is_causal[1] = 1;
  p.scale = -0.5f;  // negative but finite
  EXPECT_EQ(openna_problem_validate(&p), OPENNA_OK) << openna_last_error();
}

// ---- NULL and unusable arguments ---------------------------------------------------------------

TEST(InvalidArgument, NullContext) {
  const openna_problem p = base_problem();
  Harness h(p);
  for (Entry e : kEntries) {
    expect_refused(h, h.call(e, nullptr, &p), "ctx is NULL", entry_name(e));
  }
  char name[64];
  expect_refused(h, openna_select_variant(nullptr, &p, OPENNA_PASS_FORWARD, name, sizeof name),
                 "ctx is NULL", "openna_select_variant");
  expect_refused(h, openna_context_finish(nullptr), "ctx is NULL", "openna_context_finish");
}

TEST(InvalidArgument, NullProblem) {
  const openna_problem p = base_problem();
  Harness h(p);
  for (Entry e : kEntries) {
    expect_refused(h, h.call(e, h.ctx(), nullptr), "problem is NULL", entry_name(e));
  }
  expect_refused(h, openna_problem_validate(nullptr), "problem is NULL", "validate");
  openna_tensor_bytes b{};
  expect_refused(h, openna_problem_bytes(nullptr, &b), "problem is NULL", "bytes");
  expect_refused(h, openna_problem_bytes(&p, nullptr), "out is NULL", "bytes");
}

// Each pointer and buffer argument, in turn, NULL. Only the forward's lse may be NULL.
TEST(InvalidArgument, NullPointersAndBuffers) {
  const openna_problem p = base_problem();
  Harness h(p);
  for (Entry e : kEntries) {
    const auto& names = arg_names(e);
    for (int i = 0; i < static_cast<int>(names.size()); ++i) {
      const std::string where = std::string(entry_name(e)) + " with " + names[i] + " NULL";
      const openna_status s = h.call(e, h.ctx(), &p, i, nullptr, nullptr);
      if ((e == Entry::FwdHost || e == Entry::FwdCl) && names[i] == "lse") {
        EXPECT_EQ(s, OPENNA_OK) << where << ": " << openna_last_error();
        h.refill();
        continue;
      }
      const std::string msg = openna_last_error();
      EXPECT_EQ(s, OPENNA_ERROR_INVALID_ARGUMENT) << where << ": " << msg;
      EXPECT_TRUE(names_argument(msg, names[i])) << where << ": \"" << msg << "\"";
      EXPECT_NE(msg.find("NULL"), std::string::npos) << where << ": \"" << msg << "\"";
      EXPECT_TRUE(h.outputs_untouched()) << where << " wrote an output";
      h.refill();
    }
  }
}

// Device buffers one byte too small, and buffers of another OpenCL context, for every argument.
TEST(InvalidArgument, UnusableDeviceBuffers) {
  const openna_problem p = base_problem();
  Harness h(p);
  cl_device_id dev = openna_context_cl_device(h.ctx());
  cl_int err = CL_SUCCESS;
  cl_context other = clCreateContext(nullptr, 1, &dev, nullptr, nullptr, &err);
  ASSERT_EQ(err, CL_SUCCESS);
  for (Entry e : {Entry::FwdCl, Entry::BwdCl}) {
    const auto& names = arg_names(e);
    for (int i = 0; i < static_cast<int>(names.size()); ++i) {
      const std::size_t need = h.needed(e, i);
      {
        DeviceBuffer small(h.ctx(), need - 1);
        const std::string where = std::string(entry_name(e)) + " with " + names[i] + " short";
        const openna_status s = h.call(e, h.ctx(), &p, i, nullptr, small.get());
        const std::string msg = openna_last_error();
        EXPECT_EQ(s, OPENNA_ERROR_INVALID_ARGUMENT) << where << ": " << msg;
        EXPECT_TRUE(names_argument(msg, names[i])) << where << ": \"" << msg << "\"";
        EXPECT_NE(msg.find(std::to_string(need)), std::string::npos)
            << where << ": the message should say the size needed: \"" << msg << "\"";
        EXPECT_TRUE(h.outputs_untouched()) << where << " wrote an output";
        h.refill();
      }
      {
        DeviceBuffer foreign(other, need);
        const std::string where = std::string(entry_name(e)) + " with " + names[i] + " foreign";
        const openna_status s = h.call(e, h.ctx(), &p, i, nullptr, foreign.get());
        const std::string msg = openna_last_error();
        EXPECT_EQ(s, OPENNA_ERROR_INVALID_ARGUMENT) << where << ": " << msg;
        EXPECT_TRUE(names_argument(msg, names[i])) << where << ": \"" << msg << "\"";
        EXPECT_NE(msg.find("context"), std::string::npos) << where << ": \"" << msg << "\"";
        EXPECT_TRUE(h.outputs_untouched()) << where << " wrote an output";
        h.refill();
      }
    }
  }
  clReleaseContext(other);
}

// A buffer larger than needed is fine (the entry points use its first bytes).
TEST(InvalidArgument, LargerDeviceBuffersAccepted) {
  const openna_problem p = base_problem();
  Harness h(p);
  DeviceBuffer big(h.ctx(), h.bytes().out + 100);
  EXPECT_EQ(h.call(Entry::FwdCl, h.ctx(), &p, 3, nullptr, big.get()), OPENNA_OK)
      << openna_last_error();
  clFinish(openna_context_cl_queue(h.ctx()));
}

TEST(InvalidArgument, SelectVariantArguments) {
  const openna_problem p = base_problem();
  Harness h(p);
  char name[64];
  expect_refused(h,
                 openna_select_variant(h.ctx(), &p, static_cast<openna_pass>(7), name, sizeof name),
                 "pass = 7", "pass");
  expect_refused(h, openna_select_variant(h.ctx(), &p, OPENNA_PASS_FORWARD, nullptr, 8),
                 "buf is NULL", "buf");
  expect_refused(h, openna_select_variant(h.ctx(), &p, OPENNA_PASS_FORWARD, name, 0),
                 "buf_size = 0", "buf_size");
}

// ---- OPENNA_VARIANT --------------------------------------------------------------------------

TEST(ForcedVariant, UnknownNameIsInvalidArgument) {
  const openna_problem p = base_problem();
  Harness h(p);
  ScopedEnv env("OPENNA_VARIANT", "no_such_variant");
  for (Entry e : kEntries) {
    expect_refused(h, h.call(e, h.ctx(), &p), "OPENNA_VARIANT=no_such_variant", entry_name(e));
  }
  char name[128];
  expect_refused(h, openna_select_variant(h.ctx(), &p, OPENNA_PASS_BACKWARD, name, sizeof name),
                 "OPENNA_VARIANT=no_such_variant", "openna_select_variant");
}

// The naive variant keeps head_dim floats per work-item and refuses head dims over 512: forcing
// it on such a problem is UNSUPPORTED with a reason, never a silent fallback or a crash.
TEST(ForcedVariant, VariantThatCannotRunIsUnsupported) {
  openna_problem p{};
  p.dtype = OPENNA_F32;
  p.rank = 1;
  p.batch = 1;
  p.spatial[0] = 2;
  p.kernel_size[0] = 1;
  p.heads = 1;
  p.head_dim = 1024;
  Harness h(p);
  ScopedEnv env("OPENNA_VARIANT", "naive");
  for (Entry e : kEntries) {
    expect_refused(h, h.call(e, h.ctx(), &p), "OPENNA_VARIANT=naive", entry_name(e),
                   OPENNA_ERROR_UNSUPPORTED);
  }
  char name[128];
  expect_refused(h, openna_select_variant(h.ctx(), &p, OPENNA_PASS_FORWARD, name, sizeof name),
                 "head_dim", "openna_select_variant", OPENNA_ERROR_UNSUPPORTED);
}

}  // namespace
}  // namespace openna_test
