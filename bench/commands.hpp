// The commands of openna-bench, each a function from parsed options to an exit status, and the
// exit statuses themselves (docs/BENCH.md lists them).
#pragma once

#include <string>
#include <vector>

#include "cli.hpp"
#include "runtime/device.hpp"

namespace openna::bench {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;    // a check failed, or a requested variant could not run
constexpr int kExitUsage = 2;     // bad command line or problem
constexpr int kExitNoDevice = 3;  // no OpenCL platform, or no device matches --device

// "all": every device; "default" or "": the library's default; otherwise select_device(spec).
// Throws NoDevice with the list of devices when nothing matches or there is no platform.
std::vector<DeviceInfo> resolve_devices(const std::string& spec);

int cmd_devices(const Options& o);
int cmd_run(const Options& o);
int cmd_tune(const Options& o);
int cmd_simulate(const Options& o);

}  // namespace openna::bench
