// Timing and baselines (see measure.hpp).
#include "measure.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/errors.hpp"
#include "core/half.hpp"
#include "variants/dispatcher.hpp"  // configure()

namespace openna::bench {

namespace {

// The bench times problems far larger than the reference can check, so its inputs come from a
// cheap generator straight into storage format (values like make_inputs's: uniform, amplitude
// ~1.7 for q and k so the softmax is neither flat nor one-hot).
std::vector<std::uint8_t> random_storage(std::size_t n, openna_dtype dtype, float amp,
                                         std::uint64_t& state) {
  std::vector<std::uint8_t> out(n * dtype_size(dtype));
  for (std::size_t i = 0; i < n; ++i) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    const float u = static_cast<float>(state >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    const float f = amp * (2.0f * u - 1.0f);
    if (dtype == OPENNA_F32) {
      std::memcpy(&out[i * 4], &f, 4);
    } else {
      const std::uint16_t h =
          dtype == OPENNA_F16 ? openna::float_to_f16(f) : openna::float_to_bf16(f);
      std::memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

cl::Buffer upload(Context& ctx, const std::vector<std::uint8_t>& raw) {
  return cl::Buffer(ctx.ocl_context(), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, raw.size(),
                    const_cast<std::uint8_t*>(raw.data()));
}

double event_ms(const cl::Event& e) {
  const cl_ulong start = e.getProfilingInfo<CL_PROFILING_COMMAND_START>();
  const cl_ulong end = e.getProfilingInfo<CL_PROFILING_COMMAND_END>();
  return static_cast<double>(end - start) * 1e-6;
}

void call(Context& ctx, const Variant& v, const Config& c, const Problem& p, Pass pass, Buffers& b,
          Events* events) {
  if (pass == Pass::Forward) {
    v.forward(ctx, p, c, {b.q(), b.k(), b.v(), b.out(), b.lse()}, events);
  } else {
    v.backward(ctx, p, c,
               {b.q(), b.k(), b.v(), b.out(), b.d_out(), b.lse(), b.d_q(), b.d_k(), b.d_v()},
               events);
  }
}

std::string error_text(const std::exception& e) {
  if (const auto* ce = dynamic_cast<const cl::Error*>(&e)) {
    return std::string(ce->what()) + " failed: " + cl_error_name(ce->err());
  }
  return e.what();
}

// One call, timed by its events (program builds happen on the host before the enqueue, so
// they never count).
double one_call_ms(Context& ctx, const Variant& v, const Config& c, const Problem& p, Pass pass,
                   Buffers& b) {
  Events ev;
  call(ctx, v, c, p, pass, b, &ev);
  ctx.finish();
  double ms = 0;
  for (const cl::Event& e : ev) ms += event_ms(e);
  return ms;
}

}  // namespace

Buffers make_buffers(Context& ctx, const Problem& p, std::uint64_t seed) {
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  if (state == 0) state = 1;
  const openna_tensor_bytes tb = tensor_bytes(p);
  Buffers b;
  b.q = upload(ctx, random_storage(static_cast<std::size_t>(p.q_elems()), p.dtype, 1.7f, state));
  b.k = upload(ctx, random_storage(static_cast<std::size_t>(p.k_elems()), p.dtype, 1.7f, state));
  b.v = upload(ctx, random_storage(static_cast<std::size_t>(p.v_elems()), p.dtype, 1.0f, state));
  b.d_out =
      upload(ctx, random_storage(static_cast<std::size_t>(p.out_elems()), p.dtype, 1.0f, state));
  b.out =
      upload(ctx, random_storage(static_cast<std::size_t>(p.out_elems()), p.dtype, 1.0f, state));
  std::int64_t window = 1;
  for (int a = 0; a < p.rank; ++a) window *= p.axis[a].kernel;
  const std::vector<float> lse(static_cast<std::size_t>(p.lse_elems()),
                               static_cast<float>(std::log(static_cast<double>(window))));
  b.lse = cl::Buffer(ctx.ocl_context(), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, tb.lse,
                     const_cast<float*>(lse.data()));
  b.d_q = ctx.alloc(tb.q);
  b.d_k = ctx.alloc(tb.k);
  b.d_v = ctx.alloc(tb.v);
  return b;
}

Timing time_variant(Context& ctx, const Variant& v, const Config& c, const Problem& p, Pass pass,
                    Buffers& b, int warmup, int repeat) {
  Timing t;
  t.warmup = warmup;
  try {
    for (int i = 0; i < warmup; ++i) call(ctx, v, c, p, pass, b, nullptr);
    ctx.finish();
    std::vector<Events> per_call(static_cast<std::size_t>(repeat));
    for (auto& ev : per_call) call(ctx, v, c, p, pass, b, &ev);
    ctx.finish();
    std::vector<double> samples;
    std::vector<std::vector<double>> parts(per_call.empty() ? 0 : per_call.front().size());
    bool same_count = true;
    for (const Events& ev : per_call) {
      double ms = 0;
      same_count = same_count && ev.size() == parts.size();
      for (std::size_t i = 0; i < ev.size(); ++i) {
        const double one = event_ms(ev[i]);
        ms += one;
        if (same_count) parts[i].push_back(one);
      }
      samples.push_back(ms);
    }
    t.ms = stats_of(samples);
    if (same_count)
      for (const auto& part : parts) t.kernel_ms.push_back(stats_of(part).median);
    t.ok = true;
  } catch (const std::exception& e) {
    t.error = error_text(e);
    t.broke = true;
  }
  return t;
}

Timing time_baseline(Context& ctx, const Variant& v, const Problem& p, Pass pass, Buffers& b,
                     const BaselinePolicy& policy, double flops) {
  Timing t;
  if (!policy.enabled) {
    t.error = "off";
    return t;
  }
  const std::string why = v.unsupported_reason(p, ctx.device(), pass);
  if (!why.empty()) {
    t.error = std::string(v.family()) + " cannot run it: " + why;
    return t;
  }
  const Config c = configure(v, ctx.device(), p, pass).config;
  const int min_calls = 2;  // one warm-up, one timed
  const int calls = policy.warmup + policy.repeat;
  // 1. A lower bound from the measured peak, which costs nothing.
  if (policy.peak_gflops > 0) {
    const double lb = flops / (policy.peak_gflops * 1e6);
    if (lb * min_calls > policy.limit_ms) {
      t.error = "skipped: needs >= " + fmt(lb, 3) + " ms/call even at the device's peak (limit " +
                fmt(policy.limit_ms, 3) + " ms, --baseline-limit-ms)";
      return t;
    }
  }
  // 2. One call of a batch-1, single-head pilot (the cost scales with batch x heads).
  double est = 0;
  try {
    Problem pilot = p;
    pilot.batch = 1;
    pilot.heads = pilot.heads_kv = 1;
    const double scale = static_cast<double>(p.batch) * p.heads;
    one_call_ms(ctx, v, c, pilot, pass, b);  // builds the programs (pilot and problem share them)
    est = one_call_ms(ctx, v, c, pilot, pass, b) * scale;
  } catch (const std::exception& e) {
    t.error = error_text(e);
    t.broke = true;
    return t;
  }
  if (est * calls <= policy.limit_ms) {
    return time_variant(ctx, v, c, p, pass, b, policy.warmup, policy.repeat);
  }
  if (est * min_calls > policy.limit_ms) {
    t.error = "skipped: est. " + fmt(est, 3) + " ms/call (limit " + fmt(policy.limit_ms, 3) +
              " ms in all, --baseline-limit-ms)";
    return t;
  }
  const int repeat = std::clamp(static_cast<int>(policy.limit_ms / est) - 1, 1, policy.repeat);
  t = time_variant(ctx, v, c, p, pass, b, 1, repeat);
  if (t.ok) {
    t.note = std::to_string(repeat) + " repeats after 1 warm-up, to stay near --baseline-limit-ms";
  }
  return t;
}

}  // namespace openna::bench
