// The named problems of openna-bench (issue 3's presets) and the one function that turns the
// user's flags into the problems to run on a device: a preset with overrides, a problem given
// by --shape, or the default presets of the device's kind.
#pragma once

#include <string>
#include <vector>

#include "cli.hpp"
#include "openna/openna.h"

namespace openna::bench {

struct Preset {
  const char* name;
  const char* summary;
  openna_problem problem;
  bool gpu_default;  // run by default on GPUs (small-cpu is the CPU default)
};

const std::vector<Preset>& presets();
const Preset* find_preset(const std::string& name);

struct NamedProblem {
  std::string label;  // preset name, or "custom"
  openna_problem problem;
};

// The problems `flags` describe for a device of this kind (`cpu`: a CPU device, whose default
// preset is small-cpu and whose default dtype for --shape problems is f32). Each one is
// validated; throws CliError naming the flag that breaks a rule.
std::vector<NamedProblem> resolve_problems(const ProblemFlags& flags, bool cpu);

// Dense attention on the same grid: kernel = shape, no stride, dilation or causal masking.
openna_problem dense_of(const openna_problem& p);

}  // namespace openna::bench
