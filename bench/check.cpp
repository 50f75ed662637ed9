// Checks against the host reference (see check.hpp).
#include "check.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "common.hpp"
#include "core/errors.hpp"
#include "testing/na_case.hpp"
#include "testing/reference.hpp"
#include "testing/runner.hpp"
#include "variants/dispatcher.hpp"

namespace openna::bench {

namespace {

// The reference runs in double on one host core: keep a check to about a second. The budget is
// attended pairs times (head_dim + head_dim_v), i.e. half the forward FLOPs.
constexpr double kCheckBudget = 4e7;
constexpr std::uint64_t kCheckSeed = 20260;

}  // namespace

struct Checker::Ref {
  testing::NaCase c;
  testing::CaseData data;
  testing::RefForward fwd;
  std::optional<testing::RefBackward> bwd;
};

std::string CheckResult::summary() const {
  std::string s = ok ? "ok" : "FAIL";
  if (!error.empty()) return s + " (" + error + ")";
  s += " (";
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    s += (i ? ", " : "") + outputs[i].name + " " +
         (outputs[i].non_finite ? "non-finite" : fmt(outputs[i].rel, 2));
  }
  return s + ")";
}

openna_problem check_problem(const Problem& p, bool* shrunk) {
  openna_problem c = p.to_c();
  *shrunk = false;
  const double cost = static_cast<double>(p.attended_pairs()) * (p.head_dim + p.head_dim_v);
  if (cost <= kCheckBudget) return c;
  *shrunk = true;
  c.batch = 1;
  // Keep grouped-query attention visible: two query heads sharing one key/value head.
  if (p.heads / p.heads_kv > 1) {
    c.heads = 2;
    c.heads_kv = 1;
  } else {
    c.heads = c.heads_kv = 1;
  }
  for (int a = 0; a < p.rank; ++a) {
    const Axis& ax = p.axis[a];
    // Room for both edges and at least one interior run of strided queries in every dilation
    // group, and one extra position so that dilation groups stay uneven.
    const long long want = static_cast<long long>(ax.dilation) * (ax.kernel + 2 * ax.stride) +
                           (ax.dilation > 1 ? 1 : 0);
    c.spatial[a] = static_cast<int>(std::min<long long>(ax.length, want));
  }
  return c;
}

bool inject_error_for(const std::string& family) {
  const char* env = std::getenv("OPENNA_BENCH_INJECT_ERROR");
  if (env == nullptr || *env == '\0' || std::string(env) == "0") return false;
  const std::string v = env;
  return v == "1" || v == "all" || v == family;
}

CheckResult Checker::check(Context& ctx, const Variant& v, const Config& c, const Problem& p,
                           Pass pass, bool strict) {
  CheckResult r;
  try {
    const openna_problem cp = check_problem(p, &r.shrunk);
    const Problem cpn = normalize(&cp);
    r.problem = cpn.describe();
    const std::string unsupported = v.unsupported_reason(cpn, ctx.device(), pass);
    if (!unsupported.empty()) {
      r.error = std::string(v.family()) + " cannot run the check problem: " + unsupported;
      return r;
    }
    Config cfg = c;
    const std::string misfit = v.config_error(cpn, ctx.device(), pass, c);
    if (!misfit.empty()) {
      if (strict) {
        r.error = "configuration " + c.str() + " does not fit the check problem: " + misfit;
        return r;
      }
      cfg = configure(v, ctx.device(), cpn, pass).config;
      r.note = "configuration " + c.str() + " does not fit the check problem (" + misfit +
               "), checked " + cfg.str();
    }
    r.config = cfg.str();

    testing::NaCase nc;
    nc.problem = cp;
    nc.seed = kCheckSeed;
    std::shared_ptr<Ref>& ref = refs_[nc.name()];
    if (!ref) {
      ref = std::make_shared<Ref>();
      ref->c = nc;
      ref->data = testing::make_inputs(nc);
      ref->fwd = testing::reference_forward(cp, ref->data.qd, ref->data.kd, ref->data.vd);
    }
    testing::DeviceCase dc(ctx, ref->c, ref->data);
    Selection sel;
    sel.variant = &v;
    sel.config = cfg;
    sel.config_source = "check";
    sel.name = v.name(cpn, cfg, pass);

    std::vector<std::pair<testing::Output, const std::vector<double>*>> refs;
    testing::Outputs got;
    if (pass == Pass::Forward) {
      got = testing::run_forward(ctx, sel, dc);
      refs = {{testing::Output::Out, &ref->fwd.out}, {testing::Output::Lse, &ref->fwd.lse}};
    } else {
      if (!ref->bwd) {
        ref->bwd = testing::reference_backward(cp, ref->data.qd, ref->data.kd, ref->data.vd,
                                               ref->data.d_outd);
      }
      // The reference's out and lse: the backward is checked on its own, not through a forward.
      testing::upload_forward(ctx, dc, ref->fwd);
      got = testing::run_backward(ctx, sel, dc);
      refs = {{testing::Output::DQ, &ref->bwd->d_q},
              {testing::Output::DK, &ref->bwd->d_k},
              {testing::Output::DV, &ref->bwd->d_v}};
    }
    auto got_of = [&](testing::Output o) -> std::vector<double>& {
      switch (o) {
        case testing::Output::Out:
          return got.out;
        case testing::Output::Lse:
          return got.lse;
        case testing::Output::DQ:
          return got.d_q;
        case testing::Output::DK:
          return got.d_k;
        case testing::Output::DV:
          break;
      }
      return got.d_v;
    };
    if (inject_error_for(v.family())) {
      // Test-only: a deliberately wrong result, to show that the check catches it.
      std::vector<double>& g = got_of(refs.front().first);
      const std::vector<double>& rf = *refs.front().second;
      if (!g.empty()) g[g.size() / 2] += 0.5 * std::max(1.0, std::abs(rf[g.size() / 2]));
    }
    r.ok = true;
    for (const auto& [o, rv] : refs) {
      const double tol = nc.tolerance(o);
      const testing::Comparison cmp = testing::compare(got_of(o), *rv, tol);
      r.outputs.push_back({testing::output_name(o), cmp.rel, tol, cmp.ok, cmp.non_finite});
      r.ok &= cmp.ok;
    }
  } catch (const cl::Error& e) {
    r.ok = false;
    r.error = std::string(e.what()) + " failed: " + cl_error_name(e.err());
  } catch (const std::exception& e) {
    r.ok = false;
    r.error = e.what();
  }
  return r;
}

}  // namespace openna::bench
