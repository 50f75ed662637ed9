// Device discovery and the device-spec rules: default (first GPU, else first CPU, else the first
// device of any type), "gpu", "cpu", "P:D", or a case-insensitive substring of the platform or
// device name.
#include "runtime/device.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "core/errors.hpp"

namespace openna {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Strings from drivers sometimes carry trailing NULs.
std::string clean(std::string s) {
  s.erase(std::find(s.begin(), s.end(), '\0'), s.end());
  return trim(s);
}

std::string device_list(const std::vector<DeviceInfo>& all) {
  if (all.empty()) return "no OpenCL platform or device was found (is an ICD installed?)";
  std::string s = "available devices:";
  for (const auto& d : all) s += "\n  " + d.label();
  return s;
}

}  // namespace

bool DeviceInfo::is_nvidia() const {
  return lower(vendor).find("nvidia") != std::string::npos ||
         lower(platform_name).find("nvidia") != std::string::npos;
}

unsigned long long DeviceInfo::kernel_local_mem() const {
  // H100, driver 580.159.04 (tools/dynsmem_probe.cpp, 2026-11-27): one static __local array of
  // 49152 to 227328 bytes built and ran correctly from OpenCL C and from its PTX as a binary
  // (CL_KERNEL_LOCAL_MEM_SIZE 4 bytes more); 232448 bytes did not build. The same kernel with
  // its array as a __local argument failed at enqueue (CL_OUT_OF_RESOURCES) from 49152 bytes.
  if (is_nvidia() && nv_cc_major == 9 && nv_cc_minor == 0) return 227328 + kNvidiaLocalReserve;
  return local_mem;
}

bool DeviceInfo::has_extension(const std::string& ext) const {
  return (" " + extensions + " ").find(" " + ext + " ") != std::string::npos;
}

const char* DeviceInfo::type_name() const {
  if (is_gpu()) return "GPU";
  if (is_cpu()) return "CPU";
  if (type & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
  return "other";
}

std::string DeviceInfo::normalized_name() const {
  std::string n = lower(trim(name));
  for (const char* prefix : {"pthread-", "cpu-", "basic-"}) {
    const std::string p(prefix);
    if (n.compare(0, p.size(), p) == 0) n = n.substr(p.size());
  }
  // Collapse runs of spaces so driver whitespace differences do not split entries.
  std::string out;
  for (char c : n) {
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

std::string DeviceInfo::label() const {
  return std::to_string(platform_index) + ":" + std::to_string(device_index) + " " +
         platform_name + " / " + name + " (" + type_name() + ")";
}

DeviceInfo describe_device(const cl::Platform& platform, const cl::Device& device, int pi,
                           int di) {
  DeviceInfo d;
  d.platform = platform;
  d.device = device;
  d.platform_index = pi;
  d.device_index = di;
  d.name = clean(device.getInfo<CL_DEVICE_NAME>());
  d.vendor = clean(device.getInfo<CL_DEVICE_VENDOR>());
  d.device_version = clean(device.getInfo<CL_DEVICE_VERSION>());
  d.driver_version = clean(device.getInfo<CL_DRIVER_VERSION>());
  d.platform_name = clean(platform.getInfo<CL_PLATFORM_NAME>());
  d.platform_version = clean(platform.getInfo<CL_PLATFORM_VERSION>());
  d.extensions = clean(device.getInfo<CL_DEVICE_EXTENSIONS>());
  d.opencl_c_version = clean(device.getInfo<CL_DEVICE_OPENCL_C_VERSION>());
  d.type = device.getInfo<CL_DEVICE_TYPE>();
  d.compute_units = device.getInfo<CL_DEVICE_MAX_COMPUTE_UNITS>();
  d.max_clock_mhz = device.getInfo<CL_DEVICE_MAX_CLOCK_FREQUENCY>();
  d.max_work_group_size = device.getInfo<CL_DEVICE_MAX_WORK_GROUP_SIZE>();
  d.global_mem = device.getInfo<CL_DEVICE_GLOBAL_MEM_SIZE>();
  d.local_mem = device.getInfo<CL_DEVICE_LOCAL_MEM_SIZE>();
  d.local_mem_dedicated = device.getInfo<CL_DEVICE_LOCAL_MEM_TYPE>() == CL_LOCAL;
  d.fp16 = d.has_extension("cl_khr_fp16");
  d.fp64 = d.has_extension("cl_khr_fp64");
  if (d.has_extension("cl_nv_device_attribute_query")) {
    // CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV / _MINOR_NV (cl_ext.h values).
    cl_uint major = 0, minor = 0;
    if (clGetDeviceInfo(device(), 0x4000, sizeof(major), &major, nullptr) == CL_SUCCESS &&
        clGetDeviceInfo(device(), 0x4001, sizeof(minor), &minor, nullptr) == CL_SUCCESS) {
      d.nv_cc_major = static_cast<int>(major);
      d.nv_cc_minor = static_cast<int>(minor);
    }
  }
  return d;
}

std::vector<DeviceInfo> enumerate_devices() {
  std::vector<DeviceInfo> all;
  cl_uint n_platforms = 0;
  // The ICD loader answers CL_PLATFORM_NOT_FOUND_KHR when no driver is installed: that is an
  // empty list, not an error.
  if (clGetPlatformIDs(0, nullptr, &n_platforms) != CL_SUCCESS || n_platforms == 0) return all;
  std::vector<cl::Platform> platforms;
  cl::Platform::get(&platforms);
  for (std::size_t pi = 0; pi < platforms.size(); ++pi) {
    std::vector<cl::Device> devices;
    cl_uint n_devices = 0;
    if (clGetDeviceIDs(platforms[pi](), CL_DEVICE_TYPE_ALL, 0, nullptr, &n_devices) !=
            CL_SUCCESS ||
        n_devices == 0) {
      continue;
    }
    platforms[pi].getDevices(CL_DEVICE_TYPE_ALL, &devices);
    for (std::size_t di = 0; di < devices.size(); ++di) {
      all.push_back(describe_device(platforms[pi], devices[di], static_cast<int>(pi),
                                    static_cast<int>(di)));
    }
  }
  return all;
}

DeviceInfo select_device(const std::string& spec_in) {
  std::string spec = trim(spec_in);
  std::string origin = "device spec";
  if (spec.empty()) {
    if (const char* env = std::getenv("OPENNA_DEVICE"); env != nullptr && *env != '\0') {
      spec = trim(env);
      origin = "OPENNA_DEVICE";
    }
  }
  const std::vector<DeviceInfo> all = enumerate_devices();
  if (all.empty()) throw NoDevice(device_list(all));
  const std::string key = lower(spec);
  auto first_of = [&](cl_device_type t) -> const DeviceInfo* {
    for (const auto& d : all)
      if (d.type & t) return &d;
    return nullptr;
  };
  const DeviceInfo* found = nullptr;
  if (key.empty()) {
    found = first_of(CL_DEVICE_TYPE_GPU);
    if (!found) found = first_of(CL_DEVICE_TYPE_CPU);
    if (!found) found = &all.front();
  } else if (key == "gpu") {
    found = first_of(CL_DEVICE_TYPE_GPU);
  } else if (key == "cpu") {
    found = first_of(CL_DEVICE_TYPE_CPU);
  } else if (const auto colon = key.find(':');
             colon != std::string::npos && colon > 0 && colon + 1 < key.size() &&
             key.find_first_not_of("0123456789:") == std::string::npos &&
             key.find(':', colon + 1) == std::string::npos) {
    const int pi = std::atoi(key.substr(0, colon).c_str());
    const int di = std::atoi(key.substr(colon + 1).c_str());
    for (const auto& d : all)
      if (d.platform_index == pi && d.device_index == di) found = &d;
  } else {
    for (const auto& d : all) {
      if (lower(d.name).find(key) != std::string::npos ||
          lower(d.platform_name).find(key) != std::string::npos) {
        found = &d;
        break;
      }
    }
  }
  if (!found) throw NoDevice(origin + " \"" + spec + "\" matches no device; " + device_list(all));
  return *found;
}

}  // namespace openna
