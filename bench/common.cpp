// Helpers of openna-bench (see common.hpp).
#include "common.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace openna::bench {

std::string cache_dir() {
  if (const char* d = std::getenv("OPENNA_CACHE_DIR"); d != nullptr && *d != '\0') return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x == '/') {
    return std::string(x) + "/openna";
  }
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    return std::string(h) + "/.cache/openna";
  }
  return "";
}

Stats stats_of(std::vector<double> s) {
  Stats r;
  r.count = static_cast<int>(s.size());
  if (s.empty()) return r;
  std::sort(s.begin(), s.end());
  const std::size_t n = s.size();
  r.median = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  r.min = s.front();
  r.max = s.back();
  return r;
}

std::string fmt(double v, int digits) {
  if (std::isnan(v)) return "-";
  char buf[64];
  // Large values as plain integers ("66210", not "6.621e+04"): easier to read in a table.
  if (std::fabs(v) >= std::pow(10.0, digits) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  }
  return buf;
}

std::string fmt_fixed(double v, int decimals) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

Progress::Progress(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}

Progress::~Progress() { done(); }

void Progress::update(const std::string& line) {
  if (quiet_) return;
  if (tty_) {
    std::string padded = line;
    if (padded.size() < last_len_) padded.append(last_len_ - padded.size(), ' ');
    std::fprintf(stderr, "\r%s", padded.c_str());
    last_len_ = line.size();
  } else {
    const double now =
        std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    if (now - last_plain_ < 5) return;
    last_plain_ = now;
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::note(const std::string& line) {
  if (quiet_) return;
  done();
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void Progress::done() {
  if (quiet_ || !tty_ || last_len_ == 0) return;
  std::fprintf(stderr, "\r%s\r", std::string(last_len_, ' ').c_str());
  std::fflush(stderr);
  last_len_ = 0;
}

}  // namespace openna::bench
