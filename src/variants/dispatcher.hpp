// The dispatcher: which variant and configuration runs a problem on a context. OPENNA_VARIANT
// forces a family (a forced family that cannot run the problem is Unsupported, never a silent
// fallback); otherwise the first family of the registry that supports the problem runs, with
// its tuned configuration when the tuning database has one, else its built-in default.
#pragma once

#include <string>

#include "variants/variant.hpp"

namespace openna {

struct Selection {
  const Variant* variant = nullptr;
  Config config;
  std::string config_source;  // "default", or the tuning database level that matched
  std::string name;           // variant name derived from its key
};

// `forced`: a family name, or "" / "auto" to let the dispatcher choose (then OPENNA_VARIANT is
// consulted). Throws InvalidArgument for an unknown family and Unsupported when the forced
// family (or every family) cannot run the problem.
Selection select_variant(const DeviceInfo& dev, const Problem& p, Pass pass,
                         const std::string& forced = "");
// The same after every variant's prepare on the context (the mma variant's probes): what the
// library's entry points use.
Selection select_variant(Context& ctx, const Problem& p, Pass pass,
                         const std::string& forced = "");

// The configuration the dispatcher would use for a given variant (tuned, else default).
Selection configure(const Variant& v, const DeviceInfo& dev, const Problem& p, Pass pass);

}  // namespace openna
