// `openna-bench devices`: every OpenCL platform and device with what the dispatcher and the
// bench rely on, and the probed f32 FMA peak and copy bandwidth.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "core/errors.hpp"
#include "probe.hpp"

namespace openna::bench {

namespace {

std::string bytes_str(unsigned long long b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return fmt(v, 4) + " " + units[u];
}

}  // namespace

std::vector<DeviceInfo> resolve_devices(const std::string& spec) {
  if (spec == "all") {
    std::vector<DeviceInfo> all = enumerate_devices();
    if (all.empty()) {
      throw NoDevice(
          "no OpenCL platform or device was found (is an ICD installed? see "
          "/etc/OpenCL/vendors and OCL_ICD_VENDORS)");
    }
    return all;
  }
  // "default": the library's own choice (OPENNA_DEVICE, else the first GPU, else a CPU).
  return {select_device(spec == "default" ? "" : spec)};
}

int cmd_devices(const Options& o) {
  const std::vector<DeviceInfo> devs = resolve_devices(o.device);
  Progress progress(o.quiet);
  nlohmann::json out = nlohmann::json::array();
  for (const DeviceInfo& d : devs) {
    Peak peak;
    if (o.probe) peak = device_peak(d, o.reprobe, progress);
    if (o.format == Format::Json) {
      nlohmann::json j = {
          {"index", std::to_string(d.platform_index) + ":" + std::to_string(d.device_index)},
          {"platform", d.platform_name},
          {"platform_version", d.platform_version},
          {"name", d.name},
          {"normalized_name", d.normalized_name()},
          {"vendor", d.vendor},
          {"type", d.type_name()},
          {"driver", d.driver_version},
          {"device_version", d.device_version},
          {"opencl_c_version", d.opencl_c_version},
          {"compute_units", d.compute_units},
          {"max_clock_mhz", d.max_clock_mhz},
          {"max_work_group_size", d.max_work_group_size},
          {"global_mem_bytes", d.global_mem},
          {"local_mem_bytes", d.local_mem},
          {"local_mem_dedicated", d.local_mem_dedicated},
          {"fp16", d.fp16},
          {"fp64", d.fp64}};
      if (d.nv_cc_major >= 0) {
        j["nv_compute_capability"] =
            std::to_string(d.nv_cc_major) + "." + std::to_string(d.nv_cc_minor);
      }
      if (peak.ok) {
        j["fma_gflops"] = peak.fma_gflops;
        j["fma_vector_width"] = peak.fma_width;
        j["copy_gbs"] = peak.copy_gbs;
        j["probe_date"] = peak.date;
        j["probe_cached"] = peak.cached;
      } else if (o.probe) {
        j["probe_error"] = peak.error;
      }
      out.push_back(j);
      continue;
    }
    std::printf("%s\n", d.label().c_str());
    std::printf("    type %s, vendor %s, driver %s\n", d.type_name(), d.vendor.c_str(),
                d.driver_version.c_str());
    std::printf("    %s, %s\n", d.device_version.c_str(), d.opencl_c_version.c_str());
    std::printf("    compute units %u, max clock %u MHz, max work-group %zu\n", d.compute_units,
                d.max_clock_mhz, d.max_work_group_size);
    std::printf("    global memory %s, local memory %s (%s)\n", bytes_str(d.global_mem).c_str(),
                bytes_str(d.local_mem).c_str(), d.local_mem_dedicated ? "dedicated" : "global");
    std::printf("    fp16 %s, fp64 %s", d.fp16 ? "yes" : "no", d.fp64 ? "yes" : "no");
    if (d.nv_cc_major >= 0)
      std::printf(", NVIDIA compute capability %d.%d", d.nv_cc_major, d.nv_cc_minor);
    std::printf("\n");
    if (peak.ok) {
      const std::string type =
          peak.fma_width > 1 ? "float" + std::to_string(peak.fma_width) : std::string("float");
      std::printf(
          "    measured: f32 FMA peak %s GFLOP/s (%s), copy bandwidth %s GB/s "
          "(%s %s)\n",
          fmt(peak.fma_gflops, 4).c_str(), type.c_str(), fmt(peak.copy_gbs, 4).c_str(),
          peak.cached ? "cached, probed" : "probed", peak.date.c_str());
    } else if (o.probe) {
      std::printf("    measured: no peak (%s)\n", peak.error.c_str());
    }
  }
  if (o.format == Format::Json) std::printf("%s\n", out.dump(2).c_str());
  return kExitOk;
}

}  // namespace openna::bench
