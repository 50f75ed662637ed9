// Typed errors inside the library. Every public entry point converts them into one openna_status
// and a message (api/c_api.cpp); nothing else ever escapes the library.
#pragma once

#include <stdexcept>
#include <string>

#include "openna/openna.h"

namespace openna {

class Error : public std::runtime_error {
 public:
  Error(openna_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  openna_status status() const noexcept { return status_; }

 private:
  openna_status status_;
};

// A problem, argument or buffer that breaks a rule of SPEC.md section 4.
struct InvalidArgument : Error {
  explicit InvalidArgument(const std::string& m) : Error(OPENNA_ERROR_INVALID_ARGUMENT, m) {}
};
// Valid, but this device, variant or build cannot run it.
struct Unsupported : Error {
  explicit Unsupported(const std::string& m) : Error(OPENNA_ERROR_UNSUPPORTED, m) {}
};
struct NoDevice : Error {
  explicit NoDevice(const std::string& m) : Error(OPENNA_ERROR_NO_DEVICE, m) {}
};
struct BuildError : Error {
  explicit BuildError(const std::string& m) : Error(OPENNA_ERROR_BUILD, m) {}
};

// Name of an OpenCL error code ("CL_OUT_OF_RESOURCES").
const char* cl_error_name(int code);

// Throws OutOfMemory/Device errors naming the call and the code when code != CL_SUCCESS.
void check_cl(int code, const char* call);
[[noreturn]] void throw_cl(int code, const std::string& call);

}  // namespace openna
