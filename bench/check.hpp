// `--check` and the tuner's verification: a variant with a configuration against the host
// reference, on the problem itself when the reference can afford it, else on a shrunken problem
// with the same compile-time options (kernel, stride, dilation, causal, head dims, dtype) and
// shorter axes, batch 1 and fewer heads. References are computed once per checked problem.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/problem.hpp"
#include "variants/variant.hpp"

namespace openna::bench {

struct OutputCheck {
  std::string name;  // out, lse, d_q, d_k, d_v
  double rel = 0;    // max |got - ref| / max |ref|
  double tol = 0;
  bool ok = false;
  bool non_finite = false;
};

struct CheckResult {
  bool ok = false;
  std::string problem;  // Problem::describe() of the checked problem
  bool shrunk = false;
  std::string config;  // the configuration that ran
  std::string note;    // e.g. why another configuration ran on the shrunken problem
  std::vector<OutputCheck> outputs;
  std::string error;            // the variant could not run (a failure too)
  std::string summary() const;  // "ok (out 1.2e-07, lse 3e-08)", "FAIL (...)"
};

// The problem the reference checks for `p` (see the file comment); `shrunk` says if it differs.
openna_problem check_problem(const Problem& p, bool* shrunk);

class Checker {
 public:
  // `strict`: a configuration that does not fit the check problem fails (the tuner); otherwise
  // the variant's own configuration for the check problem runs, and the note says so.
  CheckResult check(Context& ctx, const Variant& v, const Config& c, const Problem& p, Pass pass,
                    bool strict = false);

 private:
  struct Ref;
  std::map<std::string, std::shared_ptr<Ref>> refs_;
};

// OPENNA_BENCH_INJECT_ERROR (test-only): "1" or "all" perturbs one output element of every
// checked variant before comparison, a family name only that family's; unset or "0": nothing.
bool inject_error_for(const std::string& family);

}  // namespace openna::bench
