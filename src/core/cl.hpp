// The one place that includes OpenCL inside the library: the Khronos C++ bindings with
// exceptions on, targeting OpenCL 3.0 entry points where the platform has them and 1.2 as the
// minimum (1.1 in the define, see there; the bindings pick clCreateCommandQueueWithProperties only on 2.0+ platforms).
// cl::Error is turned into the library's typed errors at the API boundary.
#pragma once

#define CL_HPP_ENABLE_EXCEPTIONS
#define CL_HPP_TARGET_OPENCL_VERSION 300
#define CL_HPP_MINIMUM_OPENCL_VERSION 110  // 120 trips a bug in the 2023.02 bindings (version helpers undefined)
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 300
#endif
#include <CL/opencl.hpp>
