// The rows of `openna-bench run` and their three renderings: an aligned table (with numbered
// notes below it for errors, skipped baselines and check details), JSON and CSV. docs/BENCH.md
// describes every column.
#pragma once

#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "check.hpp"
#include "measure.hpp"
#include "probe.hpp"

namespace openna::bench {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct DeviceSummary {
  std::string index;  // "P:D"
  std::string label;
  std::string name;
  std::string driver;
  Peak peak;
};

struct Row {
  std::string device_index;   // "P:D"
  std::string device;         // device name
  std::string problem_label;  // preset name or "custom"
  std::string problem;        // Problem::describe()
  std::string family, variant, config, config_source, dtype, pass;
  std::string error;  // the row's variant could not run (the row then has no times)
  Timing time;
  double flops = 0;  // useful FLOPs per call (docs/BENCH.md)
  double tflops = kNaN;
  double peak_fraction = kNaN;  // of the measured f32 FMA peak
  Timing naive, dense;          // baselines: naive on the problem, this variant on dense
  double vs_naive = kNaN, vs_dense = kNaN;
  double sim_speedup = kNaN, sim_density = kNaN;
  std::optional<CheckResult> check;
};

// `notes`: remarks that belong to no row (variants that --variant all left out, and why).
void print_table(std::FILE* f, const std::vector<DeviceSummary>& devices,
                 const std::vector<Row>& rows, const std::vector<std::string>& notes);
void print_json(std::FILE* f, const std::vector<DeviceSummary>& devices,
                const std::vector<Row>& rows, const std::vector<std::string>& notes, bool ok);
void print_csv(std::FILE* f, const std::vector<Row>& rows);

}  // namespace openna::bench
