// Several threads sharing one context: each runs forward and backward of its own small problem
// (different ranks, dtypes and options, so different programs) through the host and the
// device-resident entry points at the same time, on a fresh context so that they also race to
// build the same programs. Every result must equal the single-threaded result bit for bit.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "api_test_util.hpp"

namespace openna_test {
namespace {

constexpr int kThreads = 8;
constexpr int kRounds = 3;

openna_problem problem_for(int i) {
  openna_problem p{};
  switch (i % 4) {
    case 0:  // 1-D causal with stride, f32
      p.dtype = OPENNA_F32;
      p.rank = 1;
      p.spatial[0] = 11;
      p.kernel_size[0] = 4;
      p.stride[0] = 2;
      p.is_causal[0] = 1;
      p.heads = 2;
      p.head_dim = 8;
      break;
    case 1:  // 2-D dilated, GQA, f16
      p.dtype = OPENNA_F16;
      p.rank = 2;
      p.spatial[0] = 5;
      p.spatial[1] = 6;
      p.kernel_size[0] = 3;
      p.kernel_size[1] = 3;
      p.dilation[1] = 2;
      p.heads = 4;
      p.heads_kv = 2;
      p.head_dim = 4;
      break;
    case 2:  // 3-D, MQA, head_dim_v != head_dim, bf16
      p.dtype = OPENNA_BF16;
      p.rank = 3;
      p.spatial[0] = 3;
      p.spatial[1] = 4;
      p.spatial[2] = 3;
      p.kernel_size[0] = 2;
      p.kernel_size[1] = 3;
      p.kernel_size[2] = 3;
      p.heads = 2;
      p.heads_kv = 1;
      p.head_dim = 4;
      p.head_dim_v = 6;
      break;
    default:  // 1-D, custom scale, batch 2, f32
      p.dtype = OPENNA_F32;
      p.rank = 1;
      p.spatial[0] = 8;
      p.kernel_size[0] = 8;
      p.batch = 2;
      p.heads = 1;
      p.head_dim = 5;
      p.scale = 0.3f;
      break;
  }
  if (p.batch == 0) p.batch = 1;
  return p;
}

struct Inputs {
  std::vector<std::uint8_t> q, k, v, d_out;
};
struct Results {
  std::vector<std::uint8_t> out, lse, d_q, d_k, d_v;
  bool operator==(const Results& o) const {
    return out == o.out && lse == o.lse && d_q == o.d_q && d_k == o.d_k && d_v == o.d_v;
  }
};

Inputs inputs_for(int thread) {
  const openna_problem p = problem_for(thread);
  const openna_tensor_bytes b = bytes_of(p);
  const std::uint64_t s = 1000 + 10 * thread;
  return {random_tensor(p.dtype, b.q, s), random_tensor(p.dtype, b.k, s + 1),
          random_tensor(p.dtype, b.v, s + 2), random_tensor(p.dtype, b.out, s + 3)};
}

// Host entry points: forward, then backward on the forward's outputs.
std::string run_host(openna_context* ctx, const openna_problem& p, const Inputs& in, Results& r) {
  openna_tensor_bytes b{};
  if (openna_problem_bytes(&p, &b) != OPENNA_OK) return openna_last_error();
  r.out.assign(b.out, 0);
  r.lse.assign(b.lse, 0);
  r.d_q.assign(b.q, 0);
  r.d_k.assign(b.k, 0);
  r.d_v.assign(b.v, 0);
  float* lse = reinterpret_cast<float*>(r.lse.data());
  if (openna_na_forward_host(ctx, &p, in.q.data(), in.k.data(), in.v.data(), r.out.data(), lse) !=
      OPENNA_OK) {
    return std::string("forward: ") + openna_last_error();
  }
  if (openna_na_backward_host(ctx, &p, in.q.data(), in.k.data(), in.v.data(), r.out.data(),
                              in.d_out.data(), lse, r.d_q.data(), r.d_k.data(),
                              r.d_v.data()) != OPENNA_OK) {
    return std::string("backward: ") + openna_last_error();
  }
  return "";
}

// The same through device buffers, synchronizing with openna_context_finish (which other threads
// call concurrently on the same queue).
std::string run_device(openna_context* ctx, const openna_problem& p, const Inputs& in, Results& r) {
  openna_tensor_bytes b{};
  if (openna_problem_bytes(&p, &b) != OPENNA_OK) return openna_last_error();
  cl_context cc = openna_context_cl_context(ctx);
  DeviceBuffer q(cc, b.q, in.q.data()), k(cc, b.k, in.k.data()), v(cc, b.v, in.v.data()),
      d_out(cc, b.out, in.d_out.data()), out(cc, b.out), lse(cc, b.lse), d_q(cc, b.q), d_k(cc, b.k),
      d_v(cc, b.v);
  if (openna_na_forward(ctx, &p, q.get(), k.get(), v.get(), out.get(), lse.get()) != OPENNA_OK) {
    return std::string("forward: ") + openna_last_error();
  }
  if (openna_na_backward(ctx, &p, q.get(), k.get(), v.get(), out.get(), d_out.get(), lse.get(),
                         d_q.get(), d_k.get(), d_v.get()) != OPENNA_OK) {
    return std::string("backward: ") + openna_last_error();
  }
  if (openna_context_finish(ctx) != OPENNA_OK) return openna_last_error();
  cl_command_queue queue = openna_context_cl_queue(ctx);
  r.out = out.read(queue);
  r.lse = lse.read(queue);
  r.d_q = d_q.read(queue);
  r.d_k = d_k.read(queue);
  r.d_v = d_v.read(queue);
  return "";
}

TEST(Threads, SharedContextMatchesSingleThreaded) {
  // Expected results, one thread at a time on the process's shared context.
  std::vector<Inputs> inputs;
  std::vector<Results> expected(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    inputs.push_back(inputs_for(t));
    ASSERT_EQ(run_host(shared_ctx(), problem_for(t), inputs[t], expected[t]), "");
  }

  // A fresh context: its memory cache is empty, so the threads also race to build programs.
  openna_context* ctx = nullptr;
  ASSERT_EQ(openna_context_create(nullptr, &ctx), OPENNA_OK) << openna_last_error();
  std::vector<std::vector<Results>> got(kThreads, std::vector<Results>(kRounds));
  std::vector<std::vector<std::string>> errors(kThreads, std::vector<std::string>(kRounds));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const openna_problem p = problem_for(t);
      for (int r = 0; r < kRounds; ++r) {
        // Odd threads alternate host and device entry points; even threads stay on the host.
        const bool device = (t % 2 == 1) && (r % 2 == 0);
        errors[t][r] = device ? run_device(ctx, p, inputs[t], got[t][r])
                              : run_host(ctx, p, inputs[t], got[t][r]);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (int r = 0; r < kRounds; ++r) {
      EXPECT_EQ(errors[t][r], "") << "thread " << t << " round " << r;
      EXPECT_TRUE(got[t][r] == expected[t])
          << "thread " << t << " round " << r << " differs from the single-threaded result";
    }
  }
  openna_context_destroy(ctx);
}

// The comparison above can fail: different inputs give different results.
TEST(Threads, ComparisonDetectsDifferences) {
  Results a, b;
  Inputs in = inputs_for(0);
  ASSERT_EQ(run_host(shared_ctx(), problem_for(0), in, a), "");
  in.v[2] ^= 0x40;  // a high mantissa bit of the first value
  ASSERT_EQ(run_host(shared_ctx(), problem_for(0), in, b), "");
  EXPECT_FALSE(a == b);
}

}  // namespace
}  // namespace openna_test
