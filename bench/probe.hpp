// The device probe of openna-bench: a short clpeak-style measurement of the f32 FMA peak and the
// copy bandwidth, timed with OpenCL profiling events and cached per device and driver in
// <cache dir>/probe.json, so that `run` can say what fraction of the peak a kernel reaches.
#pragma once

#include <string>

#include "common.hpp"
#include "runtime/device.hpp"

namespace openna::bench {

struct Peak {
  bool ok = false;
  double fma_gflops = 0;  // best over the vector widths tried
  int fma_width = 0;      // the vector width that reached it
  double copy_gbs = 0;    // bytes read + bytes written per second, 1e9
  bool cached = false;
  std::string date;
  std::string error;  // why there is no peak
};

// <cache dir>/probe.json, or "" when there is no cache folder.
std::string probe_cache_path();

// The cached peak of this device and driver, else a fresh measurement (then cached). `reprobe`
// measures again. Never throws: a failed probe is a Peak with `error` set.
Peak device_peak(const DeviceInfo& dev, bool reprobe, Progress& progress);

}  // namespace openna::bench
