// Shared pieces of the variant registry: configurations, names, compile options.
#include "variants/variant.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "core/errors.hpp"

namespace openna {

const char* pass_name(Pass pass) { return pass == Pass::Forward ? "fwd" : "bwd"; }

int Config::get(const std::string& key, int fallback) const {
  for (const auto& kv : params)
    if (kv.first == key) return kv.second;
  return fallback;
}

void Config::set(const std::string& key, int value) {
  for (auto& kv : params) {
    if (kv.first == key) {
      kv.second = value;
      return;
    }
  }
  params.emplace_back(key, value);
}

void Config::erase(const std::string& key) {
  params.erase(
      std::remove_if(params.begin(), params.end(),
                     [&](const std::pair<std::string, int>& kv) { return kv.first == key; }),
      params.end());
}

std::string Config::str() const {
  std::string s;
  for (const auto& kv : params) {
    if (!s.empty()) s += ",";
    s += kv.first + "=" + std::to_string(kv.second);
  }
  return s;
}

Config Config::parse(const std::string& s) {
  Config c;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw InvalidArgument("configuration \"" + s + "\": \"" + item + "\" is not KEY=VALUE");
    }
    try {
      std::size_t used = 0;
      const int v = std::stoi(item.substr(eq + 1), &used);
      if (used != item.size() - eq - 1) throw std::invalid_argument("trailing");
      c.set(item.substr(0, eq), v);
    } catch (const std::exception&) {
      throw InvalidArgument("configuration \"" + s + "\": \"" + item + "\" has no integer value");
    }
  }
  return c;
}

std::string problem_key(const Problem& p, int hd_bucket, int hdv_bucket) {
  std::ostringstream s;
  auto dims = [&](auto get) {
    for (int a = 0; a < p.rank; ++a) s << (a ? "x" : "") << get(p.axis[a]);
  };
  bool strided = false, dilated = false;
  for (int a = 0; a < p.rank; ++a) {
    strided |= p.axis[a].stride != 1;
    dilated |= p.axis[a].dilation != 1;
  }
  s << "r" << p.rank << "_k";
  dims([](const Axis& x) { return x.kernel; });
  if (strided) {
    s << "_s";
    dims([](const Axis& x) { return x.stride; });
  }
  if (dilated) {
    s << "_d";
    dims([](const Axis& x) { return x.dilation; });
  }
  if (p.any_causal()) {
    s << "_c";
    for (int a = 0; a < p.rank; ++a) s << (p.axis[a].causal ? 1 : 0);
  }
  s << "_hd" << hd_bucket;
  if (hdv_bucket != hd_bucket) s << "v" << hdv_bucket;
  s << "_" << dtype_name(p.dtype);
  return s.str();
}

std::string Variant::tuning_key(const Problem& p, Pass pass) const {
  return std::string("na_") + pass_name(pass) + "_" + family() + "_" +
         problem_key(p, p.head_dim, p.head_dim_v);
}

std::string Variant::name(const Problem& p, const Config& c, Pass pass) const {
  std::string n = std::string("na_") + pass_name(pass) + "_" + family() + "_" +
                  problem_key(p, p.head_dim, p.head_dim_v);
  const std::string suffix = config_suffix(p, c);
  if (!suffix.empty()) n += "_" + suffix;
  return n;
}

constexpr int kNvRegisterFile = 65536;  // 32-bit registers an SM (and a work-group) has

std::size_t nvidia_work_group_bound(const DeviceInfo& dev, int reg_cap) {
  const int cap = reg_cap > 0 ? reg_cap : 255;  // uncapped: the most a work-item may take
  const std::size_t regs = (static_cast<std::size_t>(cap) + 7) / 8 * 8;
  return std::min(dev.max_work_group_size, kNvRegisterFile / (regs * 32) * 32);
}

int nvidia_register_share(int work_items) {
  const int warps = (work_items + 31) / 32;
  return std::min(255, kNvRegisterFile / (warps * 32)) / 8 * 8;
}

void check_fits(const cl::Kernel& kernel, const DeviceInfo& dev, int work_items,
                const std::string& label, int reg_cap) {
  std::size_t max_wg = kernel.getWorkGroupInfo<CL_KERNEL_WORK_GROUP_SIZE>(dev.device);
  // NVIDIA's figure assumes 255 registers a work-item (nvidia_work_group_bound); a capped
  // program's own bound is what the hardware enforces.
  if (dev.is_nvidia() && reg_cap > 0) {
    max_wg = std::max(max_wg, nvidia_work_group_bound(dev, reg_cap));
  }
  const cl_ulong local = kernel.getWorkGroupInfo<CL_KERNEL_LOCAL_MEM_SIZE>(dev.device);
  if (static_cast<std::size_t>(work_items) > max_wg) {
    throw Unsupported(label + " needs " + std::to_string(work_items) +
                      " work-items per group; the built kernel allows " + std::to_string(max_wg) +
                      " on " + dev.name);
  }
  if (local > dev.kernel_local_mem()) {
    throw Unsupported(label + " needs " + std::to_string(local) + " bytes of local memory; " +
                      dev.name + " allows " + std::to_string(dev.kernel_local_mem()));
  }
}

Geometry tiled_geometry(const Problem& p, const int tq[3], int work_items, int heads, int nt[3]) {
  nt[0] = nt[1] = nt[2] = 1;
  for (int x = 0; x < p.rank; ++x) nt[x] = tiles_on_axis(p.axis[x], tq[x]);
  Geometry g;
  g.local[0] = static_cast<std::size_t>(work_items);
  g.global[0] = static_cast<std::size_t>(nt[0]) * nt[1] * nt[2] * p.batch * heads * g.local[0];
  return g;
}

DeltaPass launch_delta(Context& ctx, const Problem& p, cl_mem out, cl_mem d_out,
                       const std::string& label, int lanes, int vec) {
  const DeviceInfo& dev = ctx.device();
  const bool vec_ok = p.dtype != OPENNA_F32 && p.head_dim_v % 8 == 0;
  if (lanes == 0) {
    lanes = 1;
    if (dev.is_gpu() && dev.max_work_group_size >= 256) {
      // 16-byte loads where the rows allow them (H100, 2026-11-26 session 7: see
      // docs/PERFORMANCE.md), else 2-4 elements per work-item
      if (vec_ok && p.head_dim_v >= 16) {
        lanes = 2;
        while (lanes < 32 && lanes * 8 < p.head_dim_v) lanes *= 2;
        if (vec == 0) vec = 8;
      } else {
        lanes = 8;
        while (lanes < 32 && lanes * 4 < p.head_dim_v) lanes *= 2;
      }
    }
  }
  if (vec == 0) vec = 1;
  if (lanes < 1 || lanes > 32 || (lanes & (lanes - 1)) != 0 ||
      (lanes > 1 && dev.max_work_group_size < 256)) {
    throw Unsupported(label + ": D pass with " + std::to_string(lanes) + " work-items per row");
  }
  if ((vec != 1 && vec != 8) || (vec == 8 && (!vec_ok || lanes == 1))) {
    throw Unsupported(label + ": D pass with " + std::to_string(vec) +
                      "-element loads (8 needs f16 or bf16, head_dim_v a multiple of 8 and "
                      "more than one work-item per row)");
  }
  cl::Kernel k = ctx.kernel("na_delta.cl",
                            compile_options(dev, p, {{"DLANES", lanes}, {"DVEC", vec}}),
                            "na_delta", label);
  const std::size_t rows = static_cast<std::size_t>(p.lse_elems());
  Geometry g;
  g.local[0] = lanes == 1 ? std::min<std::size_t>(64, dev.max_work_group_size) : 256;
  g.global[0] = round_up(rows * lanes, g.local[0]);
  // Released by the caller right after enqueueing: OpenCL keeps it alive until the kernels
  // using it finish.
  DeltaPass d;
  d.delta = ctx.alloc(rows * sizeof(float));
  d.event =
      ctx.launch(k, g, MemArg{out}, MemArg{d_out}, d.delta, static_cast<int>(rows), p.head_dim_v);
  return d;
}

void launch_tiled_backward(Context& ctx, const Problem& p, TiledKernel dq, TiledKernel dkdv,
                           const BwdArgs& a, const std::string& label, Events* events,
                           const TiledKernel* dkdv2, bool dq_delta) {
  check_fits(*dq.kernel, ctx.device(), dq.work_items, label, dq.reg_cap);
  check_fits(*dkdv.kernel, ctx.device(), dkdv.work_items, label, dkdv.reg_cap);
  if (dkdv2) check_fits(*dkdv2->kernel, ctx.device(), dkdv2->work_items, label, dkdv2->reg_cap);
  int nq[3], nk[3];
  const Geometry gq = tiled_geometry(p, dq.tq, dq.work_items, p.heads, nq);
  const Geometry gk = tiled_geometry(p, dkdv.tq, dkdv.work_items, p.heads_kv, nk);
  const int L0 = p.axis[0].length, L1 = p.axis[1].length, L2 = p.axis[2].length;
  Events ev;
  DeltaPass d;
  // The dQ kernel's arguments, then `extra` (with dq_delta: out, from which it computes D).
  const auto launch_dq = [&](const auto&... extra) {
    return launch_tiles(ctx, dq, gq, MemArg{a.q}, MemArg{a.k}, MemArg{a.v}, MemArg{a.d_out},
                        MemArg{a.lse}, d.delta, MemArg{a.d_q}, p.batch, L0, L1, L2, p.heads,
                        p.heads_kv, p.head_dim, p.head_dim_v, p.scale, nq[0], nq[1], nq[2],
                        extra...);
  };
  if (dq_delta) {
    d.delta = ctx.alloc(static_cast<std::size_t>(p.lse_elems()) * sizeof(float));
    ev.push_back(launch_dq(MemArg{a.out}));
  } else {
    d = launch_delta(ctx, p, a.out, a.d_out, label);
    ev.push_back(d.event);
    ev.push_back(launch_dq());
  }
  for (const TiledKernel* kv : {static_cast<const TiledKernel*>(&dkdv), dkdv2}) {
    if (!kv) continue;
    ev.push_back(launch_tiles(ctx, *kv, gk, MemArg{a.q}, MemArg{a.k}, MemArg{a.v},
                              MemArg{a.d_out}, MemArg{a.lse}, d.delta, MemArg{a.d_k},
                              MemArg{a.d_v}, p.batch, L0, L1, L2, p.heads, p.heads_kv,
                              p.head_dim, p.head_dim_v, p.scale, nk[0], nk[1], nk[2]));
  }
  if (events) events->insert(events->end(), ev.begin(), ev.end());
}

std::string compile_options(const DeviceInfo& dev, const Problem& p,
                            const std::vector<std::pair<std::string, int>>& defines) {
  std::ostringstream o;
  // Standard: the kernels are OpenCL C 1.2 (the portable variants use nothing newer).
  o << "-cl-std=CL1.2";
  o << " -DRANK=" << p.rank << " -DDTYPE=" << static_cast<int>(p.dtype);
  for (int a = 0; a < 3; ++a) {
    const Axis& ax = p.axis[a];
    o << " -DK" << a << "=" << ax.kernel << " -DS" << a << "=" << ax.stride << " -DDIL" << a << "="
      << ax.dilation << " -DCAUSAL" << a << "=" << (ax.causal ? 1 : 0);
  }
  for (const auto& d : defines) o << " -D" << d.first << "=" << d.second;
  // Vendor quirks, each named:
  // - NVIDIA: no cl_khr_fp16, so f16 goes through vload_half/vstore_half (nothing to add);
  //   with OPENNA_BUILD_LOG=1 ask for ptxas statistics (registers, spills) in the build log.
  if (dev.is_nvidia()) {
    const char* log_env = std::getenv("OPENNA_BUILD_LOG");
    if (log_env != nullptr && std::string(log_env) == "1") o << " -cl-nv-verbose";
  }
  return o.str();
}

}  // namespace openna
