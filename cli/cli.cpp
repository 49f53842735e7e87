// cli/cli.cpp: the command line shared by both binaries: builds the command tree, parses, applies --config, runs
// the chosen subcommand, and maps errors to exit codes (0 ok, 1 runtime failure, 2 bad input or usage).
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "common/errors.h"
#include "common/interrupt.h"
#include "common/utf8.h"

namespace distill::cli {

namespace {

// A refused value that came from the --config file, not the command line, is named there too: "--n -3: ..."
// becomes "run.toml: key 'n': --n -3: ...".
std::string with_config_origin(const std::string& message, const std::string& path, const std::vector<std::string>& keys) {
  for (const auto& k : keys) {
    std::string flag = "--" + k;
    std::replace(flag.begin(), flag.end(), '_', '-');
    if (message.rfind(flag, 0) == 0 && (message.size() == flag.size() || message[flag.size()] == ' ' || message[flag.size()] == ':'))
      return path + ": key '" + k + "': " + message;
  }
  return message;
}

// CLI11 2.1 reads integers with strtoll/strtoull, base 0: a value out of range saturates (a review of sample
// 99999999999999999999 looked up 9223372036854775807) and a leading 0 reads as octal (--steps 010 ran 8 steps).
// Every integer option of every subcommand therefore takes plain decimal that fits its type, else exit 2 (an
// unsigned one, the seeds, no sign: CLI11 took "-1" as 2^64 - 1).
std::string decimal_fits(const std::string& v, bool is_unsigned) {
  const char *b = v.data(), *e = v.data() + v.size();
  const bool neg = !v.empty() && v[0] == '-';
  const std::string digits = v.substr(neg ? 1 : 0);
  const bool plain = !digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos &&
                     (digits.size() == 1 || digits[0] != '0');
  if (!plain || (neg && is_unsigned)) return "expected a whole decimal number" + std::string(is_unsigned ? " >= 0" : "") + ", got " + v;
  std::from_chars_result r;
  if (is_unsigned) {
    std::uint64_t x;
    r = std::from_chars(b, e, x);
  } else {
    std::int64_t x;
    r = std::from_chars(b, e, x);
  }
  if (r.ec == std::errc::result_out_of_range) return v + " is out of range (at most " + (is_unsigned ? "18446744073709551615" : "9223372036854775807") + ")";
  return {};
}

void check_integer_options(CLI::App& app) {
  for (CLI::Option* o : app.get_options()) {
    const auto full = o->get_type_name(), type = full.substr(0, full.find(':'));  // "INT", "UINT", or with a validator's name after ':' 
    if (type != "INT" && type != "UINT") continue;
    const bool is_unsigned = type == "UINT";
    o->check(CLI::Validator([is_unsigned](std::string& v) { return decimal_fits(v, is_unsigned); }, "", "decimal"));
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) check_integer_options(*sub);
}

}  // namespace

int run_cli_with(const std::vector<std::string>& args, const CliParts& parts) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int argc = int(args.size());
  CLI::App app{"distill: distill a Mixture-of-Experts teacher's reasoning into a small dense student.", "distill"};
  app.option_defaults()->always_capture_default();
  bool show_version = false;
  app.add_flag("--version", show_version, "print the distill and LibTorch versions, CUDA availability, threads");
  app.require_subcommand(0, 1);

  Registry reg;
  CLI::App* data = app.add_subcommand("data", "the problem and sample store: synthesise, import, inspect");
  data->require_subcommand(1, 1);
  register_data_synth(*data, reg);
  register_data_import(*data, reg);
  register_data_stats(*data, reg);
  register_data_review(*data, reg);
  register_data_curate(*data, reg);
  register_data_browse(*data, reg);
  register_data_check(*data, reg);
  register_data_merge(*data, reg);
  register_tokenizer(app, reg);
  register_compare(app, reg);
  register_studio(app, reg);
  register_runs(app, reg);
  parts.register_torch(app, reg);
  check_integer_options(app);

  try {
    app.parse(argc, argv.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "distill: " << printable_utf8(e.what()) << "\nRun `distill --help` (or `distill SUBCOMMAND --help`) for usage.\n";
    return 2;
  }

  if (show_version) {
    std::cout << parts.version_text();
    return 0;
  }
  const CLI::App* leaf = &app;
  for (auto subs = leaf->get_subcommands(); !subs.empty(); subs = leaf->get_subcommands()) leaf = subs.front();
  auto it = reg.run.find(leaf);
  if (it == reg.run.end()) {
    std::cerr << leaf->help();
    return 2;
  }
  std::string config_path;
  std::vector<std::string> from_config;  // keys whose value the --config file gave
  try {
    auto* mut = const_cast<CLI::App*>(leaf);
    if (const CLI::Option* cfg = leaf->get_option_no_throw("--config"); cfg && cfg->count() > 0) {
      config_path = cfg->as<std::string>();
      from_config = apply_config_file(*mut, config_path);
    }
    it->second();
    return 0;
  } catch (const InputError& e) {
    std::cerr << "distill: error: " << printable_utf8(with_config_origin(e.what(), config_path, from_config)) << "\n";
    return 2;
  } catch (const Interrupted& e) {
    std::cerr << "distill: " << printable_utf8(e.what()) << "\n";
    return 130;
  } catch (const CLI::Error& e) {
    std::cerr << "distill: error: " << printable_utf8(e.what()) << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "distill: failed: " << printable_utf8(e.what()) << "\n";
    return 1;
  }
}

}  // namespace distill::cli
