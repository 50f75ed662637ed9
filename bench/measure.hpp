// Timing variants on a device: input buffers, calls timed by the OpenCL profiling events of the
// kernels they enqueue (never host clocks), and the naive and dense baselines, which are skipped
// or shortened when their estimated time exceeds the user's limit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"
#include "core/problem.hpp"
#include "variants/variant.hpp"

namespace openna::bench {

// Device buffers of a problem; also big enough for any problem with the same tensor sizes or
// smaller ones (the dense problem, the baselines' pilot problem).
struct Buffers {
  cl::Buffer q, k, v, out, lse, d_out, d_q, d_k, d_v;
};
// Inputs random in the problem's dtype (q, k, v, d_out), and for a timed backward a plausible
// out (random) and lse (the log of the neighborhood size, so that exp(s - lse) stays in range):
// no forward kernel has to run, or work, before a backward is timed. Gradients uninitialized.
Buffers make_buffers(Context& ctx, const Problem& p, std::uint64_t seed);

struct Timing {
  bool ok = false;
  std::string error;   // why there is no time (unsupported, skipped, failed)
  std::string note;    // a remark on a time that was measured (fewer repeats)
  bool broke = false;  // a call failed: the context may be unusable after it
  int warmup = 0;
  Stats ms;  // per call: the sum of the profiled times of the kernels the call enqueued
  // The median of each kernel's time, in the order the call enqueues them (empty when the
  // calls did not all enqueue the same number of kernels).
  std::vector<double> kernel_ms;
};

// `warmup` untimed calls (they also build the programs), then `repeat` timed ones. Errors of
// the library become Timing::error.
Timing time_variant(Context& ctx, const Variant& v, const Config& c, const Problem& p, Pass pass,
                    Buffers& b, int warmup, int repeat);

struct BaselinePolicy {
  bool enabled = true;
  double limit_ms = 3000;  // most estimated device time for one baseline's calls
  int warmup = 2;
  int repeat = 10;
  double peak_gflops = 0;  // measured f32 FMA peak, 0 when unknown
};

// A baseline (the naive variant, or a variant on the dense problem) on buffers of the problem's
// size, with its configuration from the dispatcher. The time is estimated first (a lower bound
// from the peak, then one call of a batch-1 single-head pilot): beyond the limit it is skipped
// (Timing::error says so and why); near it, run with fewer repeats (Timing::note).
Timing time_baseline(Context& ctx, const Variant& v, const Problem& p, Pass pass, Buffers& b,
                     const BaselinePolicy& policy, double flops);

}  // namespace openna::bench
