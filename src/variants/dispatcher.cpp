// Variant selection (see dispatcher.hpp) and the registry itself.
#include "variants/dispatcher.hpp"

#include <cstdlib>

#include "core/errors.hpp"
#include "runtime/tuning_db.hpp"
#include "variants/fused.hpp"
#include "variants/mma.hpp"
#include "variants/naive.hpp"

namespace openna {

const std::vector<const Variant*>& variant_registry() {
  static const MmaVariant mma;
  static const FusedVariant fused;
  static const NaiveVariant naive;
  static const std::vector<const Variant*> all = {&mma, &fused, &naive};
  return all;
}

const Variant* find_variant(const std::string& family) {
  for (const Variant* v : variant_registry())
    if (family == v->family()) return v;
  return nullptr;
}

Selection configure(const Variant& v, const DeviceInfo& dev, const Problem& p, Pass pass) {
  Selection s;
  s.variant = &v;
  s.config = v.default_config(p, dev, pass);
  s.config_source = "default";
  if (auto tuned = lookup_tuned(dev, v.tuning_key(p, pass))) {
    // A stale or hand-edited entry that does not fit is ignored, not trusted.
    try {
      Config c = Config::parse(tuned->config);
      if (v.config_error(p, dev, pass, c).empty()) {
        s.config = c;
        s.config_source = "tuned:" + tuned->source;
      }
    } catch (const InvalidArgument&) {
    }
  }
  s.name = v.name(p, s.config, pass);
  return s;
}

Selection select_variant(const DeviceInfo& dev, const Problem& p, Pass pass,
                         const std::string& forced_in) {
  std::string forced = forced_in;
  std::string origin = "variant";
  if (forced.empty() || forced == "auto") {
    const char* env = std::getenv("OPENNA_VARIANT");
    forced = env ? env : "";
    origin = "OPENNA_VARIANT";
  }
  if (!forced.empty() && forced != "auto") {
    const Variant* v = find_variant(forced);
    if (!v) {
      std::string known;
      for (const Variant* r : variant_registry()) known += std::string(known.empty() ? "" : ", ") + r->family();
      throw InvalidArgument(origin + "=" + forced + ": unknown variant (known: " + known +
                            ", auto)");
    }
    const std::string why = v->unsupported_reason(p, dev, pass);
    if (!why.empty()) {
      throw Unsupported(origin + "=" + forced + " cannot run " + p.describe() + " (" +
                        pass_name(pass) + ") on " + dev.name + ": " + why);
    }
    return configure(*v, dev, p, pass);
  }
  std::string reasons;
  for (const Variant* v : variant_registry()) {
    const std::string why = v->unsupported_reason(p, dev, pass);
    if (why.empty()) return configure(*v, dev, p, pass);
    reasons += std::string("; ") + v->family() + ": " + why;
  }
  throw Unsupported("no variant can run " + p.describe() + " on " + dev.name + reasons);
}

Selection select_variant(Context& ctx, const Problem& p, Pass pass, const std::string& forced) {
  for (const Variant* v : variant_registry()) v->prepare(ctx, p);
  return select_variant(ctx.device(), p, pass, forced);
}

}  // namespace openna
