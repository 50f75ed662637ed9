// Context creation (own or wrapped OpenCL objects), the in-memory program cache and launches.
#include "runtime/context.hpp"

#include "runtime/embedded_kernels.hpp"
#include "runtime/program_cache.hpp"

namespace openna {

Context::Context(const DeviceInfo& dev) : dev_(dev) {
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                   reinterpret_cast<cl_context_properties>(dev.platform()), 0};
  context_ = cl::Context(std::vector<cl::Device>{dev.device}, props);
  queue_ = cl::CommandQueue(context_, dev.device, CL_QUEUE_PROFILING_ENABLE);
  profiling_ = true;
}

Context::Context(cl_context context, cl_device_id device, cl_command_queue queue) {
  if (context == nullptr) throw InvalidArgument("context is NULL");
  if (device == nullptr) throw InvalidArgument("device is NULL");
  if (queue == nullptr) throw InvalidArgument("queue is NULL");
  context_ = cl::Context(context, /*retainObject=*/true);
  queue_ = cl::CommandQueue(queue, /*retainObject=*/true);
  cl::Device dev(device, /*retainObject=*/true);
  if (queue_.getInfo<CL_QUEUE_CONTEXT>()() != context) {
    throw InvalidArgument("queue does not belong to the given context");
  }
  if (queue_.getInfo<CL_QUEUE_DEVICE>()() != device) {
    throw InvalidArgument("queue does not belong to the given device");
  }
  const cl_command_queue_properties props = queue_.getInfo<CL_QUEUE_PROPERTIES>();
  if (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) {
    throw Unsupported("out-of-order command queues are not supported");
  }
  profiling_ = (props & CL_QUEUE_PROFILING_ENABLE) != 0;
  cl::Platform platform(dev.getInfo<CL_DEVICE_PLATFORM>(), /*retainObject=*/true);
  // Indices for labels: find this device among the enumerated ones (-1 when not listed).
  int pi = -1, di = -1;
  for (const DeviceInfo& d : enumerate_devices()) {
    if (d.device() == device) {
      pi = d.platform_index;
      di = d.device_index;
    }
  }
  dev_ = describe_device(platform, dev, pi, di);
}

cl::Kernel Context::kernel(const std::string& file, const std::string& options, const char* name,
                           const std::string& label) {
  cl::Program program;
  {
    // Held across the build so that two threads asking for the same program build it once.
    std::lock_guard<std::mutex> lock(programs_mutex_);
    const std::string key = file + "\n" + options;
    auto it = programs_.find(key);
    if (it != programs_.end()) {
      ++cache_counters().memory_hits;
      program = it->second;
    } else {
      program = build_program(context_, dev_, kernels::program_source(file), options, label);
      programs_.emplace(key, program);
    }
  }
  return cl::Kernel(program, name);
}

cl::Buffer Context::alloc(std::size_t bytes, cl_mem_flags flags) {
  return cl::Buffer(context_, flags, bytes == 0 ? 1 : bytes);
}

const cl::Buffer& Context::scratch(std::size_t bytes, const std::unique_lock<std::mutex>& held,
                                   const std::string& what) {
  if (!held.owns_lock() || held.mutex() != &scratch_mutex_) {
    throw Error(OPENNA_ERROR_DEVICE, "Context::scratch called without holding lock_scratch()");
  }
  if (bytes > scratch_bytes_) {
    scratch_ = cl::Buffer();  // release the old one before asking for the larger one
    scratch_bytes_ = 0;
    try {
      scratch_ = alloc(bytes);
    } catch (const cl::Error& e) {
      throw Error(OPENNA_ERROR_OUT_OF_MEMORY, what + " of " + std::to_string(bytes) +
                                                  " bytes failed (" + cl_error_name(e.err()) + ")");
    }
    scratch_bytes_ = bytes;
  }
  return scratch_;
}

void Context::finish() { queue_.finish(); }

void Context::set_arg(cl::Kernel& k, cl_uint i, const MemArg& m) {
  check_cl(clSetKernelArg(k(), i, sizeof(cl_mem), &m.mem), "clSetKernelArg");
}
void Context::set_arg(cl::Kernel& k, cl_uint i, const cl::Buffer& b) {
  const cl_mem mem = b();
  check_cl(clSetKernelArg(k(), i, sizeof(cl_mem), &mem), "clSetKernelArg");
}
void Context::set_arg(cl::Kernel& k, cl_uint i, const LocalArg& l) {
  check_cl(clSetKernelArg(k(), i, l.bytes, nullptr), "clSetKernelArg");
}
void Context::set_arg(cl::Kernel& k, cl_uint i, int v) {
  check_cl(clSetKernelArg(k(), i, sizeof v, &v), "clSetKernelArg");
}
void Context::set_arg(cl::Kernel& k, cl_uint i, float v) {
  check_cl(clSetKernelArg(k(), i, sizeof v, &v), "clSetKernelArg");
}

cl::Event Context::enqueue(cl::Kernel& kernel, const Geometry& g) {
  cl::NDRange global, local;
  if (g.dims == 1) {
    global = cl::NDRange(g.global[0]);
    local = cl::NDRange(g.local[0]);
  } else if (g.dims == 2) {
    global = cl::NDRange(g.global[0], g.global[1]);
    local = cl::NDRange(g.local[0], g.local[1]);
  } else {
    global = cl::NDRange(g.global[0], g.global[1], g.global[2]);
    local = cl::NDRange(g.local[0], g.local[1], g.local[2]);
  }
  cl::Event ev;
  queue_.enqueueNDRangeKernel(kernel, cl::NullRange, global, local, nullptr, &ev);
  return ev;
}

}  // namespace openna
