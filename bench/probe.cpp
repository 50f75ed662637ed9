// The device probe (see probe.hpp). Cache file format:
//   {"format": 1, "devices": {"<normalized name> | <driver> | <platform>": {"name": ...,
//     "driver": ..., "platform": ..., "fma_gflops": ..., "fma_width": ..., "copy_gbs": ...,
//     "date": ...}}}
#include "probe.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench_probe_source.hpp"  // generated from bench/probe.cl
#include "core/errors.hpp"
#include "runtime/program_cache.hpp"

namespace openna::bench {

namespace {

using json = nlohmann::json;

std::string cache_key(const DeviceInfo& dev) {
  return dev.normalized_name() + " | " + dev.driver_version + " | " + dev.platform_name;
}

double event_ms(const cl::Event& e) {
  const cl_ulong start = e.getProfilingInfo<CL_PROFILING_COMMAND_START>();
  const cl_ulong end = e.getProfilingInfo<CL_PROFILING_COMMAND_END>();
  return static_cast<double>(end - start) * 1e-6;
}

json load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return json::object();
  json doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
  return doc.is_object() ? doc : json::object();
}

// Written to a temporary file and renamed, so a concurrent reader never sees half a file.
bool save(const std::string& path, const json& doc) {
  const auto slash = path.rfind('/');
  if (slash != std::string::npos && !make_dirs(path.substr(0, slash))) return false;
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << doc.dump(2) << "\n";
    if (!out) return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

std::string today() {
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  return date;
}

Peak measure(const DeviceInfo& dev, Progress& progress) {
  Peak r;
  cl::Context ctx(std::vector<cl::Device>{dev.device});
  cl::CommandQueue queue(ctx, dev.device, CL_QUEUE_PROFILING_ENABLE);
  cl::Program program(ctx, std::string(kProbeSource));
  try {
    program.build(std::vector<cl::Device>{dev.device}, "-cl-std=CL1.2");
  } catch (const cl::Error&) {
    r.error =
        "probe kernels do not build: " + program.getBuildInfo<CL_PROGRAM_BUILD_LOG>(dev.device);
    return r;
  }

  // FMA peak: enough work-groups to fill every compute unit several times over, and a loop
  // count grown until one launch takes kTargetMs (short launches measure launch overhead).
  constexpr double kTargetMs = 20;
  const std::size_t local = std::min<std::size_t>(dev.max_work_group_size, dev.is_gpu() ? 256 : 64);
  const std::size_t groups_per_cu = dev.is_gpu() ? 8 : 4;
  const std::size_t global = std::max<unsigned>(dev.compute_units, 1u) * groups_per_cu * local;
  cl::Buffer out(ctx, CL_MEM_WRITE_ONLY, global * 16 * sizeof(float));
  for (int width : {1, 2, 4, 8, 16}) {
    progress.update("probing " + dev.name + ": f32 FMA, vector width " + std::to_string(width));
    cl::Kernel k(program, ("fma_peak_" + std::to_string(width)).c_str());
    auto launch = [&](int iters) {
      k.setArg(0, out);
      k.setArg(1, iters);
      k.setArg(2, 1.3f);
      cl::Event ev;
      queue.enqueueNDRangeKernel(k, cl::NullRange, cl::NDRange(global), cl::NDRange(local), nullptr,
                                 &ev);
      ev.wait();
      return event_ms(ev);
    };
    int iters = 4;
    double ms = launch(iters);
    while (ms < kTargetMs && iters < (1 << 22)) {
      const double grow = ms > 0 ? std::min(64.0, std::max(2.0, 1.2 * kTargetMs / ms)) : 8.0;
      iters = static_cast<int>(std::min<double>(iters * grow, 1 << 22));
      ms = launch(iters);
    }
    for (int rep = 0; rep < 3; ++rep) ms = std::min(ms, launch(iters));
    const double flops = static_cast<double>(global) * iters * 256.0 * width;
    const double gflops = flops / (ms * 1e6);
    if (gflops > r.fma_gflops) {
      r.fma_gflops = gflops;
      r.fma_width = width;
    }
  }

  // Copy bandwidth: buffers far larger than any cache; best of five after a warm-up.
  progress.update("probing " + dev.name + ": copy bandwidth");
  const unsigned long long max_alloc = dev.device.getInfo<CL_DEVICE_MAX_MEM_ALLOC_SIZE>();
  std::size_t bytes = dev.is_gpu() ? (512u << 20) : (128u << 20);
  bytes = static_cast<std::size_t>(std::min<unsigned long long>(
      {bytes, max_alloc, std::max<unsigned long long>(dev.global_mem / 8, 1u << 20)}));
  bytes -= bytes % (16 * local);
  cl::Buffer src(ctx, CL_MEM_READ_ONLY, bytes);
  cl::Buffer dst(ctx, CL_MEM_WRITE_ONLY, bytes);
  cl::Kernel copy(program, "copy_f4");
  copy.setArg(0, src);
  copy.setArg(1, dst);
  double best = 0;
  for (int rep = 0; rep < 6; ++rep) {
    cl::Event ev;
    queue.enqueueNDRangeKernel(copy, cl::NullRange, cl::NDRange(bytes / 16), cl::NDRange(local),
                               nullptr, &ev);
    ev.wait();
    const double ms = event_ms(ev);
    if (rep > 0 && ms > 0) best = std::max(best, 2.0 * static_cast<double>(bytes) / (ms * 1e6));
  }
  r.copy_gbs = best;
  r.ok = r.fma_gflops > 0 && r.copy_gbs > 0;
  if (!r.ok) r.error = "probe measured zero time (device timer resolution?)";
  r.date = today();
  return r;
}

}  // namespace

std::string probe_cache_path() {
  const std::string dir = cache_dir();
  return dir.empty() ? "" : dir + "/probe.json";
}

Peak device_peak(const DeviceInfo& dev, bool reprobe, Progress& progress) {
  const std::string path = probe_cache_path();
  const std::string key = cache_key(dev);
  if (!reprobe && !path.empty()) {
    const json doc = load(path);
    if (doc.contains("devices") && doc["devices"].is_object() && doc["devices"].contains(key)) {
      const json& e = doc["devices"][key];
      if (e.is_object() && e.value("fma_gflops", 0.0) > 0 && e.value("copy_gbs", 0.0) > 0) {
        Peak r;
        r.ok = true;
        r.cached = true;
        r.fma_gflops = e.value("fma_gflops", 0.0);
        r.fma_width = e.value("fma_width", 0);
        r.copy_gbs = e.value("copy_gbs", 0.0);
        r.date = e.value("date", "");
        return r;
      }
    }
  }
  Peak r;
  try {
    r = measure(dev, progress);
  } catch (const cl::Error& e) {
    r.error = std::string("probe failed: ") + e.what() + " (" + cl_error_name(e.err()) + ")";
  } catch (const std::exception& e) {
    r.error = std::string("probe failed: ") + e.what();
  }
  progress.done();
  if (r.ok && !path.empty()) {
    json doc = load(path);
    doc["format"] = 1;
    doc["devices"][key] = {{"name", dev.name},
                           {"driver", dev.driver_version},
                           {"platform", dev.platform_name},
                           {"fma_gflops", r.fma_gflops},
                           {"fma_width", r.fma_width},
                           {"copy_gbs", r.copy_gbs},
                           {"date", r.date}};
    // A cache that cannot be written only costs a probe next time.
    if (!save(path, doc)) progress.note("note: could not write the probe cache " + path);
  }
  return r;
}

}  // namespace openna::bench
