// Rendering of run rows (see report.hpp).
#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "openna/openna.h"

namespace openna::bench {

namespace {

using json = nlohmann::ordered_json;  // fields in the order docs/BENCH.md lists them

std::string ratio(double v) { return std::isnan(v) ? "-" : fmt_fixed(v, v < 10 ? 2 : 1) + "x"; }
std::string ms(double v) { return std::isnan(v) ? "-" : fmt(v, 4); }

json num(double v) { return std::isnan(v) ? json(nullptr) : json(v); }

json timing_json(const Timing& t) {
  if (!t.ok) return {{"ms", nullptr}, {"note", t.error}};
  json j = {
      {"ms", t.ms.median}, {"min_ms", t.ms.min}, {"max_ms", t.ms.max}, {"repeats", t.ms.count}};
  if (!t.note.empty()) j["note"] = t.note;
  if (t.kernel_ms.size() > 1) j["kernel_ms"] = t.kernel_ms;
  return j;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string csv_num(double v) {
  if (std::isnan(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

double worst_rel(const CheckResult& c) {
  double w = 0;
  for (const OutputCheck& o : c.outputs) w = std::max(w, o.non_finite ? INFINITY : o.rel);
  return c.outputs.empty() ? kNaN : w;
}

}  // namespace

void print_table(std::FILE* f, const std::vector<DeviceSummary>& devices,
                 const std::vector<Row>& rows, const std::vector<std::string>& general) {
  for (const DeviceSummary& d : devices) {
    std::fprintf(f, "device %s\n", d.label.c_str());
    if (d.peak.ok) {
      std::fprintf(f, "  measured f32 FMA peak %s GFLOP/s, copy bandwidth %s GB/s\n",
                   fmt(d.peak.fma_gflops, 4).c_str(), fmt(d.peak.copy_gbs, 4).c_str());
    } else if (!d.peak.error.empty()) {
      std::fprintf(f, "  no measured peak: %s\n", d.peak.error.c_str());
    }
  }
  std::fprintf(f, "\n");
  const bool any_check =
      std::any_of(rows.begin(), rows.end(), [](const Row& r) { return r.check.has_value(); });
  std::vector<std::string> head = {"#",      "dev",      "problem",   "pass",   "dtype",  "variant",
                                   "config", "source",   "median ms", "min ms", "max ms", "TFLOP/s",
                                   "peak",   "vs naive", "vs dense",  "sim"};
  if (any_check) head.push_back("check");
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> notes;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const std::string n = std::to_string(i + 1);
    std::vector<std::string> c = {n,
                                  r.device_index,
                                  r.problem_label,
                                  r.pass,
                                  r.dtype,
                                  r.variant.empty() ? r.family : r.variant,
                                  r.config.empty() ? "-" : r.config,
                                  r.config_source.empty() ? "-" : r.config_source};
    if (!r.error.empty()) {
      c.insert(c.end(), {"error", "-", "-", "-", "-", "-", "-", "-"});
      notes.push_back(n + ": " + r.family + " " + r.pass + " on " + r.problem + ": " + r.error);
    } else {
      c.insert(c.end(),
               {ms(r.time.ms.median), ms(r.time.ms.min), ms(r.time.ms.max), fmt(r.tflops, 3),
                std::isnan(r.peak_fraction) ? "-" : fmt_fixed(100 * r.peak_fraction, 1) + "%",
                ratio(r.vs_naive), ratio(r.vs_dense), ratio(r.sim_speedup)});
      if (r.time.kernel_ms.size() > 1) {
        std::string s = n + ": kernels (median ms, in launch order):";
        for (std::size_t k = 0; k < r.time.kernel_ms.size(); ++k)
          s += (k == 0 ? " " : " + ") + fmt(r.time.kernel_ms[k], 4);
        notes.push_back(s);
      }
      if (!r.naive.ok && r.naive.error != "off" && !r.naive.error.empty()) {
        notes.push_back(n + ": naive baseline: " + r.naive.error);
      } else if (!r.naive.note.empty()) {
        notes.push_back(n + ": naive baseline: " + r.naive.note);
      }
      if (!r.dense.ok && r.dense.error != "off" && !r.dense.error.empty()) {
        notes.push_back(n + ": dense baseline: " + r.dense.error);
      } else if (!r.dense.note.empty()) {
        notes.push_back(n + ": dense baseline: " + r.dense.note);
      }
    }
    if (any_check) {
      c.push_back(!r.check ? "-" : r.check->ok ? "ok" : "FAIL");
      if (r.check) {
        std::string s = n + ": check " + r.check->summary() + " on " + r.check->problem;
        if (r.check->shrunk) s += " (shrunken: same compile-time options, smaller sizes)";
        if (!r.check->note.empty()) s += "; " + r.check->note;
        notes.push_back(s);
      }
    }
    cells.push_back(c);
  }
  std::vector<std::size_t> width(head.size());
  for (std::size_t j = 0; j < head.size(); ++j) {
    width[j] = head[j].size();
    for (const auto& c : cells) width[j] = std::max(width[j], c[j].size());
  }
  // Text columns left-aligned, numbers right-aligned.
  auto left = [](std::size_t j) { return j >= 1 && j <= 7; };
  auto line = [&](const std::vector<std::string>& c) {
    std::string s;
    for (std::size_t j = 0; j < c.size(); ++j) {
      const std::string pad(width[j] - c[j].size(), ' ');
      s += (j ? "  " : "") + (left(j) ? c[j] + pad : pad + c[j]);
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    std::fprintf(f, "%s\n", s.c_str());
  };
  line(head);
  for (const auto& c : cells) line(c);
  notes.insert(notes.end(), general.begin(), general.end());
  if (!notes.empty()) {
    std::fprintf(f, "\n");
    for (const std::string& s : notes) std::fprintf(f, "%s\n", s.c_str());
  }
}

void print_json(std::FILE* f, const std::vector<DeviceSummary>& devices,
                const std::vector<Row>& rows, const std::vector<std::string>& notes, bool ok) {
  json j;
  j["tool"] = "openna-bench";
  j["version"] = openna_version(nullptr, nullptr, nullptr);
  j["ok"] = ok;
  j["devices"] = json::array();
  for (const DeviceSummary& d : devices) {
    json dj = {{"index", d.index}, {"label", d.label}, {"name", d.name}, {"driver", d.driver}};
    dj["fma_gflops"] = d.peak.ok ? json(d.peak.fma_gflops) : json(nullptr);
    dj["copy_gbs"] = d.peak.ok ? json(d.peak.copy_gbs) : json(nullptr);
    if (!d.peak.ok && !d.peak.error.empty()) dj["probe_error"] = d.peak.error;
    j["devices"].push_back(dj);
  }
  j["rows"] = json::array();
  for (const Row& r : rows) {
    json rj = {{"device_index", r.device_index},
               {"device", r.device},
               {"problem_label", r.problem_label},
               {"problem", r.problem},
               {"pass", r.pass},
               {"dtype", r.dtype},
               {"family", r.family},
               {"variant", r.variant},
               {"config", r.config},
               {"config_source", r.config_source},
               {"error", r.error.empty() ? json(nullptr) : json(r.error)}};
    const bool t = r.error.empty() && r.time.ok;
    rj["median_ms"] = t ? json(r.time.ms.median) : json(nullptr);
    rj["min_ms"] = t ? json(r.time.ms.min) : json(nullptr);
    rj["max_ms"] = t ? json(r.time.ms.max) : json(nullptr);
    rj["repeats"] = t ? r.time.ms.count : 0;
    rj["warmup"] = r.time.warmup;
    rj["kernel_ms"] = t ? json(r.time.kernel_ms) : json(nullptr);
    rj["useful_flops"] = r.flops;
    rj["tflops"] = num(r.tflops);
    rj["peak_fraction"] = num(r.peak_fraction);
    rj["naive"] = timing_json(r.naive);
    rj["dense"] = timing_json(r.dense);
    rj["speedup_vs_naive"] = num(r.vs_naive);
    rj["speedup_vs_dense"] = num(r.vs_dense);
    rj["sim_attainable_speedup"] = num(r.sim_speedup);
    rj["sim_density"] = num(r.sim_density);
    if (r.check) {
      json cj = {{"ok", r.check->ok},
                 {"problem", r.check->problem},
                 {"shrunk", r.check->shrunk},
                 {"config", r.check->config}};
      if (!r.check->error.empty()) cj["error"] = r.check->error;
      if (!r.check->note.empty()) cj["note"] = r.check->note;
      json errs = json::object();
      for (const OutputCheck& o : r.check->outputs) {
        errs[o.name] = {{"max_rel_error", o.non_finite ? json(nullptr) : json(o.rel)},
                        {"tolerance", o.tol},
                        {"ok", o.ok},
                        {"non_finite", o.non_finite}};
      }
      cj["outputs"] = errs;
      rj["check"] = cj;
    } else {
      rj["check"] = nullptr;
    }
    j["rows"].push_back(rj);
  }
  j["notes"] = notes;
  std::fprintf(f, "%s\n", j.dump(2).c_str());
}

void print_csv(std::FILE* f, const std::vector<Row>& rows) {
  std::fprintf(f,
               "device_index,device,problem_label,problem,pass,dtype,family,variant,config,"
               "config_source,median_ms,min_ms,max_ms,repeats,tflops,peak_fraction,naive_ms,"
               "speedup_vs_naive,dense_ms,speedup_vs_dense,sim_attainable_speedup,sim_density,"
               "check,check_max_rel_error,error\n");
  for (const Row& r : rows) {
    const bool t = r.error.empty() && r.time.ok;
    std::vector<std::string> c = {r.device_index,
                                  r.device,
                                  r.problem_label,
                                  r.problem,
                                  r.pass,
                                  r.dtype,
                                  r.family,
                                  r.variant,
                                  r.config,
                                  r.config_source,
                                  t ? csv_num(r.time.ms.median) : "",
                                  t ? csv_num(r.time.ms.min) : "",
                                  t ? csv_num(r.time.ms.max) : "",
                                  t ? std::to_string(r.time.ms.count) : "0",
                                  csv_num(r.tflops),
                                  csv_num(r.peak_fraction),
                                  r.naive.ok ? csv_num(r.naive.ms.median) : "",
                                  csv_num(r.vs_naive),
                                  r.dense.ok ? csv_num(r.dense.ms.median) : "",
                                  csv_num(r.vs_dense),
                                  csv_num(r.sim_speedup),
                                  csv_num(r.sim_density),
                                  !r.check      ? ""
                                  : r.check->ok ? "ok"
                                                : "fail",
                                  r.check ? csv_num(worst_rel(*r.check)) : "",
                                  r.error};
    std::string line;
    for (std::size_t i = 0; i < c.size(); ++i) line += (i ? "," : "") + csv_field(c[i]);
    std::fprintf(f, "%s\n", line.c_str());
  }
}

}  // namespace openna::bench
