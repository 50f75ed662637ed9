// The naive variant: the always-correct baseline (see cl_kernels/na_naive.cl).
#pragma once

#include "variants/variant.hpp"

namespace openna {

class NaiveVariant final : public Variant {
 public:
  const char* family() const override { return "naive"; }
  std::string unsupported_reason(const Problem& p, const DeviceInfo& dev,
                                 Pass pass) const override;
  Config default_config(const Problem& p, const DeviceInfo& dev, Pass pass) const override;
  std::vector<Config> candidates(const Problem& p, const DeviceInfo& dev,
                                 Pass pass) const override;
  std::string config_error(const Problem& p, const DeviceInfo& dev, Pass pass,
                           const Config& c) const override;
  std::string config_suffix(const Problem& p, const Config& c) const override;
  SimResult simulate(const Problem& p, const Config& c) const override;
  void forward(Context& ctx, const Problem& p, const Config& c, const FwdArgs& a,
               Events* events) const override;
  void backward(Context& ctx, const Problem& p, const Config& c, const BwdArgs& a,
                Events* events) const override;
};

}  // namespace openna
