// The persistent tuning database: tile configurations that `openna-bench tune` measured best,
// keyed by normalized device name and driver version. Normal calls only read it; lookup falls
// back from the exact device and driver to the same device under any driver, then the device
// family (the first two words of the name), then vendor and type, then nothing (the variant's
// built-in default). A user file (OPENNA_TUNING_FILE) is searched before the one the tuner writes
// under the cache folder, and both before the database shipped in the library
// (data/tuning_builtin.json; OPENNA_BUILTIN_TUNING=0 ignores it).
#pragma once

#include <optional>
#include <string>

#include "runtime/device.hpp"

namespace openna {

struct TunedEntry {
  std::string config;  // Config::str()
  std::string source;  // which level matched: "exact", "device", "family", "vendor"
  std::string file;
};

// The folder-level database the tuner writes: <cache dir>/tuning.json, or "" when there is no
// cache folder. OPENNA_TUNING_DB overrides the path.
std::string tuning_db_path();

std::optional<TunedEntry> lookup_tuned(const DeviceInfo& dev, const std::string& key);

struct TuneRecord {
  std::string key;      // Variant::tuning_key
  std::string config;   // Config::str()
  double time_ms = 0;   // median kernel time of the winner
  std::string problem;  // Problem::describe() of the tuned problem
};
// Adds or replaces the record for this device and driver in the database at `path` (written to
// a temporary file and renamed). Throws Error on I/O failure.
void store_tuned(const DeviceInfo& dev, const TuneRecord& rec, const std::string& path);

}  // namespace openna
