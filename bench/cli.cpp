// openna-bench's command line (see cli.hpp). Every flag is read as a string through
// Boost.ProgramOptions and checked here, so that each mistake gets a message naming the flag and
// the rule, rather than Boost's generic "invalid option value".
#include "cli.hpp"

#include <boost/program_options.hpp>
#include <cmath>
#include <sstream>

#include "core/errors.hpp"
#include "presets.hpp"

namespace openna::bench {

namespace po = boost::program_options;

namespace {

long long parse_int(const std::string& flag, const std::string& text, long long lo, long long hi) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size()) {
    throw CliError(flag + " \"" + text + "\": not an integer");
  }
  if (v < lo || v > hi) {
    throw CliError(flag + " " + text + ": must be between " + std::to_string(lo) + " and " +
                   std::to_string(hi));
  }
  return v;
}

double parse_double(const std::string& flag, const std::string& text) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || !std::isfinite(v)) {
    throw CliError(flag + " \"" + text + "\": not a finite number");
  }
  return v;
}

openna_dtype parse_dtype(const std::string& s) {
  if (s == "f32") return OPENNA_F32;
  if (s == "f16") return OPENNA_F16;
  if (s == "bf16") return OPENNA_BF16;
  throw CliError("--dtype \"" + s + "\": expected f32, f16 or bf16");
}

std::vector<Pass> parse_pass(const std::string& s) {
  if (s == "fwd") return {Pass::Forward};
  if (s == "bwd") return {Pass::Backward};
  if (s == "both") return {Pass::Forward, Pass::Backward};
  throw CliError("--pass \"" + s + "\": expected fwd, bwd or both");
}

std::vector<std::string> parse_variants(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    bool known = item == "auto" || item == "all";
    for (const std::string& f : known_families()) known |= item == f;
    if (!known) {
      std::string list = "auto, all";
      for (const std::string& f : known_families()) list += ", " + f;
      throw CliError("--variant \"" + item + "\": expected one of " + list +
                     " (or a comma-separated list of families)");
    }
    out.push_back(item);
  }
  if (out.empty()) throw CliError("--variant is empty");
  if (out.size() > 1) {
    for (const std::string& v : out)
      if (v == "auto" || v == "all") throw CliError("--variant " + v + " cannot be in a list");
  }
  return out;
}

// One flag per line reads better than the formatter's packing.
// clang-format off
po::options_description problem_options() {
  po::options_description d("Problem (a preset, or --shape with --kernel; flags override a preset)");
  d.add_options()
      ("preset", po::value<std::string>(), "named problem: flux-2d, vision-2d, vision-2d-dilated, "
                                           "video-3d, long-1d-causal, small-cpu")
      ("shape", po::value<std::string>(), "grid, e.g. 64x64 (1 to 3 axes; sets the rank)")
      ("kernel", po::value<std::string>(), "neighborhood size per axis, e.g. 13x13 (or one value)")
      ("dilation", po::value<std::string>(), "dilation per axis (default 1)")
      ("stride", po::value<std::string>(), "stride per axis (default 1)")
      ("causal", po::value<std::string>(), "causal flag per axis, e.g. 1x0 (default 0)")
      ("batch", po::value<std::string>(), "batch size (default 1)")
      ("heads", po::value<std::string>(), "query heads (default 4 with --shape)")
      ("heads-kv", po::value<std::string>(), "key/value heads, dividing --heads (default: heads)")
      ("head-dim", po::value<std::string>(), "q/k head dimension (default 64 with --shape)")
      ("head-dim-v", po::value<std::string>(), "v/out head dimension (default: head-dim)")
      ("dtype", po::value<std::string>(), "f32, f16 or bf16 (default: the preset's; with --shape "
                                          "f16 on GPUs, f32 on CPUs)")
      ("scale", po::value<std::string>(), "softmax scale (default 1/sqrt(head-dim))");
  return d;
}

po::options_description command_options(Command c) {
  po::options_description d("Options");
  d.add_options()("help,h", "this help");
  switch (c) {
    case Command::Devices:
      d.add_options()
          ("device", po::value<std::string>(), "all (default), default, or a device spec")
          ("reprobe", "measure the peaks again instead of using the cache")
          ("no-probe", "do not measure or show the peaks")
          ("json", "JSON output")
          ("quiet,q", "no progress on stderr");
      break;
    case Command::Run:
      d.add_options()
          ("device", po::value<std::string>(), "all (default), default (the library's choice), "
                                               "or a device spec: gpu, cpu, P:D, or part of the "
                                               "platform/device name")
          ("variant", po::value<std::string>(), "auto (default: the dispatcher's choice), all, or "
                                                "naive|fused|mma (comma-separated list allowed)")
          ("pass", po::value<std::string>(), "fwd (default), bwd or both")
          ("config", po::value<std::string>(), "tile configuration \"K=V,...\" for the one "
                                               "family --variant names (default: the "
                                               "dispatcher's, from the tuning database or the "
                                               "variant's default)")
          ("warmup", po::value<std::string>(), "untimed calls before timing (default 2)")
          ("repeat", po::value<std::string>(), "timed calls (default 10)")
          ("check", "compare each variant with the host reference (non-zero exit on mismatch)")
          ("json", "JSON output")
          ("csv", "CSV output")
          ("no-baselines", "do not measure the naive and dense baselines")
          ("baseline-limit-ms", po::value<std::string>(),
           "most estimated device time for one baseline's calls: beyond it fewer repeats, or "
           "skipped (default 3000)")
          ("no-probe", "do not measure the device peak (no fraction-of-peak column)")
          ("reprobe", "measure the device peak again")
          ("quiet,q", "no progress on stderr");
      break;
    case Command::Tune:
      d.add_options()
          ("device", po::value<std::string>(), "default (the library's default device; the "
                                               "default), all, or a device spec")
          ("variant", po::value<std::string>(), "auto (default: the dispatcher's family), all, "
                                                "or a family")
          ("pass", po::value<std::string>(), "fwd (default), bwd or both")
          ("warmup", po::value<std::string>(), "untimed calls per candidate (default 2)")
          ("repeat", po::value<std::string>(), "timed calls per candidate (default 10)")
          ("dry-run", "list the candidates and the dispatcher's current pick; run nothing")
          ("quiet,q", "no progress on stderr");
      break;
    case Command::Simulate:
      d.add_options()
          ("variant", po::value<std::string>(), "all (default), or a family")
          ("pass", po::value<std::string>(), "fwd (default), bwd or both")
          ("config", po::value<std::string>(), "tile configuration \"K=V,...\" (default: the "
                                               "variant's default for the device)")
          ("device-kind", po::value<std::string>(), "gpu (default) or cpu: the synthetic device "
                                                    "whose default configuration is simulated")
          ("device", po::value<std::string>(), "simulate for a real device's default instead")
          ("json", "JSON output");
      break;
    case Command::Help:
      break;
  }
  if (c == Command::Run || c == Command::Tune || c == Command::Simulate) d.add(problem_options());
  return d;
}
// clang-format on

const char* command_name(Command c) {
  switch (c) {
    case Command::Devices:
      return "devices";
    case Command::Run:
      return "run";
    case Command::Tune:
      return "tune";
    case Command::Simulate:
      return "simulate";
    case Command::Help:
      return "help";
  }
  return "?";
}

bool parse_command(const std::string& s, Command& c) {
  for (Command k :
       {Command::Devices, Command::Run, Command::Tune, Command::Simulate, Command::Help}) {
    if (s == command_name(k)) {
      c = k;
      return true;
    }
  }
  return false;
}

std::string command_help(Command c) {
  std::ostringstream s;
  s << "usage: openna-bench " << command_name(c) << " [options]\n";
  switch (c) {
    case Command::Devices:
      s << "Lists every OpenCL platform and device, with the measured f32 FMA peak and copy\n"
           "bandwidth (cached per device and driver under the cache folder).\n";
      break;
    case Command::Run:
      s << "Times the variants on the problem(s) of every selected device. With no problem\n"
           "flags: the default presets (small-cpu on CPUs; flux-2d, vision-2d,\n"
           "vision-2d-dilated, video-3d and long-1d-causal on GPUs).\n";
      break;
    case Command::Tune:
      s << "Searches a variant's tile configurations for the problem on a device, verifies\n"
           "each against the host reference, times it, and stores the winner in the tuning\n"
           "database that the dispatcher reads.\n";
      break;
    case Command::Simulate:
      s << "The box-tiling simulator alone (no device needed): query tiles, key chunks per\n"
           "tile, computed and useful score entries, density, attainable speedup over dense.\n";
      break;
    case Command::Help:
      break;
  }
  s << "\n" << command_options(c);
  return s.str();
}

}  // namespace

const std::vector<std::string>& known_families() {
  static const std::vector<std::string> f = {"naive", "fused", "mma"};
  return f;
}

std::vector<int> parse_dims(const std::string& flag, const std::string& text, int lo, int hi) {
  std::vector<int> out;
  std::string cur;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == 'x' || text[i] == 'X' || text[i] == ',') {
      out.push_back(static_cast<int>(parse_int(flag, cur, lo, hi)));
      cur.clear();
    } else {
      cur += text[i];
    }
  }
  if (out.size() > 3) throw CliError(flag + " \"" + text + "\": at most 3 axes");
  return out;
}

std::string usage() {
  return "usage: openna-bench <command> [options]\n"
         "\n"
         "commands:\n"
         "  devices    list OpenCL devices with their measured f32 FMA peak and copy bandwidth\n"
         "  run        time the variants on a problem or the default presets (table, --json, "
         "--csv)\n"
         "  tune       search, verify and time tile configurations; store the winner\n"
         "  simulate   the box-tiling simulator alone (no device needed)\n"
         "  help CMD   the options of a command (or: openna-bench CMD --help)\n"
         "\n"
         "examples:\n"
         "  openna-bench run                              default presets on every device\n"
         "  openna-bench run --preset small-cpu --check\n"
         "  openna-bench run --shape 64x64 --kernel 13x13 --heads 8 --head-dim 64 "
         "--variant all --pass both\n"
         "  openna-bench tune --preset vision-2d --device gpu --dry-run\n"
         "  openna-bench simulate --preset vision-2d-dilated\n"
         "\n"
         "See docs/BENCH.md for the columns, FLOP conventions and timing method.\n";
}

Options parse_args(const std::vector<std::string>& args) {
  Options o;
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    o.command = Command::Help;
    o.help = usage();
    return o;
  }
  if (!parse_command(args[0], o.command)) {
    throw CliError("unknown command \"" + args[0] + "\" (devices, run, tune, simulate, help)");
  }
  if (o.command == Command::Help) {
    Command c;
    if (args.size() > 2) throw CliError("help takes at most one command");
    if (args.size() == 2 && !parse_command(args[1], c)) {
      throw CliError("help: unknown command \"" + args[1] + "\"");
    }
    o.help = args.size() == 2 && c != Command::Help ? command_help(c) : usage();
    return o;
  }

  const po::options_description desc = command_options(o.command);
  po::variables_map vm;
  try {
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    po::store(po::command_line_parser(rest).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw CliError(std::string(command_name(o.command)) + ": " + e.what());
  }
  if (vm.count("help")) {
    o.help = command_help(o.command);
    o.command = Command::Help;
    return o;
  }
  auto str = [&](const char* k) { return vm[k].as<std::string>(); };
  auto has = [&](const char* k) { return vm.count(k) > 0; };

  // Problem.
  ProblemFlags& f = o.problem;
  if (has("preset")) {
    f.preset = str("preset");
    if (!find_preset(f.preset)) {
      std::string list;
      for (const Preset& p : presets()) list += std::string(list.empty() ? "" : ", ") + p.name;
      throw CliError("--preset \"" + f.preset + "\": unknown (known: " + list + ")");
    }
  }
  constexpr int kBig = 1 << 30;
  if (has("shape")) f.shape = parse_dims("--shape", str("shape"), 1, kBig);
  if (has("kernel")) f.kernel = parse_dims("--kernel", str("kernel"), 1, kBig);
  if (has("dilation")) f.dilation = parse_dims("--dilation", str("dilation"), 1, kBig);
  if (has("stride")) f.stride = parse_dims("--stride", str("stride"), 1, kBig);
  if (has("causal")) f.causal = parse_dims("--causal", str("causal"), 0, 1);
  if (!f.shape.empty()) {
    const std::size_t rank = f.shape.size();
    for (auto [flag, v] : {std::pair<const char*, const std::vector<int>*>{"--kernel", &f.kernel},
                           {"--dilation", &f.dilation},
                           {"--stride", &f.stride},
                           {"--causal", &f.causal}}) {
      if (!v->empty() && v->size() != 1 && v->size() != rank) {
        throw CliError(std::string(flag) + " has " + std::to_string(v->size()) +
                       " values but --shape has " + std::to_string(rank) + " axes");
      }
    }
  }
  if (has("batch")) f.batch = static_cast<int>(parse_int("--batch", str("batch"), 1, kBig));
  if (has("heads")) f.heads = static_cast<int>(parse_int("--heads", str("heads"), 1, kBig));
  if (has("heads-kv")) {
    f.heads_kv = static_cast<int>(parse_int("--heads-kv", str("heads-kv"), 1, kBig));
  }
  if (has("head-dim")) {
    f.head_dim = static_cast<int>(parse_int("--head-dim", str("head-dim"), 1, kBig));
  }
  if (has("head-dim-v")) {
    f.head_dim_v = static_cast<int>(parse_int("--head-dim-v", str("head-dim-v"), 1, kBig));
  }
  if (has("dtype")) f.dtype = parse_dtype(str("dtype"));
  if (has("scale")) {
    const double s = parse_double("--scale", str("scale"));
    if (s <= 0) throw CliError("--scale " + str("scale") + ": must be > 0");
    f.scale = static_cast<float>(s);
  }

  // Device, variant, pass.
  o.device = o.command == Command::Tune || o.command == Command::Simulate ? "" : "all";
  if (has("device")) {
    o.device = str("device");
    if (o.device.empty()) throw CliError("--device is empty");
  }
  o.variants = {o.command == Command::Simulate ? "all" : "auto"};
  if (has("variant")) o.variants = parse_variants(str("variant"));
  if (has("pass")) o.passes = parse_pass(str("pass"));

  // Timing and output.
  if (has("warmup")) o.warmup = static_cast<int>(parse_int("--warmup", str("warmup"), 0, 100000));
  if (has("repeat")) o.repeat = static_cast<int>(parse_int("--repeat", str("repeat"), 1, 100000));
  if (has("json") && has("csv")) throw CliError("--json and --csv exclude each other");
  if (has("json")) o.format = Format::Json;
  if (has("csv")) o.format = Format::Csv;
  o.check = has("check");
  o.reprobe = has("reprobe");
  o.probe = !has("no-probe");
  if (!o.probe && o.reprobe) throw CliError("--reprobe and --no-probe exclude each other");
  o.baselines = !has("no-baselines");
  if (has("baseline-limit-ms")) {
    o.baseline_limit_ms = parse_double("--baseline-limit-ms", str("baseline-limit-ms"));
    if (o.baseline_limit_ms < 0) throw CliError("--baseline-limit-ms must be >= 0");
  }
  o.dry_run = has("dry-run");
  o.quiet = has("quiet");
  if (has("config")) {
    o.config = str("config");
    try {
      (void)Config::parse(o.config);
    } catch (const Error& e) {
      throw CliError(std::string("--config: ") + e.what());
    }
    if (o.variants.size() != 1 || o.variants[0] == "all" || o.variants[0] == "auto") {
      throw CliError("--config needs --variant naming one family");
    }
  }
  if (has("device-kind")) {
    o.device_kind = str("device-kind");
    if (o.device_kind != "gpu" && o.device_kind != "cpu") {
      throw CliError("--device-kind \"" + o.device_kind + "\": expected gpu or cpu");
    }
    if (has("device")) throw CliError("--device-kind and --device exclude each other");
  }
  return o;
}

}  // namespace openna::bench
