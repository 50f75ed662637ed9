// Program building and the disk cache. An entry is a file "<hash>.bin" holding a magic, a format
// version, the full key (so a hash collision or a foreign file is detected), the device binary
// and a checksum. It is written to a temporary file and renamed into place; a disk problem never
// fails a call: the program is built from source instead.
#include "runtime/program_cache.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <sys/stat.h>
#include <thread>

#include "core/errors.hpp"

namespace openna {

namespace {

constexpr char kMagic[8] = {'O', 'P', 'E', 'N', 'N', 'A', 'P', 'C'};
constexpr std::uint32_t kFormatVersion = 1;

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string cache_key(const DeviceInfo& dev, const std::string& source,
                      const std::string& options) {
  std::ostringstream k;
  k << "openna-program-cache v" << kFormatVersion << "\nsource " << hex64(fnv1a64(source))
    << " " << source.size() << "\noptions " << options << "\ndevice " << dev.name << "\nversion "
    << dev.device_version << "\ndriver " << dev.driver_version << "\nplatform "
    << dev.platform_name << "\nplatform-version " << dev.platform_version << "\n";
  return k.str();
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
bool get(const std::string& in, std::size_t& pos, T& v) {
  if (in.size() - pos < sizeof v) return false;
  std::memcpy(&v, in.data() + pos, sizeof v);
  pos += sizeof v;
  return true;
}

// The binary stored for `key`, or "" (and `rejected` set) when the file is absent or invalid.
std::string read_entry(const std::string& path, const std::string& key, bool& rejected) {
  rejected = false;
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  const std::string data = s.str();
  rejected = true;
  if (data.size() < sizeof kMagic || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    return "";
  }
  std::size_t pos = sizeof kMagic;
  std::uint32_t version = 0, key_len = 0;
  std::uint64_t bin_len = 0, checksum = 0;
  if (!get(data, pos, version) || version != kFormatVersion) return "";
  if (!get(data, pos, key_len) || data.size() - pos < key_len) return "";
  if (data.compare(pos, key_len, key) != 0 || key_len != key.size()) return "";
  pos += key_len;
  if (!get(data, pos, bin_len) || data.size() - pos < bin_len || bin_len == 0) return "";
  std::string binary = data.substr(pos, bin_len);
  pos += bin_len;
  if (!get(data, pos, checksum) || pos != data.size()) return "";
  if (checksum != fnv1a64(binary, fnv1a64(key))) return "";
  rejected = false;
  return binary;
}

void write_entry(const std::string& dir, const std::string& path, const std::string& key,
                 const std::string& binary) {
  if (!make_dirs(dir)) return;
  std::string data(kMagic, sizeof kMagic);
  put(data, kFormatVersion);
  put(data, static_cast<std::uint32_t>(key.size()));
  data += key;
  put(data, static_cast<std::uint64_t>(binary.size()));
  data += binary;
  put(data, fnv1a64(binary, fnv1a64(key)));
  std::ostringstream tmp;
  tmp << path << ".tmp." << getpid() << "." << std::hash<std::thread::id>()(std::this_thread::get_id());
  {
    std::ofstream out(tmp.str(), std::ios::binary | std::ios::trunc);
    if (!out) return;
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) {
      std::remove(tmp.str().c_str());
      return;
    }
  }
  if (std::rename(tmp.str().c_str(), path.c_str()) != 0) {
    std::remove(tmp.str().c_str());
    return;
  }
  ++cache_counters().disk_writes;
}

std::string build_log(const cl::Program& program, const cl::Device& device) {
  try {
    return program.getBuildInfo<CL_PROGRAM_BUILD_LOG>(device);
  } catch (const cl::Error&) {
    return "(no build log)";
  }
}

// The device binary of a program built for `device`.
std::string program_binary(const cl::Program& program, const cl::Device& device) {
  const auto devices = program.getInfo<CL_PROGRAM_DEVICES>();
  const auto binaries = program.getInfo<CL_PROGRAM_BINARIES>();
  for (std::size_t i = 0; i < devices.size() && i < binaries.size(); ++i) {
    if (devices[i]() == device()) {
      return std::string(binaries[i].begin(), binaries[i].end());
    }
  }
  return "";
}

// Kernel-development aids, off unless asked for: OPENNA_BUILD_LOG=1 prints the build log of
// every program compiled from source (with -cl-nv-verbose, NVIDIA's log has registers and
// spills), OPENNA_DUMP_BINARIES=<dir> writes each program's binary (PTX on NVIDIA) there.
void developer_diagnostics(const cl::Program& program, const DeviceInfo& dev,
                           const std::string& options, const std::string& label) {
  const char* log_env = std::getenv("OPENNA_BUILD_LOG");
  if (log_env != nullptr && std::string(log_env) == "1") {
    std::fprintf(stderr, "openna: built %s for %s with \"%s\"\n%s\n", label.c_str(),
                 dev.name.c_str(), options.c_str(), build_log(program, dev.device).c_str());
  }
  const char* dump = std::getenv("OPENNA_DUMP_BINARIES");
  if (dump != nullptr && *dump != '\0') {
    try {
      const std::string binary = program_binary(program, dev.device);
      // one label may name several programs (a backward's kernels): the options tell them apart
      char tag[16];
      std::snprintf(tag, sizeof tag, "%08zx", std::hash<std::string>{}(options) & 0xffffffffu);
      std::ofstream out(std::string(dump) + "/" + label + "." + tag + ".bin", std::ios::binary);
      out.write(binary.data(), static_cast<std::streamsize>(binary.size()));
    } catch (const cl::Error&) {
    }
  }
}

}  // namespace

bool make_dirs(const std::string& path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (!path.empty() && path[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

std::uint64_t fnv1a64(const std::string& data, std::uint64_t seed) {
  std::uint64_t h = seed;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

openna_cache_stats CacheCounters::snapshot() const {
  openna_cache_stats s{};
  s.memory_hits = memory_hits.load();
  s.disk_hits = disk_hits.load();
  s.disk_misses = disk_misses.load();
  s.disk_rejected = disk_rejected.load();
  s.disk_writes = disk_writes.load();
  return s;
}

CacheCounters& cache_counters() {
  static CacheCounters counters;
  return counters;
}

std::string disk_cache_dir() {
  if (const char* off = std::getenv("OPENNA_DISK_CACHE"); off != nullptr) {
    const std::string v(off);
    if (v == "0" || v == "off" || v == "OFF" || v == "false" || v == "no") return "";
  }
  if (const char* dir = std::getenv("OPENNA_CACHE_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') {
    return std::string(xdg) + "/openna";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.cache/openna";
  }
  return "";
}

std::string disk_cache_path(const DeviceInfo& dev, const std::string& source,
                            const std::string& options) {
  const std::string dir = disk_cache_dir();
  if (dir.empty()) return "";
  return dir + "/" + hex64(fnv1a64(cache_key(dev, source, options))) + ".bin";
}

std::string sm90a_rewrite(const std::string& ptx, int maxnreg) {
  std::string out;
  out.reserve(ptx.size());
  // tensormap.replace and tensormap.cp_fenceproxy need PTX ISA 8.3 (the rest: 8.0).
  const bool isa83 = ptx.find(std::string(kSm90aMarker) + " tensormap.") != std::string::npos;
  bool target_seen = false, in_entry_header = false;
  std::istringstream in(ptx);
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t first = line.find_first_not_of(" \t");
    const std::string body = first == std::string::npos ? "" : line.substr(first);
    const std::string marker = std::string("// ") + kSm90aMarker + " ";
    if (body.compare(0, marker.size(), marker) == 0) {
      line = line.substr(0, first) + body.substr(marker.size());
    } else if (body.compare(0, 8, ".target ") == 0) {
      const std::size_t arch = body.find_first_not_of(' ', 8);
      const std::size_t end = body.find_first_of(", \t", arch);
      const std::string target = body.substr(arch, end == std::string::npos ? end : end - arch);
      if (target != "sm_90") {
        throw BuildError("sm_90a instructions need PTX for sm_90; the compiler emitted " + target);
      }
      line = line.substr(0, first) + ".target sm_90a" +
             (end == std::string::npos ? "" : body.substr(end));
      target_seen = true;
    } else if (body.compare(0, 7, ".entry ") == 0 || body.find(" .entry ") != std::string::npos) {
      in_entry_header = true;
    } else if (in_entry_header && body.compare(0, 8, ".maxnreg") == 0) {
      in_entry_header = false;  // the kernel has its own cap
    } else if (in_entry_header && body == "{") {
      // A register cap of a program built from PTX must be in the PTX: the driver's option
      // (-cl-nv-maxrregcount) applies to OpenCL C only.
      if (maxnreg > 0) out += ".maxnreg " + std::to_string(maxnreg) + "\n";
      in_entry_header = false;
    } else if (body.compare(0, 9, ".version ") == 0) {
      int major = 0, minor = 0;
      if (std::sscanf(body.c_str() + 9, "%d.%d", &major, &minor) != 2 || major < 8 ||
          (isa83 && major == 8 && minor < 3)) {
        line = line.substr(0, first) + (isa83 ? ".version 8.3" : ".version 8.0");
      }
    }
    out += line;
    out += '\n';
  }
  if (!target_seen) throw BuildError("sm_90a rewrite: the PTX has no .target line");
  return out;
}

cl::Program build_program(const cl::Context& context, const DeviceInfo& dev,
                          const std::string& source, const std::string& options,
                          const std::string& label) {
  const std::string dir = disk_cache_dir();
  const std::string key = cache_key(dev, source, options);
  const std::string path = dir.empty() ? "" : disk_cache_path(dev, source, options);
  if (!path.empty()) {
    bool rejected = false;
    const std::string binary = read_entry(path, key, rejected);
    if (!binary.empty()) {
      try {
        cl::Program::Binaries bins{std::vector<unsigned char>(binary.begin(), binary.end())};
        std::vector<cl_int> status;
        cl::Program program(context, {dev.device}, bins, &status);
        program.build({dev.device}, options.c_str());
        ++cache_counters().disk_hits;
        return program;
      } catch (const cl::Error&) {
        rejected = true;  // the driver refused the binary: rebuild below and replace it
      }
    }
    if (rejected) ++cache_counters().disk_rejected;
  }
  ++cache_counters().disk_misses;
  cl::Program program;
  try {
    program = cl::Program(context, source);
    program.build({dev.device}, options.c_str());
  } catch (const cl::BuildError& e) {
    std::string log;
    for (const auto& entry : e.getBuildLog()) log += entry.second;
    throw BuildError("building " + label + " for " + dev.name + " failed (" +
                     cl_error_name(e.err()) + ") with options \"" + options +
                     "\"; build log:\n" + log);
  } catch (const cl::Error& e) {
    const std::string log = program() ? build_log(program, dev.device) : "";
    throw BuildError("building " + label + " for " + dev.name + " failed in " + e.what() + " (" +
                     cl_error_name(e.err()) + ") with options \"" + options +
                     "\"; build log:\n" + log);
  }
  if (dev.is_nvidia() && source.find(kSm90aMarker) != std::string::npos) {
    // Marked sm_90a instructions (see sm90a_rewrite): the PTX is rebuilt as sm_90a code; the
    // program from source alone would run without them and must never be used.
    std::string ptx;
    try {
      ptx = program_binary(program, dev.device);
    } catch (const cl::Error& e) {
      throw BuildError("building " + label + ": the PTX for the sm_90a rewrite is unavailable (" +
                       cl_error_name(e.err()) + ")");
    }
    while (!ptx.empty() && ptx.back() == '\0') ptx.pop_back();
    if (ptx.find(kSm90aMarker) != std::string::npos) {
      const std::size_t cap = options.find("-cl-nv-maxrregcount=");
      const int maxnreg = cap == std::string::npos ? 0 : std::atoi(options.c_str() + cap + 20);
      const std::string fixed = sm90a_rewrite(ptx, maxnreg);
      cl::Program rebuilt;
      try {
        const unsigned char* text = reinterpret_cast<const unsigned char*>(fixed.c_str());
        cl::Program::Binaries bins{std::vector<unsigned char>(text, text + fixed.size() + 1)};
        std::vector<cl_int> status;
        rebuilt = cl::Program(context, {dev.device}, bins, &status);
        rebuilt.build({dev.device}, options.c_str());
      } catch (const cl::Error& e) {
        const std::string log = rebuilt() ? build_log(rebuilt, dev.device) : "";
        throw BuildError("building " + label + " for " + dev.name + " as sm_90a PTX failed in " +
                         e.what() + " (" + cl_error_name(e.err()) + "); build log:\n" + log);
      }
      program = rebuilt;
    }
  }
  developer_diagnostics(program, dev, options, label);
  if (!path.empty()) {
    try {
      const std::string binary = program_binary(program, dev.device);
      if (!binary.empty()) write_entry(dir, path, key, binary);
    } catch (const cl::Error&) {
      // Binaries unavailable from this driver: the disk cache is simply not used for it.
    }
  }
  return program;
}

}  // namespace openna
