// The naive variant (cl_kernels/na_naive.cl): one work-item per (batch, token, head). Every
// problem SPEC.md allows runs here; it has no tile knobs, only the work-group size.
#include "variants/naive.hpp"

#include "core/errors.hpp"

namespace openna {

namespace {

constexpr const char* kFile = "na_naive.cl";

Geometry flat(std::size_t items, const DeviceInfo& dev, const Config& c) {
  Geometry g;
  g.dims = 1;
  g.local[0] = static_cast<std::size_t>(c.get("WG", 64));
  if (g.local[0] > dev.max_work_group_size) g.local[0] = dev.max_work_group_size;
  g.global[0] = round_up(items, g.local[0]);
  return g;
}

}  // namespace

std::string NaiveVariant::unsupported_reason(const Problem& p, const DeviceInfo&, Pass) const {
  // Private arrays of head_dim floats per work-item: keep them bounded.
  if (p.head_dim > 512 || p.head_dim_v > 512) {
    return "head_dim " + std::to_string(p.head_dim) + "/" + std::to_string(p.head_dim_v) +
           " over the naive variant's limit of 512";
  }
  return "";
}

Config NaiveVariant::default_config(const Problem&, const DeviceInfo& dev, Pass) const {
  Config c;
  c.set("WG", dev.max_work_group_size >= 64 ? 64 : static_cast<int>(dev.max_work_group_size));
  return c;
}

std::vector<Config> NaiveVariant::candidates(const Problem& p, const DeviceInfo& dev,
                                             Pass pass) const {
  std::vector<Config> out;
  for (int wg : {32, 64, 128, 256}) {
    Config c;
    c.set("WG", wg);
    if (config_error(p, dev, pass, c).empty()) out.push_back(c);
  }
  return out;
}

std::string NaiveVariant::config_error(const Problem&, const DeviceInfo& dev, Pass,
                                       const Config& c) const {
  const int wg = c.get("WG", 0);
  if (wg < 1 || static_cast<std::size_t>(wg) > dev.max_work_group_size) {
    return "WG=" + std::to_string(wg) + " outside 1.." + std::to_string(dev.max_work_group_size);
  }
  return "";
}

std::string NaiveVariant::config_suffix(const Problem&, const Config&) const { return ""; }

SimResult NaiveVariant::simulate(const Problem& p, const Config&) const {
  // No tiles: every work-item computes exactly its neighborhood.
  SimResult r;
  r.query_tiles = p.tokens();
  r.useful = static_cast<double>(p.attended_pairs()) / (p.batch * p.heads);
  r.computed = r.useful;
  r.dense_computed = static_cast<double>(p.tokens()) * static_cast<double>(p.tokens());
  r.kv_chunks_per_tile = 0;
  return r;
}

void NaiveVariant::forward(Context& ctx, const Problem& p, const Config& c, const FwdArgs& a,
                           Events* events) const {
  const std::string opts =
      compile_options(ctx.device(), p, {{"HD", p.head_dim}, {"HDV", p.head_dim_v}});
  const std::string label = name(p, c, Pass::Forward);
  cl::Kernel k = ctx.kernel(kFile, opts, "na_naive_fwd", label);
  const Geometry g = flat(static_cast<std::size_t>(p.lse_elems()), ctx.device(), c);
  cl::Event ev = ctx.launch(k, g, MemArg{a.q}, MemArg{a.k}, MemArg{a.v}, MemArg{a.out},
                            MemArg{a.lse}, p.batch, p.axis[0].length, p.axis[1].length,
                            p.axis[2].length, p.heads, p.heads_kv, p.scale);
  if (events) events->push_back(ev);
}

void NaiveVariant::backward(Context& ctx, const Problem& p, const Config& c, const BwdArgs& a,
                            Events* events) const {
  const std::string opts =
      compile_options(ctx.device(), p, {{"HD", p.head_dim}, {"HDV", p.head_dim_v}});
  const std::string label = name(p, c, Pass::Backward);
  cl::Kernel k_delta = ctx.kernel(kFile, opts, "na_naive_delta", label);
  cl::Kernel k_dq = ctx.kernel(kFile, opts, "na_naive_bwd_dq", label);
  cl::Kernel k_dkdv = ctx.kernel(kFile, opts, "na_naive_bwd_dkdv", label);
  const int rows = static_cast<int>(p.lse_elems());
  // Released right after enqueueing: OpenCL keeps it alive until the kernels using it finish.
  cl::Buffer delta = ctx.alloc(static_cast<std::size_t>(rows) * sizeof(float));
  const Geometry g_rows = flat(static_cast<std::size_t>(rows), ctx.device(), c);
  const Geometry g_keys =
      flat(static_cast<std::size_t>(p.batch * p.tokens() * p.heads_kv), ctx.device(), c);
  const int L0 = p.axis[0].length, L1 = p.axis[1].length, L2 = p.axis[2].length;
  cl::Event e1 = ctx.launch(k_delta, g_rows, MemArg{a.out}, MemArg{a.d_out}, delta, rows);
  cl::Event e2 = ctx.launch(k_dq, g_rows, MemArg{a.q}, MemArg{a.k}, MemArg{a.v}, MemArg{a.d_out},
                            MemArg{a.lse}, delta, MemArg{a.d_q}, p.batch, L0, L1, L2, p.heads,
                            p.heads_kv, p.scale);
  cl::Event e3 = ctx.launch(k_dkdv, g_keys, MemArg{a.q}, MemArg{a.k}, MemArg{a.v},
                            MemArg{a.d_out}, MemArg{a.lse}, delta, MemArg{a.d_k}, MemArg{a.d_v},
                            p.batch, L0, L1, L2, p.heads, p.heads_kv, p.scale);
  if (events) {
    events->push_back(e1);
    events->push_back(e2);
    events->push_back(e3);
  }
}

}  // namespace openna
