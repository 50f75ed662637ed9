// Assembles a program's source from the embedded kernel files (or OPENNA_KERNEL_DIR), resolving
// `#include "file"` so that the .cl files stay plain OpenCL C that an offline compiler also reads.
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "core/errors.hpp"
#include "runtime/embedded_kernels.hpp"

namespace openna::kernels {

namespace {

std::string read_file(const std::string& name) {
  if (const char* dir = std::getenv("OPENNA_KERNEL_DIR"); dir != nullptr && *dir != '\0') {
    std::ifstream in(std::string(dir) + "/" + name, std::ios::binary);
    if (!in) throw BuildError("OPENNA_KERNEL_DIR=" + std::string(dir) + ": cannot read " + name);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  for (std::size_t i = 0; i < kNumEmbeddedFiles; ++i) {
    if (name == kEmbeddedFiles[i].name) {
      return std::string(kEmbeddedFiles[i].text, kEmbeddedFiles[i].size);
    }
  }
  throw BuildError("kernel file " + name + " is not embedded in this build");
}

void expand(const std::string& name, std::set<std::string>& seen, std::string& out) {
  if (!seen.insert(name).second) return;
  std::istringstream in(read_file(name));
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line.compare(first, 8, "#include") == 0) {
      const auto open = line.find('"', first);
      const auto close = open == std::string::npos ? open : line.find('"', open + 1);
      if (close != std::string::npos) {
        expand(line.substr(open + 1, close - open - 1), seen, out);
        continue;
      }
    }
    out += line;
    out += '\n';
  }
}

}  // namespace

std::string program_source(const std::string& file) {
  std::set<std::string> seen;
  std::string out;
  expand(file, seen, out);
  return out;
}

}  // namespace openna::kernels
