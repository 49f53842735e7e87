// cli/cmd_data_stats.cpp: `distill data stats`: problems by split, source and difficulty; samples by split,
// verdict and curation status; a completion-length histogram; pass rate by difficulty (text, --json, --svg).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "common/fs.h"
#include "dataset/browse.h"
#include "dataset/store.h"

namespace distill::cli {

namespace {
struct Args {
  std::string db, svg;
  bool json = false;
};

std::string bar(std::int64_t n, std::int64_t max, int width) {
  const int k = max > 0 ? int((n * width + max - 1) / max) : 0;
  std::string s;
  for (int i = 0; i < k; ++i) s += "\u2588";
  return s;
}

void print_curation(const dataset::CurationStats& c) {
  if (c.by_split_verdict.empty()) return;
  std::cout << "\nsamples by split and verdict\n";
  for (const auto& [split, v] : c.by_split_verdict) {
    std::cout << "  " << split << ":";
    for (const auto& [verdict, n] : v) std::cout << "  " << verdict << " " << n;
    std::cout << "\n";
  }
  std::cout << "\ncuration funnel\n ";
  for (const auto& [stage, n] : c.funnel) std::cout << " " << stage << " " << n;
  std::cout << "\n\nsamples by curation status\n";
  for (const auto& [st, n] : c.by_status) std::cout << "  " << st << ": " << n << "\n";
  std::cout << "\npass rate by difficulty (correct / samples)\n";
  for (const auto& [d, pr] : c.by_difficulty) {
    char line[160];
    std::snprintf(line, sizeof line, "  d%-5s %6.1f%%  (%lld of %lld samples, %lld problems)\n", d.c_str(),
                  pr.samples ? 100.0 * double(pr.correct) / double(pr.samples) : 0.0, (long long)pr.correct,
                  (long long)pr.samples, (long long)pr.problems);
    std::cout << line;
  }
  std::int64_t mx = 0;
  for (const auto& [lo, n] : c.length_histogram) mx = std::max(mx, n);
  std::cout << "\ncompletion length (tokens)\n";
  for (const auto& [lo, n] : c.length_histogram) {
    char line[96];
    std::snprintf(line, sizeof line, "  %6lld-%-6lld %8lld  ", (long long)lo, (long long)(lo + c.length_bucket - 1), (long long)n);
    std::cout << line << bar(n, mx, 40) << "\n";
  }
}

// The length histogram as a small standalone SVG (bars with their counts), for reports.
std::string histogram_svg(const dataset::CurationStats& c) {
  const int W = 640, H = 320, left = 60, bottom = 40, top = 30;
  std::int64_t mx = 1;
  for (const auto& [lo, n] : c.length_histogram) mx = std::max(mx, n);
  const int nb = std::max<int>(1, int(c.length_histogram.size()));
  const double bw = double(W - left - 20) / nb;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(W) + "\" height=\"" +
                  std::to_string(H) + "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s += "<text x=\"" + std::to_string(W / 2) + "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">completion length (tokens)</text>\n";
  for (int i = 0; i < nb && i < int(c.length_histogram.size()); ++i) {
    const auto [lo, n] = c.length_histogram[std::size_t(i)];
    const double h = double(H - top - bottom) * double(n) / double(mx);
    const double x = left + i * bw, y = H - bottom - h;
    s += "<rect x=\"" + fmt_fixed(x + 1, 1) + "\" y=\"" + fmt_fixed(y, 1) + "\" width=\"" + fmt_fixed(bw - 2, 1) +
         "\" height=\"" + fmt_fixed(h, 1) + "\" fill=\"#4a7ab5\"><title>" + std::to_string(lo) + "-" +
         std::to_string(lo + c.length_bucket - 1) + ": " + std::to_string(n) + "</title></rect>\n";
    s += "<text x=\"" + fmt_fixed(x + bw / 2, 1) + "\" y=\"" + fmt_fixed(y - 3, 1) + "\" text-anchor=\"middle\">" +
         std::to_string(n) + "</text>\n";
    s += "<text x=\"" + fmt_fixed(x + bw / 2, 1) + "\" y=\"" + std::to_string(H - bottom + 14) +
         "\" text-anchor=\"middle\">" + std::to_string(lo) + "</text>\n";
  }
  s += "<line x1=\"" + std::to_string(left) + "\" y1=\"" + std::to_string(H - bottom) + "\" x2=\"" + std::to_string(W - 20) +
       "\" y2=\"" + std::to_string(H - bottom) + "\" stroke=\"#333\"/>\n";
  s += "<text x=\"14\" y=\"" + std::to_string(H / 2) + "\" transform=\"rotate(-90 14 " + std::to_string(H / 2) +
       ")\" text-anchor=\"middle\">samples</text>\n</svg>\n";
  return s;
}

void print_text(const std::string& path, const dataset::StoreStats& s) {
  std::cout << "store " << path << " (schema v" << s.schema_version << ", " << fmt_fixed(double(s.file_bytes) / 1e6, 2)
            << " MB)\n";
  std::cout << "  problems " << s.problems << "   samples " << s.samples << "   models " << s.models << "   runs "
            << s.runs << "\n";
  if (!s.problems_by_split.empty()) {
    std::cout << "\nproblems by split and difficulty\n";
    std::cout << "  split        total   d1     d2     d3     d4     d5     other\n";
    for (const auto& [split, n] : s.problems_by_split) {
      char line[160];
      const auto& by = s.problems_by_split_difficulty.at(split);
      auto get = [&](const char* d) {
        auto it = by.find(d);
        return it == by.end() ? 0LL : (long long)it->second;
      };
      long long other = n;
      for (const char* d : {"1", "2", "3", "4", "5"}) other -= get(d);
      std::snprintf(line, sizeof line, "  %-10s %7lld %6lld %6lld %6lld %6lld %6lld %6lld\n", split.c_str(),
                    (long long)n, get("1"), get("2"), get("3"), get("4"), get("5"), other);
      std::cout << line;
    }
    std::cout << "\nproblems by source\n";
    for (const auto& [src, n] : s.problems_by_source) std::cout << "  " << src << ": " << n << "\n";
  }
  if (!s.samples_by_verdict.empty()) {
    std::cout << "\nsamples by verdict\n";
    for (const auto& [v, n] : s.samples_by_verdict) std::cout << "  " << v << ": " << n << "\n";
  }
  if (!s.runs_by_kind.empty()) {
    std::cout << "\nruns by kind\n";
    for (const auto& [k, n] : s.runs_by_kind) std::cout << "  " << k << ": " << n << "\n";
  }
}
}  // namespace

void register_data_stats(CLI::App& data, Registry& reg) {
  auto a = std::make_shared<Args>();
  CLI::App* c = data.add_subcommand("stats", "summarise a store: problems by split/source/difficulty, samples, runs");
  c->add_option("--db", a->db, "store file");
  c->add_flag("--json", a->json, "print JSON instead of text");
  c->add_option("--svg", a->svg, "also write the completion-length histogram as an SVG picture");
  reg.add(c, [c, a] {
    require(*c, "--db");
    if (!a->svg.empty()) check_output_file(a->svg, "--svg", {a->db});
    auto store = dataset::Store::open(a->db, dataset::OpenMode::read);
    auto s = store->stats();
    const auto cur = dataset::curation_stats(*store);
    if (!a->svg.empty()) write_file_atomic(a->svg, histogram_svg(cur));
    if (!a->json) {
      print_text(a->db, s);
      return print_curation(cur);
    }
    nlohmann::json hist = nlohmann::json::array();
    for (const auto& [lo, n] : cur.length_histogram) hist.push_back({{"from", lo}, {"to", lo + cur.length_bucket - 1}, {"samples", n}});
    nlohmann::json pass = nlohmann::json::object();
    for (const auto& [d, pr] : cur.by_difficulty)
      pass[d] = {{"samples", pr.samples}, {"correct", pr.correct}, {"problems", pr.problems},
                 {"pass_rate", pr.samples ? double(pr.correct) / double(pr.samples) : 0.0}};
    nlohmann::json j = {{"store", a->db},
                        {"schema_version", s.schema_version},
                        {"file_bytes", s.file_bytes},
                        {"problems", s.problems},
                        {"samples", s.samples},
                        {"models", s.models},
                        {"runs", s.runs},
                        {"problems_by_split", s.problems_by_split},
                        {"problems_by_source", s.problems_by_source},
                        {"problems_by_split_difficulty", s.problems_by_split_difficulty},
                        {"samples_by_verdict", s.samples_by_verdict},
                        {"runs_by_kind", s.runs_by_kind},
                        {"samples_by_split_verdict", cur.by_split_verdict},
                        {"samples_by_status", cur.by_status},
                        {"length_histogram", hist},
                        {"pass_rate_by_difficulty", pass},
                        {"funnel", cur.funnel}};
    std::cout << j.dump(2) << "\n";
  });
}

}  // namespace distill::cli
