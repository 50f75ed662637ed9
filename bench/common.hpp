// Small helpers shared by openna-bench's commands: the cache folder, statistics over repeated
// timings, number formatting, and the progress line on stderr.
#pragma once

#include <string>
#include <vector>

namespace openna::bench {

// The folder the library's tuning database and program cache live in (same rules as
// tuning_db_path(): OPENNA_CACHE_DIR, else $XDG_CACHE_HOME/openna, else ~/.cache/openna); "" when
// none can be determined.
std::string cache_dir();

struct Stats {
  int count = 0;
  double median = 0, min = 0, max = 0;
};
Stats stats_of(std::vector<double> samples);

// "%.*g"-style with fixed significant digits; "-" for NaN.
std::string fmt(double v, int digits = 3);
std::string fmt_fixed(double v, int decimals);

// One line on stderr that a terminal overwrites in place; when stderr is not a terminal (CI
// logs), a plain line at most every few seconds. Silent when quiet.
class Progress {
 public:
  explicit Progress(bool quiet);
  ~Progress();
  void update(const std::string& line);
  void note(const std::string& line);  // a message that stays
  void done();

 private:
  bool quiet_;
  bool tty_;
  std::size_t last_len_ = 0;
  double last_plain_ = -1e9;  // steady-clock seconds of the last plain line
};

}  // namespace openna::bench
