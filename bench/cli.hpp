// Command-line parsing of openna-bench: the commands, their flags, and every check on the values
// that can be made without a device, in one function that returns Options or throws CliError
// (so bench/tests/test_cli.cpp can test it without running anything).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "openna/openna.h"
#include "variants/variant.hpp"

namespace openna::bench {

enum class Command { Help, Devices, Run, Tune, Simulate };
enum class Format { Table, Json, Csv };

// The problem as the user gave it: empty vectors and unset optionals were not given, so a
// preset's value (or the default) stays.
struct ProblemFlags {
  std::string preset;
  std::vector<int> shape, kernel, dilation, stride, causal;
  std::optional<int> batch, heads, heads_kv, head_dim, head_dim_v;
  std::optional<openna_dtype> dtype;
  std::optional<float> scale;
  bool any_axis_flag() const {
    return !kernel.empty() || !dilation.empty() || !stride.empty() || !causal.empty();
  }
};

struct Options {
  Command command = Command::Help;
  std::string help;  // usage text of Command::Help (or of a command's --help)
  ProblemFlags problem;
  std::string device;                 // "all", a device spec, or "" for the library's default
  std::vector<std::string> variants;  // {"auto"}, {"all"}, or family names
  std::vector<Pass> passes{Pass::Forward};
  int warmup = 2;
  int repeat = 10;
  Format format = Format::Table;
  bool check = false;
  bool probe = true;
  bool reprobe = false;
  bool baselines = true;
  double baseline_limit_ms = 3000;  // most time one baseline measurement may take, estimated
  bool dry_run = false;
  std::string config;               // simulate and run --config "K=V,..."
  std::string device_kind = "gpu";  // simulate without a device
  bool quiet = false;
};

struct CliError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// `args` without the program name. Throws CliError with a message meant for the user.
Options parse_args(const std::vector<std::string>& args);

// "64x64", "64,64" or "7" (one value for every axis): 1 to 3 integers >= lo (and <= hi).
std::vector<int> parse_dims(const std::string& flag, const std::string& text, int lo, int hi);

// Families a --variant may name (registered or not: a family that is not registered yet gives a
// clear per-row error at run time, not a usage error).
const std::vector<std::string>& known_families();

std::string usage();

}  // namespace openna::bench
