// Tuning database (see tuning_db.hpp). Format:
//   {"format": 1, "devices": {"<normalized name>": {"vendor": "...", "type": "GPU",
//     "drivers": {"<driver version>": {"<tuning key>": {"config": "...", "time_ms": ...,
//     "problem": "...", "date": "..."}}}}}}
// Parsed files are kept in memory and re-read when their modification time changes.
#include "runtime/tuning_db.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/errors.hpp"
#include "runtime/embedded_kernels.hpp"
#include "runtime/program_cache.hpp"

namespace openna {

namespace {

using json = nlohmann::json;

std::string family_of(const std::string& normalized) {
  std::istringstream s(normalized);
  std::string a, b;
  s >> a >> b;
  return b.empty() ? a : a + " " + b;
}

struct CachedFile {
  long long mtime = -1;
  json doc;
};

// The parsed file, or null when absent or unreadable (a broken tuning file never fails a call).
json load(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, CachedFile> cache;
  struct stat st {};
  if (path.empty() || stat(path.c_str(), &st) != 0) return json();
  const long long mtime = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL +
                          st.st_mtim.tv_nsec + static_cast<long long>(st.st_size);
  std::lock_guard<std::mutex> lock(mu);
  CachedFile& c = cache[path];
  if (c.mtime != mtime) {
    c.mtime = mtime;
    std::ifstream in(path);
    c.doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (c.doc.is_discarded() || !c.doc.is_object()) c.doc = json();
  }
  return c.doc;
}

std::optional<std::string> config_in(const json& drivers_entry, const std::string& key) {
  if (!drivers_entry.is_object()) return std::nullopt;
  auto it = drivers_entry.find(key);
  if (it == drivers_entry.end() || !it->is_object()) return std::nullopt;
  auto c = it->find("config");
  if (c == it->end() || !c->is_string()) return std::nullopt;
  return c->get<std::string>();
}

std::optional<TunedEntry> lookup_in(const json& doc, const DeviceInfo& dev,
                                    const std::string& key, const std::string& file) {
  if (!doc.is_object() || !doc.contains("devices") || !doc["devices"].is_object()) {
    return std::nullopt;
  }
  const json& devices = doc["devices"];
  const std::string name = dev.normalized_name();
  auto drivers_of = [](const json& d) -> const json* {
    if (!d.is_object() || !d.contains("drivers") || !d["drivers"].is_object()) return nullptr;
    return &d["drivers"];
  };
  // 1. exact device and driver; 2. same device, any driver.
  if (devices.contains(name)) {
    if (const json* drivers = drivers_of(devices[name])) {
      if (drivers->contains(dev.driver_version)) {
        if (auto c = config_in((*drivers)[dev.driver_version], key)) {
          return TunedEntry{*c, "exact", file};
        }
      }
      for (const auto& kv : drivers->items()) {
        if (auto c = config_in(kv.value(), key)) return TunedEntry{*c, "device", file};
      }
    }
  }
  // 3. device family; 4. vendor and type.
  for (int level = 0; level < 2; ++level) {
    for (const auto& dv : devices.items()) {
      const json& d = dv.value();
      bool match;
      if (level == 0) {
        match = family_of(dv.key()) == family_of(name);
      } else {
        match = d.is_object() && d.value("vendor", "") == dev.vendor &&
                d.value("type", "") == dev.type_name();
      }
      if (!match) continue;
      if (const json* drivers = drivers_of(d)) {
        for (const auto& kv : drivers->items()) {
          if (auto c = config_in(kv.value(), key)) {
            return TunedEntry{*c, level == 0 ? "family" : "vendor", file};
          }
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::string tuning_db_path() {
  if (const char* p = std::getenv("OPENNA_TUNING_DB"); p != nullptr && *p != '\0') return p;
  // The tuner's database lives beside the program cache, but is not switched off with it.
  std::string dir;
  if (const char* d = std::getenv("OPENNA_CACHE_DIR"); d != nullptr && *d != '\0') {
    dir = d;
  } else if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x == '/') {
    dir = std::string(x) + "/openna";
  } else if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    dir = std::string(h) + "/.cache/openna";
  }
  return dir.empty() ? "" : dir + "/tuning.json";
}

// The database shipped inside the library (data/tuning_builtin.json, embedded at build time).
const json& builtin_db() {
  static const json doc = [] {
    for (std::size_t i = 0; i < kernels::kNumEmbeddedFiles; ++i) {
      if (std::string(kernels::kEmbeddedFiles[i].name) == "tuning_builtin.json") {
        json d = json::parse(kernels::kEmbeddedFiles[i].text, nullptr, false);
        return d.is_discarded() ? json() : d;
      }
    }
    return json();
  }();
  return doc;
}

std::optional<TunedEntry> lookup_tuned(const DeviceInfo& dev, const std::string& key) {
  if (const char* user = std::getenv("OPENNA_TUNING_FILE"); user != nullptr && *user != '\0') {
    if (auto e = lookup_in(load(user), dev, key, user)) return e;
  }
  const std::string path = tuning_db_path();
  if (auto e = lookup_in(load(path), dev, key, path)) return e;
  if (const char* off = std::getenv("OPENNA_BUILTIN_TUNING"); off != nullptr && *off == '0') {
    return std::nullopt;
  }
  return lookup_in(builtin_db(), dev, key, "builtin");
}

void store_tuned(const DeviceInfo& dev, const TuneRecord& rec, const std::string& path) {
  if (path.empty()) throw InvalidArgument("no tuning database path (set OPENNA_TUNING_DB)");
  json doc = load(path);
  if (!doc.is_object()) doc = json::object();
  doc["format"] = 1;
  json& d = doc["devices"][dev.normalized_name()];
  d["vendor"] = dev.vendor;
  d["type"] = dev.type_name();
  d["name"] = dev.name;
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  d["drivers"][dev.driver_version][rec.key] = {{"config", rec.config},
                                               {"time_ms", rec.time_ms},
                                               {"problem", rec.problem},
                                               {"date", date}};
  if (const auto slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
    make_dirs(path.substr(0, slash));  // a failure shows up as the write failing below
  }
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << doc.dump(2) << "\n";
    if (!out) throw Error(OPENNA_ERROR_DEVICE, "cannot write tuning database " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(OPENNA_ERROR_DEVICE, "cannot rename " + tmp + " to " + path);
  }
}

}  // namespace openna
