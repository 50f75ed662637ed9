// The OpenCL C files of cl_kernels/, embedded into the library at build time
// (cmake/embed_kernels.cmake generates the table), and the assembly of a program's source.
#pragma once

#include <cstddef>
#include <string>

namespace openna::kernels {

struct EmbeddedFile {
  const char* name;  // file name without folder, e.g. "na_naive.cl"
  const char* text;
  std::size_t size;
};
extern const EmbeddedFile kEmbeddedFiles[];
extern const std::size_t kNumEmbeddedFiles;

// The full source of a kernel file with its `#include "..."` lines replaced by the embedded
// files (each at most once). When OPENNA_KERNEL_DIR is set, files are read from that folder
// instead, for kernel iteration without rebuilding the library. Throws BuildError when a file is
// missing.
std::string program_source(const std::string& file);

}  // namespace openna::kernels
