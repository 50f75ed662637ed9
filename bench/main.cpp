// openna-bench: the command-line benchmark over every OpenCL device (docs/BENCH.md). Parses the
// command line, runs the command, and turns every error into a message and an exit status.
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands.hpp"
#include "core/errors.hpp"

int main(int argc, char** argv) {
  using namespace openna::bench;
  const std::vector<std::string> args(argv + 1, argv + argc);
  Options o;
  try {
    o = parse_args(args);
  } catch (const CliError& e) {
    std::fprintf(stderr, "openna-bench: %s\n(openna-bench help for usage)\n", e.what());
    return kExitUsage;
  }
  try {
    switch (o.command) {
      case Command::Help:
        std::fputs(o.help.c_str(), stdout);
        return kExitOk;
      case Command::Devices:
        return cmd_devices(o);
      case Command::Run:
        return cmd_run(o);
      case Command::Tune:
        return cmd_tune(o);
      case Command::Simulate:
        return cmd_simulate(o);
    }
  } catch (const CliError& e) {
    std::fprintf(stderr, "openna-bench: %s\n", e.what());
    return kExitUsage;
  } catch (const openna::NoDevice& e) {
    std::fprintf(stderr, "openna-bench: %s\n", e.what());
    return kExitNoDevice;
  } catch (const cl::Error& e) {
    std::fprintf(stderr, "openna-bench: OpenCL error: %s (%s)\n", e.what(),
                 openna::cl_error_name(e.err()));
    return kExitFailed;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "openna-bench: %s\n", e.what());
    return kExitFailed;
  }
  return kExitFailed;
}
