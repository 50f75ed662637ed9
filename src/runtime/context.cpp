// Context creation (own or wrapped OpenCL objects), the in-memory program cache and launches.
#include "runtime/context.hpp"

#include <cstdlib>
#include <sstream>

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
  // OPENNA_KERNEL_DEFINES (kernel development and tests): build options appended to every
  // program's, e.g. "-DV_LATE=0"; part of the program's key in both caches.
  const char* extra = std::getenv("OPENNA_KERNEL_DEFINES");
  const std::string opts = extra != nullptr && *extra != '\0' ? options + " " + extra : options;
  {
    // Held across the build so that two threads asking for the same program build it once.
    std::lock_guard<std::mutex> lock(programs_mutex_);
    const std::string key = file + "\n" + opts;
    auto it = programs_.find(key);
    if (it != programs_.end()) {
      ++cache_counters().memory_hits;
      program = it->second;
    } else {
      program = build_program(context_, dev_, kernels::program_source(file), opts, label);
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

const cl::Buffer& Context::tile_counter() {
  std::lock_guard<std::mutex> lock(counter_mutex_);
  if (tile_counter_() == nullptr) {
    cl_int zero[2] = {0, 0};
    tile_counter_ =
        cl::Buffer(context_, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof zero, zero);
  }
  return tile_counter_;
}

namespace {

// A buffer that entries of a descriptor cache refer to is being released: mark it (the cache's
// next call drops its entries). Runs on any thread, possibly after the context is gone.
void CL_CALLBACK descriptor_owner_released(cl_mem mem, void* user) {
  auto* cache = static_cast<std::weak_ptr<Context::DescriptorCache>*>(user);
  if (auto c = cache->lock()) {
    std::lock_guard<std::mutex> lock(c->mutex);
    c->watched.erase(mem);
    c->released.insert(mem);
  }
  delete cache;
}

}  // namespace

cl::Buffer Context::cached_descriptors(cl_mem a, cl_mem b, const std::string& key,
                                       std::size_t bytes,
                                       const std::function<cl::Event(const cl::Buffer&)>& build,
                                       std::vector<cl::Event>* events) {
  std::ostringstream full;
  full << static_cast<const void*>(a) << ' ' << static_cast<const void*>(b) << ' ' << key;
  const std::string k = full.str();
  DescriptorCache& c = *descriptors_;
  bool cacheable = true;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    for (auto it = c.entries.begin(); it != c.entries.end();) {
      const bool gone = c.released.count(it->second.a) || c.released.count(it->second.b);
      it = gone ? c.entries.erase(it) : std::next(it);
    }
    c.released.clear();
    auto it = c.entries.find(k);
    if (it != c.entries.end()) return it->second.buffer;
    // Watch both buffers (once each while they live); a callback that cannot be registered
    // leaves this call uncached.
    for (cl_mem m : {a, b}) {
      if (!cacheable || c.watched.count(m)) continue;
      auto* weak = new std::weak_ptr<DescriptorCache>(descriptors_);
      if (clSetMemObjectDestructorCallback(m, descriptor_owner_released, weak) != CL_SUCCESS) {
        delete weak;
        cacheable = false;
      } else {
        c.watched.insert(m);
      }
    }
  }
  cl::Buffer buffer;
  try {
    buffer = alloc(bytes);
  } catch (const cl::Error& e) {
    throw Error(OPENNA_ERROR_OUT_OF_MEMORY, "descriptors of " + std::to_string(bytes) +
                                                " bytes failed (" + cl_error_name(e.err()) + ")");
  }
  cl::Event ev = build(buffer);
  if (events) events->push_back(ev);
  std::lock_guard<std::mutex> lock(c.mutex);
  ++c.builds;
  if (cacheable) {
    if (c.entries.size() >= kMaxDescriptors) c.entries.clear();
    c.entries[k] = DescriptorCache::Entry{a, b, buffer};
  }
  return buffer;
}

std::size_t Context::descriptor_entries() {
  std::lock_guard<std::mutex> lock(descriptors_->mutex);
  return descriptors_->entries.size();
}

std::size_t Context::descriptor_builds() {
  std::lock_guard<std::mutex> lock(descriptors_->mutex);
  return descriptors_->builds;
}

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
