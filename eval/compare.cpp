// eval/compare.cpp: see compare.h.
#include "eval/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/config_text.h"
#include "common/errors.h"
#include "dataset/browse.h"
#include "dataset/answer.h"

namespace distill::eval {

namespace {
std::string fmt(double v, int digits) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

std::string esc(const std::string& s) {  // HTML text
  std::string o;
  for (char ch : s) {
    if (ch == '<') o += "&lt;";
    else if (ch == '>') o += "&gt;";
    else if (ch == '&') o += "&amp;";
    else if (ch == '"') o += "&quot;";
    else o += ch;
  }
  return o;
}

std::string basename_of(std::string p) {
  while (!p.empty() && p.back() == '/') p.pop_back();
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string parent_and_base(std::string p) {
  while (!p.empty() && p.back() == '/') p.pop_back();
  const auto slash = p.rfind('/');
  if (slash == std::string::npos || slash == 0) return p;
  return basename_of(p.substr(0, slash)) + "/" + p.substr(slash + 1);
}

// A label cut to `width` bytes for a column: its end kept ("..ent: exp-b/student"), where labels made unique
// differ, and the cut moved to a character boundary.
std::string fit(const std::string& label, std::size_t width) {
  if (label.size() <= width) return label;
  std::size_t from = label.size() - (width - 2);
  while (from < label.size() && (static_cast<unsigned char>(label[from]) & 0xC0) == 0x80) ++from;
  return ".." + label.substr(from);
}

// "role: directory"; where two models would read the same, "role: parent/directory", and where even that
// repeats (one directory trained twice: two weight files), the model id as well; two runs of one model (compare
// --runs), the run too.
void assign_labels(std::vector<ModelReport>& models) {
  auto widen_repeated = [&](const std::function<std::string(const ModelReport&)>& wider) {
    std::vector<std::string> now;
    for (const auto& m : models) now.push_back(m.label);
    for (std::size_t i = 0; i < models.size(); ++i)
      if (std::count(now.begin(), now.end(), now[i]) > 1) models[i].label = wider(models[i]);
  };
  for (auto& m : models) m.label = m.run.role + ": " + basename_of(m.run.path);
  widen_repeated([](const ModelReport& m) { return m.run.role + ": " + parent_and_base(m.run.path); });
  widen_repeated([](const ModelReport& m) { return m.label + " #" + std::to_string(m.run.model_id); });
  widen_repeated([](const ModelReport& m) { return m.label + " (eval run " + std::to_string(m.run.run_id) + ")"; });  // --runs
}

// Whether every model ran under the first one's protocol (as described: decoding, K, k, length cap, seed).
bool one_protocol(const Comparison& c) {
  for (const auto& m : c.models)
    if (describe(m.protocol) != describe(c.models[0].protocol)) return false;
  return true;
}

// Colours by role, so a teacher is the same colour in every report: orange; students greens and blues; baselines
// greys. Within a role, in the order compared.
void assign_colors(std::vector<ModelReport>& models) {
  static const std::vector<const char*> students = {"#1b9e77", "#386cb0", "#66a61e", "#7570b3", "#17becf", "#2c7fb8"};
  static const std::vector<const char*> baselines = {"#666666", "#a6a6a6", "#404040"};
  std::size_t ns = 0, nb = 0, nt = 0;
  for (auto& m : models) {
    if (m.run.role == "teacher") m.color = nt++ == 0 ? "#d95f02" : "#e6ab02";
    else if (m.run.role == "student") m.color = students[ns++ % students.size()];
    else m.color = baselines[nb++ % baselines.size()];
  }
}

// A dash pattern per model, so lines that lie on each other stay visible.
const char* dash_of(std::size_t i) {
  static const char* d[] = {"", "6 3", "2 2", "8 3 2 3", "1 3", "10 4"};
  return d[i % 6];
}

// Each student's newest train run, found by the --out directory it wrote (the model's path).
std::vector<TrainCurve> training_curves(dataset::Store& s, const std::vector<ModelReport>& models) {
  namespace fs = std::filesystem;
  auto same_dir = [](const std::string& a, const std::string& b) {
    std::error_code e1, e2;
    const auto ca = fs::weakly_canonical(a, e1), cb = fs::weakly_canonical(b, e2);
    return (!e1 && !e2 && ca == cb) || fs::path(a).lexically_normal() == fs::path(b).lexically_normal();
  };
  std::vector<TrainCurve> out;
  std::vector<std::pair<std::int64_t, std::string>> trains;  // (run id, its --out), newest first
  for (auto q = s.db().prepare("SELECT id, config_toml FROM runs WHERE kind = 'train' AND status = 'ok' ORDER BY id DESC");
       q.step();) {
    const auto v = config_values(q.col_text(1));
    if (auto it = v.find("out"); it != v.end()) trains.emplace_back(q.col_int(0), it->second);
  }
  std::set<std::int64_t> shown;  // two eval runs of one student (compare --runs) share its training curve
  for (const auto& m : models) {
    if (m.run.role != "student" || !shown.insert(m.run.model_id).second) continue;
    auto it = std::find_if(trains.begin(), trains.end(), [&](const auto& t) { return same_dir(t.second, m.run.path); });
    if (it == trains.end()) continue;
    TrainCurve c{m.label, m.color, it->first, {}, {}, {}};
    auto q = s.db().prepare("SELECT step, loss, val_loss FROM train_steps WHERE run_id = ? ORDER BY step");
    q.bind(1, it->first);
    while (q.step()) {
      c.steps.push_back(q.col_int(0));
      c.loss.push_back(q.col_double(1));
      if (!q.col_null(2)) c.val_loss.emplace_back(q.col_int(0), q.col_double(2));
    }
    if (!c.steps.empty()) out.push_back(std::move(c));
  }
  return out;
}

// A legend row at `y`: a swatch (or, for line charts, a dashed line) and the label of each model.
// A legend row at `y`: per item (label, colour), a swatch (or, for line charts, the item's dashed line) and the label.
void legend_row(std::ostringstream& h, const std::vector<std::pair<std::string, std::string>>& items, int y, bool lines) {
  double x = 50;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& [text, color] = items[i];
    if (lines)
      h << "<line x1=\"" << x << "\" x2=\"" << x + 22 << "\" y1=\"" << y + 5 << "\" y2=\"" << y + 5 << "\" stroke-width=\"2\" stroke=\""
        << color << "\" stroke-dasharray=\"" << dash_of(i) << "\"/>";
    else
      h << "<rect x=\"" << x + 6 << "\" y=\"" << y << "\" width=\"10\" height=\"10\" fill=\"" << color << "\"/>";
    const auto label = fit(text, 28);
    h << "<text class=\"legend\" x=\"" << x + 26 << "\" y=\"" << y + 9 << "\">" << esc(label) << "</text>\n";
    x += 40 + 6.2 * double(label.size());
  }
}

void legend(std::ostringstream& h, const Comparison& c, int y, bool lines) {
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& m : c.models) items.emplace_back(m.label, m.color);
  legend_row(h, items, y, lines);
}

}  // namespace

std::string training_curves_svg(const std::vector<TrainCurve>& curves) {
  std::ostringstream h;
  if (curves.empty()) return "";
  const int W = 720, H = 300, L = 56, B = 44, T = 20;
  std::int64_t smax = 1;
  double lmax = 0;
  for (const auto& cv : curves) {
    smax = std::max(smax, cv.steps.back());
    for (auto l : cv.loss) lmax = std::max(lmax, l);
    for (const auto& [st, l] : cv.val_loss) lmax = std::max(lmax, l);
  }
  lmax = std::max(0.5, std::ceil(lmax * 2) / 2);
  h << "<svg id=\"chart-training\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H + 20
    << "\" font-size=\"11\">\n";
  const int ticks = int(std::lround(lmax * 2));
  for (int t = 0; t <= ticks; ++t) {
    const double y = H - B - (H - B - T) * t / double(ticks);
    h << "<line x1=\"" << L << "\" x2=\"" << W - 20 << "\" y1=\"" << fmt(y, 1) << "\" y2=\"" << fmt(y, 1)
      << "\" stroke=\"#eee\"/><text x=\"" << L - 6 << "\" y=\"" << fmt(y + 4, 1) << "\" text-anchor=\"end\">" << fmt(t * 0.5, 1) << "</text>\n";
  }
  h << "<text x=\"12\" y=\"" << (H - B + T) / 2 << "\" transform=\"rotate(-90 12 " << (H - B + T) / 2
    << ")\" text-anchor=\"middle\">loss (nats/token)</text>\n";
  auto X = [&](double st) { return L + (W - L - 20) * st / double(smax); };
  auto Y = [&](double l) { return H - B - (H - B - T) * std::min(l, lmax) / lmax; };
  for (std::size_t i = 0; i < curves.size(); ++i) {
    const auto& cv = curves[i];
    std::string pts;
    for (std::size_t k = 0; k < cv.steps.size(); ++k) pts += fmt(X(double(cv.steps[k])), 1) + "," + fmt(Y(cv.loss[k]), 1) + " ";
    h << "<polyline class=\"train\" fill=\"none\" stroke-width=\"2\" stroke-dasharray=\"" << dash_of(i) << "\" stroke=\"" << cv.color
      << "\" points=\"" << pts << "\"><title>" << esc(cv.label) << " (train run " << cv.run_id << ")</title></polyline>\n";
    for (const auto& [st, l] : cv.val_loss)
      h << "<circle cx=\"" << fmt(X(double(st)), 1) << "\" cy=\"" << fmt(Y(l), 1) << "\" r=\"4\" fill=\"" << cv.color
        << "\"><title>" << esc(cv.label) << " validation loss at step " << st << ": " << fmt(l, 3) << "</title></circle>\n";
  }
  for (int t = 0; t <= 4; ++t)
    h << "<text x=\"" << fmt(X(double(smax) * t / 4), 1) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">"
      << std::int64_t(double(smax) * t / 4) << "</text>\n";
  h << "<text x=\"" << W / 2 << "\" y=\"" << H - B + 30 << "\" text-anchor=\"middle\">step (lines: training loss; dots: validation loss)</text>\n";
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& cv : curves) items.emplace_back(cv.label, cv.color);
  legend_row(h, items, H + 6, true);
  h << "</svg>\n";
  return h.str();
}

namespace {

// The store's curation funnel, as horizontal bars.
void funnel_chart(std::ostringstream& h, const Comparison& c) {
  if (c.funnel.empty() || c.funnel.front().second == 0) return;
  const int W = 720, row = 24, L = 120;
  const int H = int(c.funnel.size()) * row + 10;
  const double top = double(c.funnel.front().second);
  h << "<h2>Curation funnel</h2>\n<svg id=\"chart-funnel\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-size=\"11\">\n";
  for (std::size_t i = 0; i < c.funnel.size(); ++i) {
    const auto& [stage, n] = c.funnel[i];
    const double y = 5 + double(i) * row, w = (W - L - 120) * double(n) / top;
    h << "<text x=\"" << L - 6 << "\" y=\"" << y + 14 << "\" text-anchor=\"end\">" << esc(stage) << "</text><rect class=\"stage\" x=\"" << L
      << "\" y=\"" << y << "\" width=\"" << fmt(std::max(1.0, w), 1) << "\" height=\"" << row - 6 << "\" fill=\""
      << (stage == "kept" ? "#1b9e77" : "#386cb0") << "\"/><text x=\"" << fmt(L + w + 6, 1) << "\" y=\"" << y + 14 << "\">" << n << " ("
      << fmt(100.0 * double(n) / top, 1) << "%)</text>\n";
  }
  h << "</svg>\n";
}
}  // namespace

Comparison compare_models(dataset::Store& s, std::optional<std::uint64_t> seed, const dataset::EvalRunSelection& sel) {
  Comparison c;
  auto runs = dataset::latest_eval_runs(s, sel);
  if (runs.empty())
    throw InputError(s.path() + " holds no finished eval run: run `distill eval --db " + s.path() +
                     " --model DIR` for each model first (a killed one continues with `distill eval --resume`)");
  std::vector<std::map<std::int64_t, ProblemOutcome>> per_model;
  std::map<std::int64_t, std::string> prompts;
  for (const auto& r : runs) {
    std::map<std::int64_t, ProblemOutcome> m;
    for (const auto& e : dataset::eval_results_of(s, r.run_id)) {
      auto& o = m[e.problem_id];
      o.problem_id = e.problem_id;
      o.difficulty = e.difficulty;
      o.gold = e.gold;
      const auto v = dataset::verify_completion(e.completion, e.gold);
      o.correct.push_back(v.verdict == dataset::Verdict::correct);
      o.answers.push_back(v.extracted);
      o.tokens.push_back(e.n_tokens);
      o.seconds.push_back(e.latency_ms / 1e3);
      prompts[e.problem_id] = e.prompt;
    }
    per_model.push_back(std::move(m));
  }
  std::set<std::int64_t> common;
  for (const auto& [pid, o] : per_model[0]) common.insert(pid);
  for (const auto& m : per_model)
    for (auto it = common.begin(); it != common.end();) it = m.count(*it) ? std::next(it) : common.erase(it);
  c.problems = std::int64_t(common.size());
  if (common.empty()) throw InputError("the models' newest eval runs share no problem; evaluate them on the same split");
  for (std::size_t i = 0; i < runs.size(); ++i) {
    ModelReport mr;
    mr.run = runs[i];
    mr.protocol = protocol_of(runs[i].config_toml);
    mr.answered = std::int64_t(per_model[i].size());
    std::vector<ProblemOutcome> v;
    for (auto pid : common) {
      v.push_back(per_model[i].at(pid));
      for (auto t : v.back().tokens) mr.tokens.push_back(t);
    }
    // k as the run was made with (0: its K), and its own bootstrap seed unless one is given
    mr.by_difficulty = summarize_by_difficulty(v, mr.protocol.k, seed.value_or(bootstrap_seed(mr.protocol.seed)));
    c.models.push_back(std::move(mr));
  }
  assign_labels(c.models);
  c.cost_base = c.models[0].label;
  const auto cost = [](const ModelReport& m) { return double(m.run.n_active_params) * m.by_difficulty.at("all").mean_tokens; };
  for (auto& m : c.models) m.relative_cost = cost(c.models[0]) > 0 ? cost(m) / cost(c.models[0]) : 0;
  // What a reader must know before trusting the side-by-side numbers.
  bool differ = !one_protocol(c);
  for (const auto& m : c.models) differ = differ || m.protocol.split != c.models[0].protocol.split;
  if (differ) {
    std::string w = "the models were evaluated under different protocols:";
    for (const auto& m : c.models)
      w += " " + m.label + " (" + describe(m.protocol) + (m.protocol.known ? ", split " + m.protocol.split : "") + ");";
    w.back() = '.';
    c.warnings.push_back(w);
  }
  std::string more;
  for (const auto& m : c.models)
    if (m.answered > c.problems) more += std::string(more.empty() ? "" : ", ") + m.label + " " + std::to_string(m.answered);
  if (!more.empty())
    c.warnings.push_back("only the " + std::to_string(c.problems) + " problems every model answered are compared; runs " +
                         "answered more (" + more + ")");
  // Disagreements: problems where the models' majority answers are not all equally right.
  for (auto pid : common) {
    Disagreement d;
    d.problem_id = pid;
    d.prompt = prompts[pid];
    for (const auto& m : per_model) {
      const auto& o = m.at(pid);
      d.gold = o.gold;
      const bool ok = majority_correct(o.answers, o.gold);
      // the majority answer itself: the most common extracted answer (first seen on ties)
      std::vector<std::pair<std::string, int>> votes;
      for (const auto& a : o.answers) {
        if (!a) continue;
        auto it = std::find_if(votes.begin(), votes.end(), [&](auto& v) { return dataset::answers_equivalent(*a, v.first); });
        if (it == votes.end()) votes.emplace_back(*a, 1);
        else ++it->second;
      }
      std::string maj;
      int best = 0;
      for (const auto& [a, n] : votes)
        if (n > best) best = n, maj = a;
      d.majority.push_back(maj);
      d.correct.push_back(ok);
    }
    if (std::count(d.correct.begin(), d.correct.end(), true) % std::int64_t(d.correct.size()) != 0)
      c.disagreements.push_back(std::move(d));
  }
  assign_colors(c.models);
  c.curves = training_curves(s, c.models);
  c.funnel = dataset::curation_funnel(s);
  return c;
}

std::string comparison_table(const Comparison& c) {
  std::ostringstream os;
  char line[256];
  os << "compare: " << c.models.size() << " models on the " << c.problems << " problems all of them answered\n";
  for (const auto& w : c.warnings) os << "warning: " << w << "\n";
  std::snprintf(line, sizeof line, "  %-34s %12s %12s %-20s %-13s %8s %9s %8s\n", "model", "params", "active",
                "pass@1 % [95% CI]", "maj@k %", "tokens", "seq tok/s", "cost");
  os << line;
  for (const auto& m : c.models) {
    const auto& a = m.by_difficulty.at("all");
    const auto pass1 = fmt(100 * a.pass1.value, 1) + " [" + fmt(100 * a.pass1.lo, 1) + ", " + fmt(100 * a.pass1.hi, 1) + "]";
    const auto maj = fmt(100 * a.maj_k.value, 1) + " (k=" + std::to_string(a.k) + ")";
    std::snprintf(line, sizeof line, "  %-34s %12lld %12lld %-20s %-13s %8.1f %9.0f %7.2fx\n", fit(m.label, 34).c_str(),
                  (long long)m.run.n_params, (long long)m.run.n_active_params, pass1.c_str(), maj.c_str(), a.mean_tokens,
                  a.tokens_per_s, m.relative_cost);
    os << line;
  }
  os << "  (tokens: per answer; cost: active params x tokens per answer, relative to " << c.cost_base << ")\n";
  const bool same = one_protocol(c);
  if (same) os << "  protocol (every model): " << describe(c.models[0].protocol) << "\n";
  else
    for (const auto& m : c.models) os << "  protocol of " << m.label << ": " << describe(m.protocol) << "\n";
  os << "\npass@1 % by difficulty\n  " << std::string(8, ' ');
  std::set<std::string> diffs;
  for (const auto& m : c.models)
    for (const auto& [d, s] : m.by_difficulty) diffs.insert(d);
  for (const auto& m : c.models) {
    std::snprintf(line, sizeof line, "%-22s", fit(m.label, 21).c_str());
    os << line;
  }
  os << "\n";
  for (const auto& d : diffs) {
    std::snprintf(line, sizeof line, "  %-8s", d.c_str());
    os << line;
    for (const auto& m : c.models) {
      auto it = m.by_difficulty.find(d);
      std::snprintf(line, sizeof line, "%-22s", it == m.by_difficulty.end() ? "-" : fmt(100 * it->second.pass1.value, 1).c_str());
      os << line;
    }
    os << "\n";
  }
  os << "\n" << c.disagreements.size() << " problems where the models' majority answers are not equally right";
  os << (c.disagreements.empty() ? "\n" : " (first 10):\n");
  for (std::size_t i = 0; i < c.disagreements.size() && i < 10; ++i) {
    const auto& d = c.disagreements[i];
    os << "  problem " << d.problem_id << " (gold " << d.gold << "):";
    for (std::size_t k = 0; k < d.majority.size(); ++k)
      os << "  " << c.models[k].label << " " << (d.majority[k].empty() ? "(none)" : d.majority[k])
         << (d.correct[k] ? " ok" : " x");
    os << "\n";
  }
  return os.str();
}

std::string comparison_json(const Comparison& c) {
  nlohmann::ordered_json models = nlohmann::ordered_json::array();
  for (const auto& m : c.models) {
    nlohmann::ordered_json by = nlohmann::ordered_json::object();
    for (const auto& [d, s] : m.by_difficulty)
      by[d] = {{"problems", s.problems}, {"samples", s.samples}, {"k", s.k},
               {"pass@1", {{"value", s.pass1.value}, {"lo", s.pass1.lo}, {"hi", s.pass1.hi}}},
               {"pass@k", {{"value", s.pass_k.value}, {"lo", s.pass_k.lo}, {"hi", s.pass_k.hi}}},
               {"maj@k", {{"value", s.maj_k.value}, {"lo", s.maj_k.lo}, {"hi", s.maj_k.hi}}},
               {"mean_tokens", s.mean_tokens}, {"sequence_tokens_per_s", s.tokens_per_s}, {"latency_s", s.latency_s}};
    const auto& p = m.protocol;
    nlohmann::ordered_json protocol = nullptr;
    if (p.known)
      protocol = {{"split", p.split}, {"greedy", p.greedy}, {"temperature", p.temperature}, {"top_p", p.top_p},
                  {"samples", p.samples}, {"k", p.k}, {"max_tokens", p.max_tokens}, {"limit", p.limit}, {"seed", p.seed}};
    models.push_back({{"label", m.label}, {"role", m.run.role}, {"color", m.color}, {"path", m.run.path}, {"arch", m.run.arch},
                      {"model_id", m.run.model_id}, {"run_id", m.run.run_id}, {"protocol", protocol},
                      {"answered", m.answered}, {"n_params", m.run.n_params}, {"n_active_params", m.run.n_active_params},
                      {"relative_cost", m.relative_cost}, {"by_difficulty", by}});
  }
  nlohmann::ordered_json dis = nlohmann::ordered_json::array();
  for (const auto& d : c.disagreements)
    dis.push_back({{"problem_id", d.problem_id}, {"prompt", d.prompt}, {"gold", d.gold}, {"majority", d.majority},
                   {"correct", d.correct}});
  // Answers are model output: bytes that are not UTF-8 (a store written before decode replaced them) become
  // U+FFFD rather than aborting the dump.
  nlohmann::ordered_json training = nlohmann::ordered_json::array(), funnel = nlohmann::ordered_json::array();
  for (const auto& cv : c.curves)
    training.push_back({{"label", cv.label}, {"run_id", cv.run_id}, {"steps", cv.steps.back()}, {"final_loss", cv.loss.back()},
                        {"final_val_loss", cv.val_loss.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(cv.val_loss.back().second)}});
  for (const auto& [stage, n] : c.funnel) funnel.push_back({{"stage", stage}, {"samples", n}});
  return nlohmann::ordered_json{{"problems", c.problems}, {"warnings", c.warnings}, {"cost_relative_to", c.cost_base},
                                {"models", models}, {"disagreements", dis}, {"training", training}, {"curation_funnel", funnel}}
             .dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) +
         "\n";
}

std::string comparison_html(const Comparison& c) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>distill: teacher vs student</title>\n"
       "<style>body{font-family:sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse}"
       "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
       "td:first-child,th:first-child{text-align:left}svg{margin:1em 0}.warning{color:#a04000}"
       "td.prompt{max-width:420px;font-size:12px;text-align:left}</style></head><body>\n";
  h << "<h1>Teacher vs student</h1>\n<p>" << c.problems << " problems answered by every model.</p>\n";
  for (const auto& w : c.warnings) h << "<p class=\"warning\"><b>Warning:</b> " << esc(w) << "</p>\n";
  const bool same = one_protocol(c);  // one protocol line, or a column when they differ
  if (same) h << "<p>Protocol (every model): " << esc(describe(c.models[0].protocol)) << ".</p>\n";
  h << "<table id=\"summary\"><tr><th>model</th><th>params</th><th>active</th><th>pass@1 % [95% CI]</th><th>maj@k %</th>"
       "<th>tokens/answer</th><th>cost vs " << esc(c.cost_base) << "</th>" << (same ? "" : "<th>protocol</th>") << "</tr>\n";
  for (const auto& m : c.models) {
    const auto& a = m.by_difficulty.at("all");
    h << "<tr><td>" << esc(m.label) << "</td><td>" << m.run.n_params << "</td><td>" << m.run.n_active_params
      << "</td><td>" << fmt(100 * a.pass1.value, 1) << " [" << fmt(100 * a.pass1.lo, 1) << ", " << fmt(100 * a.pass1.hi, 1)
      << "]</td><td>" << fmt(100 * a.maj_k.value, 1) << " (k=" << a.k << ")</td><td>" << fmt(a.mean_tokens, 1) << "</td><td>"
      << fmt(m.relative_cost, 2) << "x</td>" << (same ? "" : "<td>" + esc(describe(m.protocol)) + "</td>") << "</tr>\n";
  }
  h << "</table>\n<p><small>Intervals: 95% percentile bootstrap over problems (1,000 resamples); a model right or "
       "wrong on every problem gets an interval of no width, which says nothing about the problems not drawn.</small></p>\n";
  // Chart 1: accuracy by difficulty, grouped bars with 95% interval whiskers.
  std::vector<std::string> diffs;
  for (const auto& [d, s] : c.models[0].by_difficulty)
    if (d != "all") diffs.push_back(d);
  const int W = 720, H = 300, L = 50, B = 40, T = 30;
  const double gw = double(W - L - 20) / std::max<std::size_t>(1, diffs.size());
  const double bw = gw * 0.8 / double(c.models.size());
  h << "<h2>Accuracy by difficulty</h2>\n<svg id=\"chart-accuracy\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W
    << "\" height=\"" << H << "\" font-size=\"11\">\n";
  for (int pct = 0; pct <= 100; pct += 25) {
    const double y = H - B - (H - B - T) * pct / 100.0;
    h << "<line x1=\"" << L << "\" x2=\"" << W - 20 << "\" y1=\"" << fmt(y, 1) << "\" y2=\"" << fmt(y, 1)
      << "\" stroke=\"#eee\"/><text x=\"" << L - 6 << "\" y=\"" << fmt(y + 4, 1) << "\" text-anchor=\"end\">" << pct << "%</text>\n";
  }
  for (std::size_t di = 0; di < diffs.size(); ++di) {
    for (std::size_t mi = 0; mi < c.models.size(); ++mi) {
      auto it = c.models[mi].by_difficulty.find(diffs[di]);
      if (it == c.models[mi].by_difficulty.end()) continue;
      const auto& p = it->second.pass1;
      const double x = L + di * gw + gw * 0.1 + mi * bw, y = H - B - (H - B - T) * p.value;
      h << "<rect class=\"bar\" x=\"" << fmt(x, 1) << "\" y=\"" << fmt(y, 1) << "\" width=\"" << fmt(bw - 2, 1)
        << "\" height=\"" << fmt(H - B - y, 1) << "\" fill=\"" << c.models[mi].color << "\"><title>" << esc(c.models[mi].label)
        << ", difficulty " << diffs[di] << ": " << fmt(100 * p.value, 1) << "%</title></rect>\n";
      const double ylo = H - B - (H - B - T) * p.lo, yhi = H - B - (H - B - T) * p.hi, xm = x + (bw - 2) / 2;
      h << "<line x1=\"" << fmt(xm, 1) << "\" x2=\"" << fmt(xm, 1) << "\" y1=\"" << fmt(ylo, 1) << "\" y2=\"" << fmt(yhi, 1)
        << "\" stroke=\"#333\"/>\n";
    }
    h << "<text x=\"" << fmt(L + di * gw + gw / 2, 1) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">d" << diffs[di] << "</text>\n";
  }
  legend(h, c, H - 14, false);
  h << "</svg>\n";
  // Chart 2: completion-length distributions: each model's share of answers per length bucket, one line each (a
  // dash pattern and markers per model, so lines that coincide stay visible), with a y-axis and a legend.
  std::int64_t mx = 1;
  for (const auto& m : c.models)
    for (auto t : m.tokens) mx = std::max(mx, t);
  const int nb = 20;
  const double bucket = double(mx + 1) / nb;
  std::vector<std::vector<double>> shares;
  double top = 0.05;
  for (const auto& m : c.models) {
    std::vector<double> hist(nb, 0);
    for (auto t : m.tokens) hist[std::min<std::size_t>(nb - 1, std::size_t(double(t) / bucket))] += 1;
    for (auto& v : hist) v /= std::max<double>(1, double(m.tokens.size())), top = std::max(top, v);
    shares.push_back(std::move(hist));
  }
  top = std::ceil(top * 10) / 10;  // the axis in steps of 10%
  const int HL = H + 20;
  h << "<h2>Completion length</h2>\n<svg id=\"chart-lengths\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W
    << "\" height=\"" << HL << "\" font-size=\"11\">\n";
  const int ticks = int(std::lround(top * 10));
  for (int t = 0; t <= ticks; ++t) {
    const double y = H - B - (H - B - T) * t / double(ticks);
    h << "<line x1=\"" << L << "\" x2=\"" << W - 20 << "\" y1=\"" << fmt(y, 1) << "\" y2=\"" << fmt(y, 1)
      << "\" stroke=\"#eee\"/><text x=\"" << L - 6 << "\" y=\"" << fmt(y + 4, 1) << "\" text-anchor=\"end\">" << t * 10 << "%</text>\n";
  }
  h << "<text x=\"12\" y=\"" << (H - B + T) / 2 << "\" transform=\"rotate(-90 12 " << (H - B + T) / 2
    << ")\" text-anchor=\"middle\">share of the model's answers</text>\n";
  for (std::size_t mi = 0; mi < c.models.size(); ++mi) {
    std::string pts;
    for (int b2 = 0; b2 < nb; ++b2) {
      const double x = L + (W - L - 20) * (b2 + 0.5) / nb, y = H - B - (H - B - T) * shares[mi][std::size_t(b2)] / top;
      pts += fmt(x, 1) + "," + fmt(y, 1) + " ";
      h << "<circle cx=\"" << fmt(x, 1) << "\" cy=\"" << fmt(y, 1) << "\" r=\"" << 2 + (c.models.size() - mi) << "\" fill=\"none\" stroke=\""
        << c.models[mi].color << "\"/>\n";
    }
    h << "<polyline class=\"dist\" fill=\"none\" stroke-width=\"2\" stroke-dasharray=\"" << dash_of(mi) << "\" stroke=\""
      << c.models[mi].color << "\" points=\"" << pts << "\"><title>" << esc(c.models[mi].label) << "</title></polyline>\n";
  }
  for (int b2 = 0; b2 <= nb; b2 += 5)
    h << "<text x=\"" << fmt(L + (W - L - 20) * double(b2) / nb, 1) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">"
      << std::int64_t(b2 * bucket) << "</text>\n";
  h << "<text x=\"" << W / 2 << "\" y=\"" << H - B + 30 << "\" text-anchor=\"middle\">completion tokens</text>\n";
  legend(h, c, HL - 14, true);
  h << "</svg>\n";
  // Chart 3: accuracy against size (active parameters, log scale).
  double pmin = 1e30, pmax = 1;
  for (const auto& m : c.models) pmin = std::min(pmin, double(m.run.n_active_params)), pmax = std::max(pmax, double(m.run.n_active_params));
  const double lmin = std::log10(std::max(1.0, pmin)) - 0.3, lmax = std::log10(pmax) + 0.3;
  h << "<h2>Accuracy vs size</h2>\n<svg id=\"chart-size\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\""
    << H << "\" font-size=\"11\">\n";
  for (int pct = 0; pct <= 100; pct += 25) {
    const double y = H - B - (H - B - T) * pct / 100.0;
    h << "<line x1=\"" << L << "\" x2=\"" << W - 20 << "\" y1=\"" << fmt(y, 1) << "\" y2=\"" << fmt(y, 1)
      << "\" stroke=\"#eee\"/><text x=\"" << L - 6 << "\" y=\"" << fmt(y + 4, 1) << "\" text-anchor=\"end\">" << pct << "%</text>\n";
  }
  for (std::size_t mi = 0; mi < c.models.size(); ++mi) {
    const auto& m = c.models[mi];
    const double x = L + (W - L - 20) * (std::log10(double(std::max<std::int64_t>(1, m.run.n_active_params))) - lmin) / (lmax - lmin);
    const double y = H - B - (H - B - T) * m.by_difficulty.at("all").pass1.value;
    h << "<circle class=\"point\" cx=\"" << fmt(x, 1) << "\" cy=\"" << fmt(y, 1) << "\" r=\"6\" fill=\"" << m.color
      << "\"><title>" << esc(m.label) << "</title></circle><text x=\"" << fmt(x + 9, 1) << "\" y=\"" << fmt(y + 4, 1)
      << "\">" << esc(fit(m.label, 24)) << "</text>\n";
  }
  for (int e = int(std::ceil(lmin)); e <= int(std::floor(lmax)); ++e) {  // a tick at each power of ten
    const double x = L + (W - L - 20) * (double(e) - lmin) / (lmax - lmin);
    const char* unit[] = {"1", "10", "100", "1K", "10K", "100K", "1M", "10M", "100M", "1B", "10B", "100B", "1T"};
    h << "<line x1=\"" << fmt(x, 1) << "\" x2=\"" << fmt(x, 1) << "\" y1=\"" << H - B << "\" y2=\"" << H - B + 4
      << "\" stroke=\"#333\"/><text x=\"" << fmt(x, 1) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">"
      << (e >= 0 && e <= 12 ? unit[e] : "1e" + std::to_string(e)) << "</text>\n";
  }
  h << "<text x=\"" << W / 2 << "\" y=\"" << H - 5 << "\" text-anchor=\"middle\">active parameters (log scale) vs pass@1</text>\n</svg>\n";
  if (!c.curves.empty()) h << "<h2>Training</h2>\n" << training_curves_svg(c.curves);
  funnel_chart(h, c);
  h << "<h2>Disagreements</h2>\n<p>" << c.disagreements.size() << " problems where the majority answers are not equally right"
    << (c.disagreements.size() > 50 ? " (the first 50 by problem id; `distill compare --json` lists them all)" : "") << ".</p>\n<table id=\"disagreements\"><tr><th>problem</th><th>gold</th>";
  for (const auto& m : c.models) h << "<th>" << esc(m.label) << "</th>";
  h << "</tr>\n";
  for (std::size_t i = 0; i < c.disagreements.size() && i < 50; ++i) {
    const auto& d = c.disagreements[i];
    h << "<tr><td class=\"prompt\">" << d.problem_id << ": " << esc(d.prompt.size() > 240 ? fit(d.prompt, 240) : d.prompt)
      << "</td><td>" << esc(d.gold) << "</td>";
    for (std::size_t k = 0; k < d.majority.size(); ++k)
      h << "<td>" << esc(d.majority[k].empty() ? "(none)" : d.majority[k]) << (d.correct[k] ? " &#10003;" : " &#10007;") << "</td>";
    h << "</tr>\n";
  }
  h << "</table>\n</body></html>\n";
  return h.str();
}

}  // namespace distill::eval
