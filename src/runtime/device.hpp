// OpenCL device discovery and selection (SPEC.md section 6): every platform and device with the
// facts the dispatcher, the caches and the bench need, and the device-spec rules.
#pragma once

#include <string>
#include <vector>

#include "core/cl.hpp"

namespace openna {

struct DeviceInfo {
  cl::Platform platform;
  cl::Device device;
  int platform_index = -1;
  int device_index = -1;
  std::string name;
  std::string vendor;
  std::string device_version;
  std::string driver_version;
  std::string platform_name;
  std::string platform_version;
  std::string extensions;
  std::string opencl_c_version;
  cl_device_type type = 0;
  unsigned compute_units = 0;
  unsigned max_clock_mhz = 0;
  std::size_t max_work_group_size = 0;
  unsigned long long global_mem = 0;
  unsigned long long local_mem = 0;
  bool local_mem_dedicated = false;
  bool fp16 = false;
  bool fp64 = false;
  int nv_cc_major = -1;  // NVIDIA compute capability where the driver reports it
  int nv_cc_minor = -1;

  bool is_gpu() const { return (type & CL_DEVICE_TYPE_GPU) != 0; }
  bool is_cpu() const { return (type & CL_DEVICE_TYPE_CPU) != 0; }
  bool is_nvidia() const;
  bool has_extension(const std::string& ext) const;
  // The most local memory one kernel's static __local arrays may take, in bytes, counting what
  // the driver adds. CL_DEVICE_LOCAL_MEM_SIZE everywhere except NVIDIA's driver on compute
  // capability 9.0, which reports 48 KB but builds and runs kernels whose static arrays are
  // larger, up to the SM's opt-in limit (docs/DESIGN.md; __local kernel arguments stay at 48 KB).
  unsigned long long kernel_local_mem() const;
  // The local memory NVIDIA's driver adds to a kernel's own static arrays, in bytes (16 in
  // session 10's kernel of 49152 bytes; 4 in tools/dynsmem_probe.cpp's): the mma variant counts
  // it in every tile's size, and kernel_local_mem() includes it.
  static constexpr unsigned long long kNvidiaLocalReserve = 16;
  const char* type_name() const;
  // The device name as the tuning database keys it: trimmed, lower case, PoCL's "pthread-"
  // (and similar driver) prefixes removed.
  std::string normalized_name() const;
  // "0:1 NVIDIA CUDA / NVIDIA H100 80GB HBM3 (GPU)"
  std::string label() const;
};

DeviceInfo describe_device(const cl::Platform& platform, const cl::Device& device, int pi, int di);

// Every device of every platform, in platform then device order. Empty when there is no
// OpenCL platform at all (no ICD installed).
std::vector<DeviceInfo> enumerate_devices();

// Resolves a device spec (see openna_context_create); "" means OPENNA_DEVICE, then the default.
// Throws NoDevice with the list of devices when nothing matches.
DeviceInfo select_device(const std::string& spec);

}  // namespace openna
