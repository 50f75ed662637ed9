// Presets and problem resolution (see presets.hpp). The preset table is issue 3's list, f16 and
// batch 1 unless it says otherwise.
#include "presets.hpp"

#include <utility>

#include "core/errors.hpp"
#include "core/problem.hpp"

namespace openna::bench {

namespace {

openna_problem make(int rank, std::vector<int> shape, std::vector<int> kernel, int heads,
                    int head_dim, openna_dtype dtype) {
  openna_problem p{};
  p.dtype = dtype;
  p.rank = rank;
  p.batch = 1;
  p.heads = heads;
  p.heads_kv = heads;
  p.head_dim = head_dim;
  p.head_dim_v = head_dim;
  for (int a = 0; a < 3; ++a) {
    p.spatial[a] = a < rank ? shape[a] : 1;
    p.kernel_size[a] = a < rank ? kernel[a] : 1;
    p.stride[a] = 1;
    p.dilation[a] = 1;
  }
  return p;
}

std::vector<Preset> build_presets() {
  std::vector<Preset> v;
  v.push_back({"flux-2d", "2-D 64x64, kernel 17x17, 24 heads, head dim 128, f16",
               make(2, {64, 64}, {17, 17}, 24, 128, OPENNA_F16), true});
  v.push_back({"vision-2d", "2-D 128x128, kernel 13x13, 16 heads, head dim 64, f16",
               make(2, {128, 128}, {13, 13}, 16, 64, OPENNA_F16), true});
  openna_problem dil = make(2, {128, 128}, {13, 13}, 16, 64, OPENNA_F16);
  dil.dilation[0] = dil.dilation[1] = 4;
  v.push_back({"vision-2d-dilated", "vision-2d with dilation 4x4", dil, true});
  v.push_back({"video-3d", "3-D 16x32x32, kernel 8x16x16, 24 heads, head dim 128, f16",
               make(3, {16, 32, 32}, {8, 16, 16}, 24, 128, OPENNA_F16), true});
  openna_problem causal = make(1, {32768}, {2048}, 16, 64, OPENNA_F16);
  causal.is_causal[0] = 1;
  v.push_back({"long-1d-causal", "1-D 32768, kernel 2048, causal, 16 heads, head dim 64, f16",
               causal, true});
  v.push_back({"small-cpu", "2-D 32x32, kernel 7x7, 4 heads, head dim 32, f32 (CPU default)",
               make(2, {32, 32}, {7, 7}, 4, 32, OPENNA_F32), false});
  return v;
}

// normalize() names fields of openna_problem; the user typed flags.
std::string flag_names(std::string msg) {
  static const std::pair<const char*, const char*> kMap[] = {
      {"problem.spatial", "--shape"},         {"problem.kernel_size", "--kernel"},
      {"problem.stride", "--stride"},         {"problem.dilation", "--dilation"},
      {"problem.is_causal", "--causal"},      {"problem.heads_kv", "--heads-kv"},
      {"problem.head_dim_v", "--head-dim-v"}, {"problem.head_dim", "--head-dim"},
      {"problem.heads", "--heads"},           {"problem.batch", "--batch"},
      {"problem.scale", "--scale"},           {"problem.dtype", "--dtype"},
      {"problem.rank", "rank (--shape)"}};
  for (const auto& [from, to] : kMap) {
    for (auto pos = msg.find(from); pos != std::string::npos; pos = msg.find(from, pos)) {
      msg.replace(pos, std::string(from).size(), to);
      pos += std::string(to).size();
    }
  }
  return msg;
}

void set_axes(const char* flag, const std::vector<int>& given, int rank, int* field) {
  if (given.empty()) return;
  if (given.size() != 1 && static_cast<int>(given.size()) != rank) {
    throw CliError(std::string(flag) + " has " + std::to_string(given.size()) +
                   " values for a rank-" + std::to_string(rank) +
                   " problem (give 1 value for every axis, or " + std::to_string(rank) + ")");
  }
  for (int a = 0; a < rank; ++a) field[a] = given.size() == 1 ? given[0] : given[a];
}

openna_problem apply(openna_problem p, const ProblemFlags& f, const std::string& label) {
  if (!f.shape.empty()) {
    const int rank = static_cast<int>(f.shape.size());
    if (rank != p.rank && f.kernel.empty()) {
      throw CliError("--shape gives a rank-" + std::to_string(rank) + " problem, " + label +
                     " is rank " + std::to_string(p.rank) + ": give --kernel too");
    }
    if (rank != p.rank) {
      // The preset's per-axis options do not carry over to another rank.
      for (int a = 0; a < 3; ++a) {
        p.stride[a] = p.dilation[a] = 1;
        p.is_causal[a] = 0;
      }
    }
    p.rank = rank;
    for (int a = 0; a < 3; ++a) p.spatial[a] = a < rank ? f.shape[a] : 1;
  }
  set_axes("--kernel", f.kernel, p.rank, p.kernel_size);
  set_axes("--stride", f.stride, p.rank, p.stride);
  set_axes("--dilation", f.dilation, p.rank, p.dilation);
  set_axes("--causal", f.causal, p.rank, p.is_causal);
  if (f.batch) p.batch = *f.batch;
  if (f.heads) {
    p.heads = *f.heads;
    if (!f.heads_kv) p.heads_kv = *f.heads;  // a preset's heads_kv == heads follows --heads
  }
  if (f.heads_kv) p.heads_kv = *f.heads_kv;
  if (f.head_dim) {
    if (!f.head_dim_v && p.head_dim_v == p.head_dim) p.head_dim_v = *f.head_dim;
    p.head_dim = *f.head_dim;
  }
  if (f.head_dim_v) p.head_dim_v = *f.head_dim_v;
  if (f.dtype) p.dtype = *f.dtype;
  if (f.scale) p.scale = *f.scale;
  try {
    (void)normalize(&p);
  } catch (const Error& e) {
    throw CliError(label + ": " + flag_names(e.what()));
  }
  return p;
}

}  // namespace

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = build_presets();
  return all;
}

const Preset* find_preset(const std::string& name) {
  for (const Preset& p : presets())
    if (name == p.name) return &p;
  return nullptr;
}

std::vector<NamedProblem> resolve_problems(const ProblemFlags& f, bool cpu) {
  std::vector<NamedProblem> out;
  if (!f.preset.empty()) {
    const Preset* p = find_preset(f.preset);
    if (!p) throw CliError("unknown preset \"" + f.preset + "\"");
    out.push_back({p->name, apply(p->problem, f, p->name)});
    return out;
  }
  if (!f.shape.empty()) {
    if (f.kernel.empty()) throw CliError("--shape needs --kernel (or use --preset)");
    // A problem from flags alone: batch 1, 4 heads, head dim 64, f16 on GPUs and f32 on CPUs.
    const int rank = static_cast<int>(f.shape.size());
    openna_problem base =
        make(rank, f.shape, std::vector<int>(3, 1), 4, 64, cpu ? OPENNA_F32 : OPENNA_F16);
    out.push_back({"custom", apply(base, f, "custom problem")});
    return out;
  }
  if (f.any_axis_flag()) {
    throw CliError("--kernel, --stride, --dilation and --causal need --shape or --preset");
  }
  for (const Preset& p : presets()) {
    if (p.gpu_default != cpu) out.push_back({p.name, apply(p.problem, f, p.name)});
  }
  return out;
}

openna_problem dense_of(const openna_problem& p) {
  openna_problem d = p;
  for (int a = 0; a < 3; ++a) {
    d.kernel_size[a] = a < p.rank ? p.spatial[a] : 1;
    d.stride[a] = 1;
    d.dilation[a] = 1;
    d.is_causal[a] = 0;
  }
  return d;
}

}  // namespace openna::bench
