// The fused variant: flash-attention-style tiled kernels, portable OpenCL C 1.2
// (cl_kernels/na_fused_fwd.cl). Query tiles are boxes on the grid; see the kernel file.
#pragma once

#include "variants/variant.hpp"

namespace openna {

class FusedVariant final : public Variant {
 public:
  const char* family() const override { return "fused"; }
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

// Head-dim buckets of the tiled variants: the smallest of 16, 32, 48, 64, 80, 96, 128, 160,
// 192, 256 that holds `dim` (0 when over 256).
int head_dim_bucket(int dim);

}  // namespace openna
