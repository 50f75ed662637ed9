// `openna-bench simulate`: the box-tiling simulator alone. For each problem, pass and variant,
// the variant's configuration (its default for a device, or --config) and what it computes:
// query tiles, mean key chunks per tile, computed and useful score entries, density and the
// attainable speedup over dense attention at equal per-tile speed. No device is needed: without
// --device, a synthetic GPU or CPU stands in for the defaults.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "core/errors.hpp"
#include "presets.hpp"

namespace openna::bench {

namespace {

// Typical figures for the defaults that depend on the device: an H100-class NVIDIA GPU (the
// kind the tiled variants target first) or a 16-core CPU under PoCL. It has no OpenCL handles,
// so a variant that queries the device itself reports an error instead of a simulation.
DeviceInfo synthetic_device(const std::string& kind) {
  DeviceInfo d;
  const bool gpu = kind == "gpu";
  d.name = gpu ? "synthetic GPU (H100-like)" : "synthetic CPU";
  d.vendor = gpu ? "NVIDIA Corporation" : "synthetic";
  d.platform_name = gpu ? "NVIDIA CUDA" : "Portable Computing Language";
  d.driver_version = "0";
  d.type = gpu ? CL_DEVICE_TYPE_GPU : CL_DEVICE_TYPE_CPU;
  d.compute_units = gpu ? 132 : 16;
  d.max_clock_mhz = gpu ? 1980 : 3000;
  d.max_work_group_size = gpu ? 1024 : 4096;
  d.global_mem = gpu ? (80ull << 30) : (64ull << 30);
  d.local_mem = gpu ? (48u << 10) : (256u << 10);
  d.local_mem_dedicated = gpu;
  d.fp16 = !gpu;  // NVIDIA's OpenCL driver does not report cl_khr_fp16
  d.fp64 = true;
  d.extensions = gpu ? "cl_khr_fp64 cl_nv_device_attribute_query" : "cl_khr_fp64";
  d.nv_cc_major = gpu ? 9 : -1;
  d.nv_cc_minor = gpu ? 0 : -1;
  return d;
}

}  // namespace

int cmd_simulate(const Options& o) {
  const DeviceInfo dev =
      o.device.empty() ? synthetic_device(o.device_kind) : select_device(o.device);
  const std::vector<NamedProblem> problems =
      resolve_problems(o.problem, dev.is_cpu() && !dev.is_gpu());
  std::vector<const Variant*> variants;
  bool failed = false;
  for (const std::string& w : o.variants) {
    if (w == "all" || w == "auto") {
      variants = variant_registry();
    } else if (const Variant* v = find_variant(w)) {
      variants.push_back(v);
    } else {
      std::fprintf(stderr, "openna-bench: variant \"%s\" is not registered in this build\n",
                   w.c_str());
      failed = true;
    }
  }
  nlohmann::json out = nlohmann::json::array();
  for (const NamedProblem& np : problems) {
    const Problem p = normalize(&np.problem);
    for (Pass pass : o.passes) {
      for (const Variant* v : variants) {
        nlohmann::json j = {{"problem_label", np.label},
                            {"problem", p.describe()},
                            {"pass", pass_name(pass)},
                            {"family", v->family()},
                            {"device", dev.name}};
        std::string error;
        Config c;
        SimResult s;
        try {
          if (const std::string why = v->unsupported_reason(p, dev, pass); !why.empty()) {
            error = "cannot run it: " + why;
          } else {
            c = o.config.empty() ? v->default_config(p, dev, pass) : Config::parse(o.config);
            error = v->config_error(p, dev, pass, c);
            if (!error.empty()) error = "configuration " + c.str() + ": " + error;
          }
          if (error.empty()) s = v->simulate(p, c);
        } catch (const std::exception& e) {
          error = e.what();
        }
        if (!error.empty()) {
          // A variant that cannot run this problem is not an error of `simulate --variant all`.
          const bool named = o.variants[0] != "all" && o.variants[0] != "auto";
          failed |= named;
          if (o.format == Format::Json) {
            j["error"] = error;
            out.push_back(j);
          } else {
            std::printf("%s %s on %s: %s\n\n", v->family(), pass_name(pass), np.label.c_str(),
                        error.c_str());
          }
          continue;
        }
        const std::string source = o.config.empty() ? "default for " + dev.name : "--config";
        if (o.format == Format::Json) {
          j["variant"] = v->name(p, c, pass);
          j["config"] = c.str();
          j["config_source"] = source;
          j["query_tiles"] = s.query_tiles;
          j["kv_chunks_per_tile"] = s.kv_chunks_per_tile;
          j["computed"] = s.computed;
          j["useful"] = s.useful;
          j["dense_computed"] = s.dense_computed;
          j["density"] = s.density();
          j["attainable_speedup"] = s.attainable_speedup();
          out.push_back(j);
          continue;
        }
        std::printf("%s\n", v->name(p, c, pass).c_str());
        std::printf("  problem                      %s (%s)\n", p.describe().c_str(),
                    np.label.c_str());
        std::printf("  configuration                %s (%s)\n",
                    c.str().empty() ? "-" : c.str().c_str(), source.c_str());
        std::printf("  per batch item and head:\n");
        std::printf("  query tiles                  %lld\n", static_cast<long long>(s.query_tiles));
        std::printf("  KV chunks per tile (mean)    %s\n", fmt(s.kv_chunks_per_tile, 6).c_str());
        std::printf("  computed score entries       %.0f\n", s.computed);
        std::printf("  useful score entries         %.0f\n", s.useful);
        std::printf("  density                      %s\n", fmt(s.density(), 4).c_str());
        std::printf("  dense computed entries       %.0f\n", s.dense_computed);
        std::printf("  attainable speedup vs dense  %sx\n\n",
                    fmt_fixed(s.attainable_speedup(), 2).c_str());
      }
    }
  }
  if (o.format == Format::Json) std::printf("%s\n", out.dump(2).c_str());
  return failed ? kExitFailed : kExitOk;
}

}  // namespace openna::bench
