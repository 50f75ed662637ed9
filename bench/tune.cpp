// `openna-bench tune`: for each selected device, problem, pass and variant, every candidate
// configuration is verified against the host reference, then timed; the fastest verified one
// goes to the tuning database (runtime/tuning_db.hpp) that the dispatcher reads. --dry-run lists
// the candidates and the dispatcher's current pick without running anything.
#include <cstdio>
#include <memory>

#include "check.hpp"
#include "commands.hpp"
#include "core/errors.hpp"
#include "measure.hpp"
#include "presets.hpp"
#include "runtime/tuning_db.hpp"
#include "variants/dispatcher.hpp"

namespace openna::bench {

namespace {

constexpr std::uint64_t kTuneSeed = 11;

// The variants to tune: the dispatcher's family ("auto"), every one that can run the problem
// ("all"), or the named ones. Errors (unknown, unsupported) are printed and counted.
std::vector<const Variant*> tune_targets(const std::vector<std::string>& wanted,
                                         const DeviceInfo& dev, const Problem& p, Pass pass,
                                         bool& failed) {
  std::vector<const Variant*> out;
  for (const std::string& w : wanted) {
    if (w == "auto") {
      try {
        out.push_back(select_variant(dev, p, pass, "auto").variant);
      } catch (const Error& e) {
        std::printf("  error: %s\n", e.what());
        failed = true;
      }
    } else if (w == "all") {
      for (const Variant* v : variant_registry())
        if (v->unsupported_reason(p, dev, pass).empty()) out.push_back(v);
    } else if (const Variant* v = find_variant(w); v == nullptr) {
      std::printf("  error: variant \"%s\" is not registered in this build\n", w.c_str());
      failed = true;
    } else if (const std::string why = v->unsupported_reason(p, dev, pass); !why.empty()) {
      std::printf("  error: %s cannot run it: %s\n", w.c_str(), why.c_str());
      failed = true;
    } else {
      out.push_back(v);
    }
  }
  return out;
}

}  // namespace

int cmd_tune(const Options& o) {
  const std::vector<DeviceInfo> devs = resolve_devices(o.device);
  std::vector<std::vector<NamedProblem>> problems;
  for (const DeviceInfo& d : devs)
    problems.push_back(resolve_problems(o.problem, d.is_cpu() && !d.is_gpu()));
  const std::string db = tuning_db_path();
  if (db.empty() && !o.dry_run) {
    throw CliError("no tuning database path: set OPENNA_TUNING_DB or OPENNA_CACHE_DIR");
  }
  Progress progress(o.quiet);
  Checker checker;
  bool failed = false;

  for (std::size_t di = 0; di < devs.size(); ++di) {
    const DeviceInfo& dev = devs[di];
    std::unique_ptr<Context> ctx;
    for (const NamedProblem& np : problems[di]) {
      const Problem p = normalize(&np.problem);
      std::unique_ptr<Buffers> buf;
      for (Pass pass : o.passes) {
        std::printf("tune %s on %s\n  problem %s (%s)\n", pass_name(pass), dev.label().c_str(),
                    p.describe().c_str(), np.label.c_str());
        for (const Variant* v : tune_targets(o.variants, dev, p, pass, failed)) {
          const std::vector<Config> cands = v->candidates(p, dev, pass);
          const Selection now = configure(*v, dev, p, pass);
          std::printf("  variant %s, tuning key %s\n", v->family(), v->tuning_key(p, pass).c_str());
          std::printf("  database %s\n", db.empty() ? "(none)" : db.c_str());
          std::printf("  dispatcher's pick now: %s (%s) -> %s\n", now.config.str().c_str(),
                      now.config_source.c_str(), now.name.c_str());
          std::printf("  %zu candidate configuration%s%s\n", cands.size(),
                      cands.size() == 1 ? "" : "s",
                      o.dry_run ? " would be verified and timed:" : ":");
          if (o.dry_run) {
            for (std::size_t i = 0; i < cands.size(); ++i) {
              const std::string err = v->config_error(p, dev, pass, cands[i]);
              std::printf("    %2zu  %s  %s%s\n", i + 1, cands[i].str().c_str(),
                          v->name(p, cands[i], pass).c_str(),
                          err.empty() ? "" : ("  (invalid: " + err + ")").c_str());
            }
            continue;
          }
          if (cands.empty()) {
            std::printf("  error: no candidates\n");
            failed = true;
            continue;
          }
          // A failed candidate can leave the context unusable (NVIDIA answers every later call
          // with CL_OUT_OF_RESOURCES): the next candidate then gets a fresh one.
          auto reopen = [&]() -> bool {
            try {
              if (!ctx) ctx = std::make_unique<Context>(dev);
              if (!buf) buf = std::make_unique<Buffers>(make_buffers(*ctx, p, kTuneSeed));
              return true;
            } catch (const std::exception& e) {
              std::printf("  error: %s\n", e.what());
              failed = true;
              return false;
            }
          };
          auto discard = [&] {
            buf.reset();
            ctx.reset();
          };
          if (!reopen()) continue;
          int best = -1;
          double best_ms = 0;
          for (std::size_t i = 0; i < cands.size(); ++i) {
            const Config& c = cands[i];
            const std::string tag = std::to_string(i + 1) + "/" + std::to_string(cands.size());
            progress.update("tune " + std::string(v->family()) + " " + pass_name(pass) +
                            ": candidate " + tag + " " + c.str() + ": checking");
            if (const std::string err = v->config_error(p, dev, pass, c); !err.empty()) {
              progress.done();
              std::printf("    %2zu  %s  invalid: %s\n", i + 1, c.str().c_str(), err.c_str());
              continue;
            }
            if (!reopen()) break;
            const CheckResult chk = checker.check(*ctx, *v, c, p, pass, /*strict=*/true);
            if (!chk.error.empty()) discard();
            if (!chk.ok) {
              progress.done();
              std::printf("    %2zu  %s  rejected: check %s on %s\n", i + 1, c.str().c_str(),
                          chk.summary().c_str(), chk.problem.c_str());
              continue;
            }
            progress.update("tune " + std::string(v->family()) + " " + pass_name(pass) +
                            ": candidate " + tag + " " + c.str() + ": timing");
            if (!reopen()) break;
            const Timing t = time_variant(*ctx, *v, c, p, pass, *buf, o.warmup, o.repeat);
            progress.done();
            if (t.broke) discard();
            if (!t.ok) {
              std::printf("    %2zu  %s  failed: %s\n", i + 1, c.str().c_str(), t.error.c_str());
              continue;
            }
            std::printf("    %2zu  %s  median %s ms (min %s, max %s), check %s%s\n", i + 1,
                        c.str().c_str(), fmt(t.ms.median, 4).c_str(), fmt(t.ms.min, 4).c_str(),
                        fmt(t.ms.max, 4).c_str(), chk.summary().c_str(),
                        chk.shrunk ? " (shrunken problem)" : "");
            if (best < 0 || t.ms.median < best_ms) {
              best = static_cast<int>(i);
              best_ms = t.ms.median;
            }
          }
          if (best < 0) {
            std::printf("  error: no candidate passed its check and ran\n");
            failed = true;
            continue;
          }
          TuneRecord rec;
          rec.key = v->tuning_key(p, pass);
          rec.config = cands[static_cast<std::size_t>(best)].str();
          rec.time_ms = best_ms;
          rec.problem = p.describe();
          store_tuned(dev, rec, db);
          const Selection after = configure(*v, dev, p, pass);
          std::printf("  best: %s, median %s ms; stored in %s\n", rec.config.c_str(),
                      fmt(best_ms, 4).c_str(), db.c_str());
          std::printf("  dispatcher's pick now: %s (%s) -> %s\n", after.config.str().c_str(),
                      after.config_source.c_str(), after.name.c_str());
        }
      }
    }
  }
  return failed ? kExitFailed : kExitOk;
}

}  // namespace openna::bench
