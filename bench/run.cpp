// `openna-bench run`: every selected device, problem, pass and variant timed by profiling events,
// with the naive and dense baselines, the simulator's attainable speedup and, with --check, the
// comparison against the host reference. Rows are printed once all are measured.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "core/errors.hpp"
#include "presets.hpp"
#include "report.hpp"
#include "testing/na_case.hpp"
#include "variants/dispatcher.hpp"

namespace openna::bench {

namespace {

constexpr std::uint64_t kTimingSeed = 7;

std::string error_text(const std::exception& e) {
  if (const auto* ce = dynamic_cast<const cl::Error*>(&e)) {
    return std::string(ce->what()) + " failed: " + cl_error_name(ce->err());
  }
  return e.what();
}

std::string registered_list() {
  std::string s;
  for (const Variant* v : variant_registry()) s += std::string(s.empty() ? "" : ", ") + v->family();
  return s;
}

// The variants a request names for this problem and pass, with the dispatcher's configuration
// of each; a request that cannot be served becomes an error row.
struct Pick {
  Selection sel;
  std::string family;
  std::string error;
};

// `config`: the user's configuration for the one named family ("" for the dispatcher's).
std::vector<Pick> pick_variants(const std::vector<std::string>& wanted, const DeviceInfo& dev,
                                const Problem& p, Pass pass, const std::string& config,
                                std::vector<std::string>& notes) {
  std::vector<Pick> out;
  for (const std::string& w : wanted) {
    if (w == "auto") {
      Pick pk;
      pk.family = "auto";
      try {
        pk.sel = select_variant(dev, p, pass, "auto");
        pk.family = pk.sel.variant->family();
      } catch (const Error& e) {
        pk.error = e.what();
      }
      out.push_back(pk);
    } else if (w == "all") {
      std::string reasons;
      for (const Variant* v : variant_registry()) {
        const std::string why = v->unsupported_reason(p, dev, pass);
        if (why.empty()) {
          out.push_back({configure(*v, dev, p, pass), v->family(), ""});
        } else {
          reasons += std::string("; ") + v->family() + ": " + why;
          notes.push_back(std::string(v->family()) + " skipped for " + pass_name(pass) + " " +
                          p.describe() + " on " + dev.name + ": " + why);
        }
      }
      if (out.empty()) out.push_back({{}, "all", "no registered variant can run it" + reasons});
    } else {
      Pick pk;
      pk.family = w;
      const Variant* v = find_variant(w);
      if (!v) {
        pk.error = "variant \"" + w +
                   "\" is not registered in this build (registered: " + registered_list() + ")";
      } else if (const std::string why = v->unsupported_reason(p, dev, pass); !why.empty()) {
        pk.error = w + " cannot run it: " + why;
      } else if (config.empty()) {
        pk.sel = configure(*v, dev, p, pass);
      } else {
        const Config c = Config::parse(config);
        if (const std::string bad = v->config_error(p, dev, pass, c); !bad.empty()) {
          pk.error = "--config " + config + ": " + bad;
        } else {
          pk.sel.variant = v;
          pk.sel.config = c;
          pk.sel.config_source = "given";
          pk.sel.name = v->name(p, c, pass);
        }
      }
      out.push_back(pk);
    }
  }
  return out;
}

double flops_of(const openna_problem& p, Pass pass) {
  testing::NaCase c;
  c.problem = p;
  return pass == Pass::Forward ? c.flops_forward() : c.flops_backward();
}

}  // namespace

int cmd_run(const Options& o) {
  const std::vector<DeviceInfo> devs = resolve_devices(o.device);
  // Every problem is resolved (and validated) before any device work, so a usage error costs
  // nothing.
  std::vector<std::vector<NamedProblem>> problems;
  std::size_t total = 0;
  const std::size_t per_problem =
      o.passes.size() * (o.variants[0] == "all" ? variant_registry().size() : o.variants.size());
  for (const DeviceInfo& d : devs) {
    problems.push_back(resolve_problems(o.problem, d.is_cpu() && !d.is_gpu()));
    total += problems.back().size() * per_problem;
  }

  Progress progress(o.quiet);
  Checker checker;
  std::vector<DeviceSummary> summaries;
  std::vector<Row> rows;
  std::vector<std::string> notes;  // families that --variant all left out, and why
  bool failed = false;
  std::size_t step = 0;

  for (std::size_t di = 0; di < devs.size(); ++di) {
    const DeviceInfo& dev = devs[di];
    const std::string index =
        std::to_string(dev.platform_index) + ":" + std::to_string(dev.device_index);
    DeviceSummary ds{index, dev.label(), dev.name, dev.driver_version, {}};
    if (o.probe) ds.peak = device_peak(dev, o.reprobe, progress);
    summaries.push_back(ds);
    auto base_row = [&](const NamedProblem& np, const Problem& p, Pass pass) {
      Row r;
      r.device_index = index;
      r.device = dev.name;
      r.problem_label = np.label;
      r.problem = p.describe();
      r.dtype = dtype_name(p.dtype);
      r.pass = pass_name(pass);
      return r;
    };

    // A failed kernel can leave an OpenCL context unusable (NVIDIA reports every later call as
    // CL_OUT_OF_RESOURCES), so a row that fails gets a fresh context and buffers for the next.
    std::unique_ptr<Context> ctx;
    std::unique_ptr<Buffers> buf;
    std::string device_error;
    auto open = [&](const Problem& p, bool new_context) {
      device_error.clear();
      buf.reset();
      try {
        if (new_context || !ctx) ctx = std::make_unique<Context>(dev);
      } catch (const std::exception& e) {
        ctx.reset();
        device_error = "cannot create a context: " + error_text(e);
        return;
      }
      try {
        buf = std::make_unique<Buffers>(make_buffers(*ctx, p, kTimingSeed));
      } catch (const std::exception& e) {
        device_error = "cannot allocate the problem's buffers: " + error_text(e);
      }
    };

    for (const NamedProblem& np : problems[di]) {
      const Problem p = normalize(&np.problem);
      const openna_problem dense_c = dense_of(np.problem);
      const Problem dense = normalize(&dense_c);
      const bool is_dense = dense.describe() == p.describe();
      open(p, /*new_context=*/false);
      BaselinePolicy policy;
      policy.enabled = o.baselines;
      policy.limit_ms = o.baseline_limit_ms;
      policy.warmup = o.warmup;
      policy.repeat = o.repeat;
      policy.peak_gflops = ds.peak.ok ? ds.peak.fma_gflops : 0;

      for (Pass pass : o.passes) {
        const double flops = flops_of(np.problem, pass);
        std::vector<Pick> picks = pick_variants(o.variants, dev, p, pass, o.config, notes);
        std::optional<Timing> naive;  // measured once per problem and pass
        // The naive variant's own row, when there is one, is timed first and then serves as the
        // other rows' baseline; rows keep the order of the picks.
        std::vector<std::size_t> order(picks.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::stable_partition(order.begin(), order.end(),
                              [&](std::size_t i) { return picks[i].family == "naive"; });
        std::vector<Row> pass_rows(picks.size());
        for (std::size_t idx : order) {
          const Pick& pk = picks[idx];
          Row& r = pass_rows[idx];
          ++step;
          r = base_row(np, p, pass);
          r.family = pk.family;
          r.flops = flops;
          if (!pk.error.empty() || !device_error.empty()) {
            r.error = pk.error.empty() ? device_error : pk.error;
            failed = true;
            continue;
          }
          const Variant& v = *pk.sel.variant;
          r.variant = pk.sel.name;
          r.config = pk.sel.config.str();
          r.config_source = pk.sel.config_source;
          const std::string what = "[" + std::to_string(step) + "/" + std::to_string(total) + "] " +
                                   index + " " + np.label + " " + r.pass + " " + v.family();
          if (o.check) {
            progress.update(what + ": checking");
            r.check = checker.check(*ctx, v, pk.sel.config, p, pass);
            failed |= !r.check->ok;
            if (!r.check->error.empty()) open(p, /*new_context=*/true);
            if (!device_error.empty()) {
              r.error = device_error;
              continue;
            }
          }
          progress.update(what + ": timing");
          r.time = time_variant(*ctx, v, pk.sel.config, p, pass, *buf, o.warmup, o.repeat);
          if (!r.time.ok) {
            r.error = r.time.error;
            failed = true;
            open(p, /*new_context=*/true);
            continue;
          }
          const double sec = r.time.ms.median * 1e-3;
          if (sec > 0) {
            r.tflops = flops / sec * 1e-12;
            if (ds.peak.ok) r.peak_fraction = flops / sec / (ds.peak.fma_gflops * 1e9);
          }
          try {
            const SimResult sim = v.simulate(p, pk.sel.config);
            r.sim_speedup = sim.attainable_speedup();
            r.sim_density = sim.density();
          } catch (const std::exception&) {
            // The simulator is advisory: a variant without one leaves the column empty.
          }
          // Baselines: the naive variant on the problem (once per problem and pass), and this
          // variant on dense attention over the same grid.
          if (std::string(v.family()) == "naive") {
            r.naive = r.time;
            if (!naive) naive = r.time;
          } else {
            if (!naive && !buf) {
              naive = Timing{};
              naive->error = device_error;
            } else if (!naive) {
              progress.update(what + ": naive baseline");
              if (const Variant* nv = find_variant("naive")) {
                naive = time_baseline(*ctx, *nv, p, pass, *buf, policy, flops);
                if (naive->broke) open(p, /*new_context=*/true);
              } else {
                naive = Timing{};
                naive->error = "the naive variant is not registered";
              }
            }
            r.naive = *naive;
          }
          if (is_dense) {
            r.dense = r.time;
          } else if (!buf) {
            r.dense.error = device_error;
          } else {
            progress.update(what + ": dense baseline");
            r.dense = time_baseline(*ctx, v, dense, pass, *buf, policy, flops_of(dense_c, pass));
            if (r.dense.broke) open(p, /*new_context=*/true);
          }
          if (r.naive.ok && r.naive.ms.median > 0)
            r.vs_naive = r.naive.ms.median / r.time.ms.median;
          if (r.dense.ok && r.dense.ms.median > 0)
            r.vs_dense = r.dense.ms.median / r.time.ms.median;
        }
        rows.insert(rows.end(), pass_rows.begin(), pass_rows.end());
      }
    }
  }
  progress.done();

  switch (o.format) {
    case Format::Table:
      print_table(stdout, summaries, rows, notes);
      break;
    case Format::Json:
      print_json(stdout, summaries, rows, notes, !failed);
      break;
    case Format::Csv:
      print_csv(stdout, rows);
      break;
  }
  return failed ? kExitFailed : kExitOk;
}

}  // namespace openna::bench
