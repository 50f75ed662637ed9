// Building OpenCL programs, with the disk level of the program cache: device binaries keyed by
// a hash of the source, the options, the device, driver and platform versions and a format
// version. The memory level lives in each Context (runtime/context.hpp).
#pragma once

#include <atomic>
#include <string>

#include "core/cl.hpp"
#include "openna/openna.h"
#include "runtime/device.hpp"

namespace openna {

struct CacheCounters {
  std::atomic<unsigned long long> memory_hits{0};
  std::atomic<unsigned long long> disk_hits{0};
  std::atomic<unsigned long long> disk_misses{0};
  std::atomic<unsigned long long> disk_rejected{0};
  std::atomic<unsigned long long> disk_writes{0};
  openna_cache_stats snapshot() const;
};
CacheCounters& cache_counters();

// The disk cache folder: OPENNA_CACHE_DIR, else $XDG_CACHE_HOME/openna, else ~/.cache/openna;
// "" when OPENNA_DISK_CACHE is 0/off/false or no folder can be determined.
std::string disk_cache_dir();

// The disk file that holds the program for this key (for tests that corrupt entries).
std::string disk_cache_path(const DeviceInfo& dev, const std::string& source,
                            const std::string& options);

// A built program for `dev`: from a valid disk entry when there is one, else compiled from
// source (and written to disk). A corrupt, truncated or foreign entry is rebuilt and replaced.
// Throws BuildError with the build log when compiling fails.
cl::Program build_program(const cl::Context& context, const DeviceInfo& dev,
                          const std::string& source, const std::string& options,
                          const std::string& label);

// Hopper-only (sm_90a) instructions in programs for NVIDIA's OpenCL compiler, which targets plain
// sm_90: the kernels write each such instruction as a PTX comment line "// @sm_90a@ <instr>"
// (cl_kernels/na_wgmma.h) and build_program, finding the marker in the compiled PTX, rebuilds the
// program from sm90a_rewrite's PTX. sm90a_rewrite uncomments the marked lines and sets the
// target to sm_90a (PTX ISA 8.0 at least; 8.3 where a marked line is a tensormap
// instruction), and with maxnreg > 0 caps each kernel's registers
// (.maxnreg: NVIDIA's -cl-nv-maxrregcount does not reach a program built from PTX); it throws
// BuildError when the PTX targets anything but sm_90 (sm_90a code runs on compute capability 9.0
// only).
constexpr const char* kSm90aMarker = "@sm_90a@";
std::string sm90a_rewrite(const std::string& ptx, int maxnreg = 0);

// Creates a folder and its parents (like mkdir -p); false when one cannot be made.
bool make_dirs(const std::string& path);

std::uint64_t fnv1a64(const std::string& data, std::uint64_t seed = 1469598103934665603ull);

}  // namespace openna
