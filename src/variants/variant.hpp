// The variant registry: every kernel family (naive, fused, mma) behind one interface, with its
// preconditions, its tile configurations, its name derived from its key, and the one function
// that turns a problem into compile options.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/cl.hpp"
#include "core/problem.hpp"
#include "core/tiling.hpp"
#include "runtime/context.hpp"

namespace openna {

enum class Pass { Forward, Backward };
const char* pass_name(Pass pass);  // "fwd", "bwd"

// Named integer knobs of a variant (tile sizes, threads), in a fixed order. Serialized as
// "TQ0=8,TQ1=8,TK=32" in the tuning database and logs.
struct Config {
  std::vector<std::pair<std::string, int>> params;

  int get(const std::string& key, int fallback) const;
  void set(const std::string& key, int value);
  void erase(const std::string& key);  // the key's entry, if there is one
  std::string str() const;
  static Config parse(const std::string& s);  // inverse of str(); throws InvalidArgument
  bool operator==(const Config& o) const { return params == o.params; }
};

struct FwdArgs {
  cl_mem q, k, v, out, lse;  // lse may be NULL
};
struct BwdArgs {
  cl_mem q, k, v, out, d_out, lse, d_q, d_k, d_v;
};

// Profiling events of the kernels a call enqueued (bench timing), when the caller wants them.
using Events = std::vector<cl::Event>;

class Variant {
 public:
  virtual ~Variant() = default;
  virtual const char* family() const = 0;  // "naive", "fused", "mma"
  // "" when this variant can run the problem on the device; otherwise why not.
  virtual std::string unsupported_reason(const Problem& p, const DeviceInfo& dev,
                                         Pass pass) const = 0;
  // The built-in (heuristic) configuration.
  virtual Config default_config(const Problem& p, const DeviceInfo& dev, Pass pass) const = 0;
  // Every configuration the tuner may try (the default among them).
  virtual std::vector<Config> candidates(const Problem& p, const DeviceInfo& dev,
                                         Pass pass) const = 0;
  // "" when the configuration is valid for the problem and device, else why not.
  virtual std::string config_error(const Problem& p, const DeviceInfo& dev, Pass pass,
                                   const Config& c) const = 0;
  // The configuration's part of the variant name ("q8x8_k32"); "" for none.
  virtual std::string config_suffix(const Problem& p, const Config& c) const = 0;
  // What this variant computes for the problem with this configuration, per (batch, head):
  // the simulator's counts (core/tiling.hpp).
  virtual SimResult simulate(const Problem& p, const Config& c) const = 0;
  // The key under which the tuning database stores a configuration for this problem: the
  // compile-time facts (not the axis lengths, batch or heads).
  std::string tuning_key(const Problem& p, Pass pass) const;
  // Full variant name, e.g. na_fwd_fused_r2_k13x13_hd64_q8x8_f16.
  std::string name(const Problem& p, const Config& c, Pass pass) const;

  // Runs, on the context's device, whatever this variant's choices for the problem depend on
  // and cannot learn from a DeviceInfo alone (the mma variant's probes, whose cached findings
  // unsupported_reason and default_config then read). Default: nothing.
  virtual void prepare(Context& ctx, const Problem& p) const {
    (void)ctx;
    (void)p;
  }

  virtual void forward(Context& ctx, const Problem& p, const Config& c, const FwdArgs& a,
                       Events* events) const = 0;
  virtual void backward(Context& ctx, const Problem& p, const Config& c, const BwdArgs& a,
                        Events* events) const = 0;
};

// Every family, in the dispatcher's order of preference (fastest first).
const std::vector<const Variant*>& variant_registry();
const Variant* find_variant(const std::string& family);  // nullptr when unknown

// Compile options for a program: the problem's compile-time facts (rank, kernel, stride,
// dilation, causal per axis, head dims, dtype) plus the variant's own defines, plus every vendor
// quirk, named. The same string feeds the build, the cache key and the logs.
std::string compile_options(const DeviceInfo& dev, const Problem& p,
                            const std::vector<std::pair<std::string, int>>& defines);

// The problem's compile-time facts as a name part: "r2_k13x13_s2x2_d1x1_c01_hd64v32_f16" with
// the default parts (stride 1, dilation 1, no causal, hdv == hd) left out.
std::string problem_key(const Problem& p, int hd_bucket, int hdv_bucket);

// After a build: throws Unsupported when the kernel cannot run `work_items` per group on the
// device (registers or local memory), naming the variant and the limits. `reg_cap`: the
// registers per work-item the program is capped at (0: none); see nvidia_work_group_bound.
void check_fits(const cl::Kernel& kernel, const DeviceInfo& dev, int work_items,
                const std::string& label, int reg_cap = 0);

// Work-items per group that an NVIDIA GPU's register file holds for a kernel capped at
// `reg_cap` registers (65536 per SM, allocated per warp in units of 8 registers a work-item;
// 0: uncapped, up to 255), at most the device's maximum. NVIDIA's driver reports
// CL_KERNEL_WORK_GROUP_SIZE 256 for every kernel, as if each took 255 registers: on the H100
// (driver 580) a 10-register kernel reported 256 and ran launches of 384, 512 and 1024 work-items
// correctly (docs/DESIGN.md).
std::size_t nvidia_work_group_bound(const DeviceInfo& dev, int reg_cap);

// Its inverse: the registers per work-item (a multiple of 8, at most 255) that an NVIDIA GPU's
// register file gives each of `work_items` in one work-group.
int nvidia_register_share(int work_items);

// Launch geometry of the box-tiled kernels: one work-group of `work_items` per query (or key)
// tile, batch item and head (`heads` of them); nt receives the tiles per axis.
Geometry tiled_geometry(const Problem& p, const int tq[3], int work_items, int heads, int nt[3]);

// The D pass of the backward (na_delta.cl): D = rowwise dot(d_out, out) into a new buffer of
// lse_elems() floats, enqueued; returns the buffer and the pass's event. `lanes` work-items sum
// a row (1, or a power of two up to 32); 0 chooses: on GPUs 2 to 32 (coalesced reads),
// elsewhere 1. `vec` elements per load: 1, or 8 (16-byte loads: f16/bf16, head_dim_v a multiple
// of 8, lanes > 1); 0 chooses 8 where the GPU default allows it.
struct DeltaPass {
  cl::Buffer delta;
  cl::Event event;
};
DeltaPass launch_delta(Context& ctx, const Problem& p, cl_mem out, cl_mem d_out,
                       const std::string& label, int lanes = 0, int vec = 0);

// One of the backward's box-tiled kernels: a work-group of `work_items` per tile of box `tq`.
struct TiledKernel {
  cl::Kernel* kernel;
  const int* tq;
  int work_items;
  // Nonzero: the kernel takes its tiles from a counter (a trailing `__global int*` argument,
  // LANES_FOR_EACH_TILE in na_lanes.h); the launch is capped at this many work-groups and gets
  // a fresh zeroed counter.
  std::size_t counter_groups = 0;
  // The program's register cap per work-item (0: none), for check_fits.
  int reg_cap = 0;
  // Non-null: one more, last, `__global` argument (the mma variant's TMA tensor maps); not
  // with counter_groups.
  cl_mem tail_mem = nullptr;
};

// Launches a tiled kernel over `g` with `args`, adding the counter or the last argument that
// `tk` asks for.
template <typename... Args>
cl::Event launch_tiles(Context& ctx, const TiledKernel& tk, Geometry g, const Args&... args) {
  if (tk.tail_mem != nullptr) return ctx.launch(*tk.kernel, g, args..., MemArg{tk.tail_mem});
  if (tk.counter_groups == 0) return ctx.launch(*tk.kernel, g, args...);
  g.global[0] = std::min(g.global[0], tk.counter_groups * g.local[0]);
  cl_int zero = 0;
  return ctx.launch(*tk.kernel, g, args...,
                    cl::Buffer(ctx.ocl_context(), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                               sizeof zero, &zero));
}

// The backward's common tail for the tiled variants: checks that both kernels fit their
// work-groups, runs the D pass, then `dq` over query tiles (per query head) and `dkdv` over
// key tiles (per kv head), each with its own box. Both kernels take (q, k, v, d_out, lse,
// delta, outputs..., B, L0, L1, L2, H, HKV, hd, hdv, scale, nt0, nt1, nt2).
// `dkdv2`, when given, is a second kernel over the same key tiles (the mma variant's dV and dK
// kernels of KSPLIT), launched after `dkdv` with the same arguments.
// `dq_delta`: the dQ kernel computes D itself and writes it for the dK/dV kernel (the mma
// variant's DQD=1): no D pass; the dQ kernel takes `out` as one more, last, argument.
void launch_tiled_backward(Context& ctx, const Problem& p, TiledKernel dq, TiledKernel dkdv,
                           const BwdArgs& a, const std::string& label, Events* events,
                           const TiledKernel* dkdv2 = nullptr, bool dq_delta = false);

inline std::size_t round_up(std::size_t x, std::size_t m) { return (x + m - 1) / m * m; }

}  // namespace openna
