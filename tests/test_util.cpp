// Test helpers (see test_util.hpp).
#include "test_util.hpp"

#include <cmath>
#include <cstring>

#include "core/problem.hpp"
#include "testing/reference.hpp"

namespace openna::testing {

Context& test_context() {
  static Context ctx(select_device(""));
  return ctx;
}

std::string unsupported(const NaCase& c, const std::string& family, Pass pass) {
  const Variant* v = find_variant(family);
  if (!v) return "unknown variant " + family;
  return v->unsupported_reason(normalize(&c.problem), test_context().device(), pass);
}

NaCase make_case(int rank, std::vector<int> L, std::vector<int> K, std::vector<int> S,
                 std::vector<int> D, std::vector<int> C, int heads, int heads_kv, int hd, int hdv,
                 openna_dtype dt, int batch, std::uint64_t seed) {
  NaCase c;
  c.seed = seed;
  openna_problem& p = c.problem;
  p.rank = rank;
  p.batch = batch;
  p.heads = heads;
  p.heads_kv = heads_kv;
  p.head_dim = hd;
  p.head_dim_v = hdv;
  p.dtype = dt;
  for (int a = 0; a < rank; ++a) {
    p.spatial[a] = L[a];
    p.kernel_size[a] = K[a];
    p.stride[a] = S[a];
    p.dilation[a] = D[a];
    p.is_causal[a] = C[a];
  }
  return c;
}

std::vector<NaCase> random_cases(std::uint64_t seed, int n, const RandomCaseLimits& lim) {
  std::mt19937_64 rng(seed);
  std::vector<NaCase> cases;
  for (int i = 0; i < n; ++i) cases.push_back(random_case(rng, lim));
  return cases;
}

Config gpu_config(const NaCase& c, const std::string& family, Pass pass) {
  DeviceInfo gpu = test_context().device();
  gpu.type = CL_DEVICE_TYPE_GPU;
  gpu.local_mem = 48 * 1024;
  gpu.max_work_group_size = 1024;
  return find_variant(family)->default_config(normalize(&c.problem), gpu, pass);
}

namespace {

Selection selection(const NaCase& c, const std::string& family, Pass pass, const Config* config) {
  const Problem p = normalize(&c.problem);
  Selection s = select_variant(test_context().device(), p, pass, family);
  if (config) {
    s.config = *config;
    s.name = s.variant->name(p, *config, pass);
  }
  return s;
}

bool expect_close(const NaCase& c, const std::string& what, const std::vector<double>& got,
                  const std::vector<double>& ref, Output o, const std::string& variant) {
  const Comparison cmp = compare(got, ref, c.tolerance(o));
  EXPECT_TRUE(cmp.ok) << variant << " on " << c.name() << " (seed " << c.seed
                      << "): " << cmp.describe(what.c_str()) << ", tolerance "
                      << c.tolerance(o);
  return cmp.ok;
}

}  // namespace

bool check_forward(const NaCase& c, const std::string& family, const Config* config) {
  Context& ctx = test_context();
  const Selection s = selection(c, family, Pass::Forward, config);
  const CaseData data = make_inputs(c);
  DeviceCase dc(ctx, c, data);
  const Outputs got = run_forward(ctx, s, dc);
  const RefForward ref = reference_forward(c.problem, data.qd, data.kd, data.vd);
  bool ok = expect_close(c, "out", got.out, ref.out, Output::Out, s.name);
  ok &= expect_close(c, "lse", got.lse, ref.lse, Output::Lse, s.name);
  return ok;
}

bool check_backward(const NaCase& c, const std::string& family, const Config* config) {
  Context& ctx = test_context();
  const Selection s = selection(c, family, Pass::Backward, config);
  const CaseData data = make_inputs(c);
  DeviceCase dc(ctx, c, data);
  const RefForward fwd = reference_forward(c.problem, data.qd, data.kd, data.vd);
  upload_forward(ctx, dc, fwd);
  const Outputs got = run_backward(ctx, s, dc);
  const RefBackward ref = reference_backward(c.problem, data.qd, data.kd, data.vd, data.d_outd);
  bool ok = expect_close(c, "d_q", got.d_q, ref.d_q, Output::DQ, s.name);
  ok &= expect_close(c, "d_k", got.d_k, ref.d_k, Output::DK, s.name);
  ok &= expect_close(c, "d_v", got.d_v, ref.d_v, Output::DV, s.name);
  return ok;
}

void expect_backward_repeatable(const NaCase& c, const Selection& s, const std::string& what) {
  Context& ctx = test_context();
  const CaseData data = make_inputs(c);
  DeviceCase dc(ctx, c, data);
  upload_forward(ctx, dc, reference_forward(c.problem, data.qd, data.kd, data.vd));
  const Outputs a = run_backward(ctx, s, dc);
  dc.poison_outputs(ctx);  // out and lse too: upload them again
  upload_forward(ctx, dc, reference_forward(c.problem, data.qd, data.kd, data.vd));
  const Outputs b = run_backward(ctx, s, dc);
  const auto finite = [](const std::vector<double>& x) {
    for (double v : x)
      if (!std::isfinite(v)) return false;
    return true;
  };
  EXPECT_TRUE(finite(a.d_q) && finite(a.d_k) && finite(a.d_v)) << what;
  const auto same = [](const std::vector<double>& x, const std::vector<double>& y) {
    return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(double)) == 0;
  };
  EXPECT_TRUE(same(a.d_q, b.d_q)) << what << ": d_q differs between two runs";
  EXPECT_TRUE(same(a.d_k, b.d_k)) << what << ": d_k differs between two runs";
  EXPECT_TRUE(same(a.d_v, b.d_v)) << what << ": d_v differs between two runs";
}

}  // namespace openna::testing
