// The NVIDIA tensor-core variant: inline-PTX mma.sync inside OpenCL C (cl_kernels/na_mma_*.cl).
// Runs only on NVIDIA devices of compute capability 8.0 or newer, for f16/bf16, and only after
// a probe program with every instruction it uses has produced exact results on the device.
#pragma once

#include "variants/variant.hpp"

namespace openna {

class MmaVariant final : public Variant {
 public:
  const char* family() const override { return "mma"; }
  std::string unsupported_reason(const Problem& p, const DeviceInfo& dev,
                                 Pass pass) const override;
  Config default_config(const Problem& p, const DeviceInfo& dev, Pass pass) const override;
  std::vector<Config> candidates(const Problem& p, const DeviceInfo& dev,
                                 Pass pass) const override;
  std::string config_error(const Problem& p, const DeviceInfo& dev, Pass pass,
                           const Config& c) const override;
  std::string config_suffix(const Problem& p, const Config& c) const override;
  // The probes the problem's choices rely on (base, then WG and TMA on compute capability 9.0):
  // where one failed, unsupported_reason refuses mma (the base probe) or default_config leaves
  // the WG tiles or the TMA chunks out.
  void prepare(Context& ctx, const Problem& p) const override;
  SimResult simulate(const Problem& p, const Config& c) const override;
  void forward(Context& ctx, const Problem& p, const Config& c, const FwdArgs& a,
               Events* events) const override;
  void backward(Context& ctx, const Problem& p, const Config& c, const BwdArgs& a,
                Events* events) const override;
};

// The local memory of the largest kernel that a valid configuration `c` of the pass runs, in
// bytes, with NVIDIA's driver's own 16 (what the tile check holds against
// DeviceInfo::kernel_local_mem).
std::size_t mma_local_bytes(const Problem& p, const Config& c, Pass pass);

// "" when the device passed (or passes now) the mma probe for this dtype, else why not; with
// `wg`, the probe of the forward's WG tiles (wgmma, sm_90a). Cached per device, driver, dtype
// and probe for the life of the process. Needs a context on the device.
std::string mma_probe(Context& ctx, openna_dtype dtype, bool wg = false);
// "" when the device passed the probe of the TMA chunks (na_mma_probe.cl's na_mma_tma_probe:
// tensor maps built on the GPU, a swizzled box by cp.async.bulk.tensor, wgmma through the
// forward's swizzled descriptors) and the WG probe, else why not. Cached as mma_probe.
std::string mma_tma_probe(Context& ctx, openna_dtype dtype);
// Tests only: records a probe's finding for a device as if the probe had run there (kind 0:
// base, 1: WG, 2: TMA).
void mma_probe_record_for_test(const DeviceInfo& dev, openna_dtype dtype, int kind,
                               const std::string& finding);

}  // namespace openna
