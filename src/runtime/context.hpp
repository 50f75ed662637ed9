// The library's context: one device, its OpenCL context and in-order queue, the in-memory level
// of the program cache, and the launch helper that sets kernel arguments and enqueues under one
// lock (cl_kernel argument setting is not thread-safe, so threads sharing a context serialize
// there and nowhere else).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/cl.hpp"
#include "core/errors.hpp"
#include "runtime/device.hpp"

namespace openna {

// A cl_mem kernel argument (may be NULL), kept apart from pointers so that the C++ bindings'
// SVM overloads never see it.
struct MemArg {
  cl_mem mem;
};
// A __local buffer of `bytes` bytes.
struct LocalArg {
  std::size_t bytes;
};

// Launch geometry: global and local sizes in up to 3 dimensions.
struct Geometry {
  int dims = 1;
  std::size_t global[3] = {1, 1, 1};
  std::size_t local[3] = {1, 1, 1};
};

class Context {
 public:
  // A context of our own around one device (profiling enabled on the queue).
  explicit Context(const DeviceInfo& dev);
  // Around an application's objects (retained).
  Context(cl_context context, cl_device_id device, cl_command_queue queue);

  const DeviceInfo& device() const { return dev_; }
  const cl::Context& ocl_context() const { return context_; }
  const cl::CommandQueue& queue() const { return queue_; }
  bool profiling() const { return profiling_; }

  // A kernel of a program built from kernel file `file` with `options`, through the memory
  // cache of this context, then the disk cache. `label` names the variant in errors.
  cl::Kernel kernel(const std::string& file, const std::string& options, const char* name,
                    const std::string& label);

  template <typename... Args>
  cl::Event launch(cl::Kernel& kernel, const Geometry& g, const Args&... args) {
    std::lock_guard<std::mutex> lock(launch_mutex_);
    cl_uint index = 0;
    (set_arg(kernel, index++, args), ...);
    return enqueue(kernel, g);
  }

  cl::Buffer alloc(std::size_t bytes, cl_mem_flags flags = CL_MEM_READ_WRITE);

  // A device buffer of at least `bytes` for a variant's temporaries, kept and reused between
  // calls (allocating a few MB per call made PoCL's first touch clear fresh pages inside the
  // timed kernels) and grown when a call needs more; released with the context. Callers hold
  // the returned lock until every kernel using the buffer is enqueued: on the in-order queue,
  // the next holder's kernels then run after theirs. An allocation the device refuses is an
  // OPENNA_ERROR_OUT_OF_MEMORY "<what> of <bytes> bytes failed (<OpenCL error>)".
  std::unique_lock<std::mutex> lock_scratch() { return std::unique_lock<std::mutex>(scratch_mutex_); }
  const cl::Buffer& scratch(std::size_t bytes, const std::unique_lock<std::mutex>& held,
                            const std::string& what);
  void finish();

  // Two ints of device memory, zero, for kernels that hand out work through an atomic counter
  // (the persistent mma forward): such a kernel leaves them zero when it ends, and on the
  // context's in-order queue no two of them run at once. Created on first use.
  const cl::Buffer& tile_counter();

  // Device-built descriptors that depend only on two buffers' addresses and a geometry (the
  // TMA's tensor maps), kept for the next call with the same buffers and geometry (`key`). On a
  // miss, `build` enqueues the kernel that writes them into a fresh buffer of `bytes` bytes (its
  // event goes to *events); on a hit nothing is enqueued (the in-order queue runs every later
  // kernel after the build). An entry is dropped once `a` or `b` is released: a destructor
  // callback marks the handle and the next call drops its entries, so a handle that OpenCL
  // reuses for a new buffer never meets old descriptors. At most kMaxDescriptors entries are
  // kept (all are dropped past that). A buffer whose destructor callback cannot be registered
  // gets no entry: its descriptors are built on every call.
  static constexpr std::size_t kMaxDescriptors = 64;
  cl::Buffer cached_descriptors(cl_mem a, cl_mem b, const std::string& key, std::size_t bytes,
                                const std::function<cl::Event(const cl::Buffer&)>& build,
                                std::vector<cl::Event>* events);
  // Entries and descriptor builds so far (tests).
  std::size_t descriptor_entries();
  std::size_t descriptor_builds();

  // Shared with the destructor callbacks, which may run after the context is gone (they hold a
  // weak reference).
  struct DescriptorCache {
    struct Entry {
      cl_mem a, b;
      cl::Buffer buffer;
    };
    std::mutex mutex;
    std::map<std::string, Entry> entries;
    std::set<cl_mem> watched;   // buffers with a destructor callback registered and not released
    std::set<cl_mem> released;  // marked by the callbacks, dropped by the next call
    std::size_t builds = 0;
  };

 private:
  static void set_arg(cl::Kernel& k, cl_uint i, const MemArg& m);
  static void set_arg(cl::Kernel& k, cl_uint i, const cl::Buffer& b);
  static void set_arg(cl::Kernel& k, cl_uint i, const LocalArg& l);
  static void set_arg(cl::Kernel& k, cl_uint i, int v);
  static void set_arg(cl::Kernel& k, cl_uint i, float v);
  cl::Event enqueue(cl::Kernel& kernel, const Geometry& g);

  DeviceInfo dev_;
  cl::Context context_;
  cl::CommandQueue queue_;
  bool profiling_ = false;
  std::mutex programs_mutex_;
  std::map<std::string, cl::Program> programs_;  // key: file + "\n" + options
  std::mutex launch_mutex_;
  std::mutex scratch_mutex_;
  cl::Buffer scratch_;
  std::size_t scratch_bytes_ = 0;
  std::mutex counter_mutex_;
  cl::Buffer tile_counter_;
  std::shared_ptr<DescriptorCache> descriptors_ = std::make_shared<DescriptorCache>();
};

}  // namespace openna

// The C API's opaque handle.
struct openna_context {
  explicit openna_context(const openna::DeviceInfo& dev) : ctx(dev) {}
  openna_context(cl_context c, cl_device_id d, cl_command_queue q) : ctx(c, d, q) {}
  openna::Context ctx;
};
