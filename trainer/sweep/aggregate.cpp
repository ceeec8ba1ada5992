#include "sweep/aggregate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "formats/atomic_file.hpp"
#include "util/plot.hpp"

namespace fs = std::filesystem;

namespace hyplora::sweep {
namespace {

std::string pct(double v) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", 100.0 * v);
  return buf;
}
std::string p_value(double p) {
  if (!std::isfinite(p)) return "-";
  if (p < 0.001) return "<0.001";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", p);
  return buf;
}
std::string num(double v, const char* fmt = "%.4g") {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}
/// gnuplot's enhanced text reads '_' as a subscript: plot titles use '-' instead.
std::string plot_title(std::string t) {
  for (auto& ch : t)
    if (ch == '_') ch = '-';
  return t;
}

/// " (+N diverged)" after a seed count, nothing when none diverged.
std::string diverged_note(std::size_t n) { return n ? " (+" + std::to_string(n) + " diverged)" : ""; }

double half_width(const eval::Summary& s) { return s.n >= 2 ? (s.ci_high - s.ci_low) / 2 : std::nan(""); }

nlohmann::json summary_json(const eval::Summary& s) {
  auto f = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {{"n", s.n}, {"mean", f(s.mean)}, {"std", f(s.std)}, {"ci_low", f(s.ci_low)}, {"ci_high", f(s.ci_high)}, {"level", s.level}};
}

nlohmann::json cuts_json(const CutCounts& c) {
  nlohmann::json j = {{"answers", c.answers}};
  for (const auto& f : CutCounts::fields) j[f.key] = c.*f.member;
  return j;
}

// A cell's answers into the counts of its test set and of its further sets: the same for an arm's
// seeds and for the base row.
void add_cell_cuts(const CellResult& c, CutCounts& test, CutCounts& further) {
  test.add(c.test);
  for (const auto& e : c.extra_tests) further.add(e);
}

}  // namespace

void CutCounts::add(const eval::DatasetAccuracy& d) {
  answers += d.overall.total;
  for (const auto& f : fields) this->*f.member += d.*f.source;
}

SweepSummary aggregate(const std::vector<CellResult>& cells, const std::vector<std::string>& arm_order,
                       std::size_t resamples, std::uint64_t permutation_seed) {
  SweepSummary out;
  std::set<std::string> ids;
  std::map<std::string, std::map<double, std::vector<const CellResult*>>> by_arm;  // arm -> lr -> cells
  std::set<int> depths;
  for (const auto& c : cells) {
    if (!ids.insert(c.id).second) throw std::invalid_argument("sweep aggregate: cell '" + c.id + "' appears twice");
    for (const auto& [d, t] : c.test.by_depth) depths.insert(d);
    for (const auto& e : c.extra_tests)
      if (std::find(out.extra_sets.begin(), out.extra_sets.end(), e.name) == out.extra_sets.end()) out.extra_sets.push_back(e.name);
    if (!c.diverged) {  // a diverged cell was not evaluated
      auto note_limit = [&](const eval::DatasetAccuracy& d) {
        const bool seen = std::any_of(out.set_limits.begin(), out.set_limits.end(), [&](const auto& l) { return l.first == d.name; });
        if (d.limit.max_new_tokens > 0 && !seen) out.set_limits.emplace_back(d.name, d.limit.describe());
      };
      note_limit(c.validation);
      note_limit(c.test);
      for (const auto& e : c.extra_tests) note_limit(e);
    }
    if (c.variant == "base") {
      out.base = c;
      out.base_test_cuts = out.base_extra_cuts = CutCounts{};
      add_cell_cuts(c, out.base_test_cuts, out.base_extra_cuts);
      continue;
    }
    if (c.diverged) out.diverged.push_back(DivergedCell{c.id, c.arm, c.lr, c.seed, c.diverged_step, c.diverged_reason});
    by_arm[c.arm][c.lr].push_back(&c);
  }
  out.depths.assign(depths.begin(), depths.end());

  std::vector<std::string> arms;
  for (const auto& a : arm_order)
    if (by_arm.count(a)) arms.push_back(a);
  for (const auto& [a, _] : by_arm)
    if (std::find(arms.begin(), arms.end(), a) == arms.end()) arms.push_back(a);

  for (const auto& arm : arms) {
    const auto& lrs = by_arm.at(arm);
    // per lr: the cells that trained and the number that diverged
    std::map<double, std::vector<const CellResult*>> trained;
    std::map<double, std::size_t> diverged;
    std::vector<LrStat> rows;
    for (const auto& [lr, cs] : lrs) {
      std::vector<double> va, vl, ta;
      auto& t = trained[lr];
      for (const auto* c : cs) {
        if (c->diverged) {
          ++diverged[lr];
          continue;
        }
        t.push_back(c);
        va.push_back(c->validation.overall.accuracy());
        vl.push_back(c->best_val_loss);
        ta.push_back(c->test.overall.accuracy());
      }
      rows.push_back(LrStat{arm, lr, t.size(), eval::shifted_mean(va), eval::shifted_mean(vl), eval::shifted_mean(ta), false, diverged[lr]});
    }
    // choose the lr on validation, among the lrs with trained cells: a diverged cell is the worst
    // possible validation loss, so the fewest diverged cells come first; among those, the most seeds
    std::size_t fewest_diverged = std::numeric_limits<std::size_t>::max(), most = 0;
    for (const auto& r : rows)
      if (r.seeds > 0) fewest_diverged = std::min(fewest_diverged, r.diverged);
    for (const auto& r : rows)
      if (r.seeds > 0 && r.diverged == fewest_diverged) most = std::max(most, r.seeds);
    bool any_chosen = false;
    double chosen_lr = 0;
    double best_acc = -1, best_loss = 0;
    for (const auto& row : rows) {
      if (row.seeds == 0 || row.diverged != fewest_diverged || row.seeds != most) continue;
      // Equal accuracies are a tie whatever the order of the sums: (0 + 0 + 5/96) / 3 and
      // (0 + 1/96 + 4/96) / 3 differ in the last bit, while two different means of n seeds on t
      // problems differ by at least 1/(n t), far above a few rounding errors.
      const bool tied = std::abs(row.val_accuracy - best_acc) <=
                        16 * std::numeric_limits<double>::epsilon() * std::max(std::abs(row.val_accuracy), std::abs(best_acc));
      const bool better = !any_chosen || (!tied && row.val_accuracy > best_acc) ||
                          (tied && row.val_loss < best_loss);  // lrs ascend: ties keep the smaller
      if (better) {
        any_chosen = true;
        best_acc = row.val_accuracy;
        best_loss = row.val_loss;
        chosen_lr = row.lr;
      }
    }
    for (auto& r : rows) {
      r.chosen = any_chosen && r.lr == chosen_lr;
      out.lr_table.push_back(r);
    }
    if (!any_chosen) {  // every recorded cell of the arm diverged: reported as such, no statistics
      const CellResult* any = lrs.begin()->second.front();
      ArmSummary s;
      s.arm = arm;
      s.variant = any->variant;
      s.curvature_label = any->curvature_label;
      s.lr = std::nan("");
      s.steps = any->steps;
      s.batch = any->batch;
      s.best_val_loss = s.final_K = s.target_tokens = std::nan("");
      for (auto* sum : {&s.test, &s.validation}) sum->mean = sum->std = sum->ci_low = sum->ci_high = std::nan("");
      s.diverged = true;
      for (const auto& [lr, n] : diverged) s.diverged_seeds += n;
      out.arms.push_back(std::move(s));
      continue;
    }

    auto cs = trained.at(chosen_lr);
    std::sort(cs.begin(), cs.end(), [](const CellResult* a, const CellResult* b) { return a->seed < b->seed; });
    ArmSummary s;
    s.arm = arm;
    s.diverged_seeds = diverged[chosen_lr];
    s.variant = cs.front()->variant;
    s.curvature_label = cs.front()->curvature_label;
    s.lr = chosen_lr;
    s.steps = cs.front()->steps;
    s.batch = cs.front()->batch;
    std::vector<double> val, loss, K, tokens;
    std::map<int, std::vector<double>> depth_acc;
    std::map<std::string, std::vector<double>> extra_acc;
    std::vector<double> extra_pooled;
    std::map<long, std::vector<double>> curve;
    for (const auto* c : cs) {
      add_cell_cuts(*c, s.test_cuts, s.extra_cuts);
      s.seeds.push_back(c->seed);
      s.test_accuracy.push_back(c->test.overall.accuracy());
      val.push_back(c->validation.overall.accuracy());
      loss.push_back(c->best_val_loss);
      s.best_val_losses.push_back(c->best_val_loss);
      K.push_back(c->final_K);
      tokens.push_back(double(c->target_tokens));
      for (int d : out.depths) {
        auto it = c->test.by_depth.find(d);
        if (it != c->test.by_depth.end() && it->second.total > 0) depth_acc[d].push_back(it->second.accuracy());
      }
      for (const auto& [step, l] : c->val_curve)
        if (std::isfinite(l)) curve[step].push_back(l);
      eval::Tally pooled;
      for (const auto& e : c->extra_tests) {
        extra_acc[e.name].push_back(e.overall.accuracy());
        pooled.total += e.overall.total;
        pooled.correct += e.overall.correct;
      }
      if (pooled.total > 0) extra_pooled.push_back(pooled.accuracy());
    }
    for (const auto& [name, v] : extra_acc) s.extra_test[name] = eval::summarize(v);
    if (!extra_pooled.empty()) s.extra_weighted = eval::summarize(extra_pooled);
    s.test = eval::summarize(s.test_accuracy);
    s.validation = eval::summarize(val);
    for (const auto& [d, v] : depth_acc) s.test_by_depth[d] = eval::summarize(v);
    s.best_val_loss = eval::shifted_mean(loss);
    s.final_K = eval::shifted_mean(K);
    s.target_tokens = eval::shifted_mean(tokens);
    for (const auto& [step, v] : curve)
      if (v.size() == cs.size()) s.val_curve.emplace_back(step, eval::shifted_mean(v));
    out.arms.push_back(std::move(s));
  }

  for (std::size_t i = 0; i < out.arms.size(); ++i)
    for (std::size_t j = i + 1; j < out.arms.size(); ++j) {
      const auto& A = out.arms[i];
      const auto& B = out.arms[j];
      std::vector<double> a, b, la, lb;
      for (std::size_t x = 0; x < A.seeds.size(); ++x)
        for (std::size_t y = 0; y < B.seeds.size(); ++y)
          if (A.seeds[x] == B.seeds[y]) {
            a.push_back(A.test_accuracy[x]);
            b.push_back(B.test_accuracy[y]);
            la.push_back(A.best_val_losses[x]);
            lb.push_back(B.best_val_losses[y]);
          }
      if (a.empty()) continue;
      out.pairs.push_back(PairRow{A.arm, B.arm, eval::compare_paired(a, b, resamples, permutation_seed),
                                  eval::compare_paired(la, lb, resamples, permutation_seed)});
    }
  // every pair of a table is one family of tests: Holm's adjustment over it (accuracy, loss)
  std::vector<double> p_acc, p_loss;
  for (const auto& p : out.pairs) {
    p_acc.push_back(p.cmp.permutation_p);
    p_loss.push_back(p.loss_cmp.permutation_p);
  }
  const auto h_acc = eval::holm_adjust(p_acc), h_loss = eval::holm_adjust(p_loss);
  for (std::size_t k = 0; k < out.pairs.size(); ++k) {
    out.pairs[k].holm_p = h_acc[k];
    out.pairs[k].loss_holm_p = h_loss[k];
  }
  return out;
}

std::string to_markdown(const SweepSummary& s) {
  std::ostringstream md;
  md << "### Test accuracy (%) at the learning rate chosen on validation\n\n";
  md << "Mean over seeds, sample std, Student-t 95% CI; per depth: mean ± CI half-width.\n\n";
  md << "| arm | lr | seeds | val acc | test acc | std | 95% CI |";
  for (int d : s.depths) md << " depth " << d << " |";
  md << " best val loss | K |\n|---|---|---|---|---|---|---|";
  for (std::size_t i = 0; i < s.depths.size(); ++i) md << "---|";
  md << "---|---|\n";
  if (s.base) {
    md << "| base (no adapter) | - | - | " << pct(s.base->validation.overall.accuracy()) << " | "
       << pct(s.base->test.overall.accuracy()) << " | - | - |";
    for (int d : s.depths) {
      auto it = s.base->test.by_depth.find(d);
      md << " " << (it == s.base->test.by_depth.end() ? "-" : pct(it->second.accuracy())) << " |";
    }
    md << " - | - |\n";
  }
  for (const auto& a : s.arms) {
    if (a.diverged) {  // no lr trained: a row that says so, not a silent gap
      md << "| " << a.arm << " | diverged at every lr | 0 (" << a.diverged_seeds << " diverged) | - | - | - | - |";
      for (std::size_t i = 0; i < s.depths.size(); ++i) md << " - |";
      md << " - | - |\n";
      continue;
    }
    md << "| " << a.arm << " | " << num(a.lr, "%g") << " | " << a.test.n << diverged_note(a.diverged_seeds) << " | "
       << pct(a.validation.mean) << " | "
       << pct(a.test.mean) << " | " << pct(a.test.std) << " | [" << pct(a.test.ci_low) << ", " << pct(a.test.ci_high) << "] |";
    for (int d : s.depths) {
      auto it = a.test_by_depth.find(d);
      if (it == a.test_by_depth.end()) md << " - |";
      else md << " " << pct(it->second.mean) << " ± " << pct(half_width(it->second)) << " |";
    }
    md << " " << num(a.best_val_loss) << " | " << (a.variant == "lora" || a.variant == "lora_scaled" || a.variant == "naive" ? "-" : num(a.final_K)) << " |\n";
  }
  if (!s.extra_sets.empty()) {
    md << "\n### Further test sets (%) at the same learning rate\n\n"
          "Each set's first records as given by the grid's eval_limit; mean ± 95% CI half-width over seeds; "
          "'pooled' = correct / total over all these sets per seed.\n\n| arm |";
    for (const auto& n : s.extra_sets) md << " " << n << " |";
    md << " pooled |\n|---|";
    for (std::size_t i = 0; i <= s.extra_sets.size(); ++i) md << "---|";
    md << "\n";
    if (s.base) {
      md << "| base (no adapter) |";
      eval::Tally pooled;
      for (const auto& n : s.extra_sets) {
        auto it = std::find_if(s.base->extra_tests.begin(), s.base->extra_tests.end(), [&](const auto& e) { return e.name == n; });
        if (it == s.base->extra_tests.end()) {
          md << " - |";
          continue;
        }
        md << " " << pct(it->overall.accuracy()) << " |";
        pooled.total += it->overall.total;
        pooled.correct += it->overall.correct;
      }
      md << " " << (pooled.total ? pct(pooled.accuracy()) : "-") << " |\n";
    }
    auto cell = [](const eval::Summary& x) {
      const double h = half_width(x);
      return pct(x.mean) + (std::isfinite(h) ? " ± " + pct(h) : "");
    };
    for (const auto& a : s.arms) {
      md << "| " << a.arm << " |";
      for (const auto& n : s.extra_sets) {
        auto it = a.extra_test.find(n);
        md << " " << (it == a.extra_test.end() ? "-" : cell(it->second)) << " |";
      }
      md << " " << (a.extra_weighted.n ? cell(a.extra_weighted) : "-") << " |\n";
    }
  }
  if (!s.set_limits.empty()) {
    md << "\n### Generation limits and cut answers\n\nEach evaluated set's new-token limit:";
    for (std::size_t i = 0; i < s.set_limits.size(); ++i)
      md << (i ? "; " : " ") << s.set_limits[i].first << " " << s.set_limits[i].second;
    md << ".\n\nPer arm, over its seeds at the chosen lr: answers that stopped at the limit (cut, scored as generated), "
          "that filled the model's context, prompts with no room to answer, answers the model ended with EOS before "
          "the stop text, and answers with no number (or letter) to score.\n\n"
          "| arm | sets | answers |";
    for (const auto& f : CutCounts::fields) md << " " << f.column << " |";
    md << "\n|---|---|---|";
    for (std::size_t k = 0; k < CutCounts::fields.size(); ++k) md << "---|";
    md << "\n";
    auto row = [&](const std::string& arm, const char* sets, const CutCounts& c) {
      if (c.answers == 0) return;
      md << "| " << arm << " | " << sets << " | " << c.answers << " |";
      for (const auto& f : CutCounts::fields) md << " " << c.*f.member << " |";
      md << "\n";
    };
    row("base (no adapter)", "test", s.base_test_cuts);
    row("base (no adapter)", "further", s.base_extra_cuts);
    for (const auto& a : s.arms) {
      row(a.arm, "test", a.test_cuts);
      row(a.arm, "further", a.extra_cuts);
    }
  }
  md << "\n### Learning-rate choice (validation split; test shown for information only)\n\n";
  md << "| arm | lr | seeds | val acc (%) | best val loss | test acc (%) | chosen |\n|---|---|---|---|---|---|---|\n";
  for (const auto& r : s.lr_table)  // an lr with a diverged cell: its loss is the worst possible
    md << "| " << r.arm << " | " << num(r.lr, "%g") << " | " << r.seeds << diverged_note(r.diverged) << " | "
       << pct(r.val_accuracy) << " | " << (r.diverged ? std::string("diverged") : num(r.val_loss)) << " | "
       << pct(r.test_accuracy) << " | " << (r.chosen ? "yes" : "") << " |\n";
  if (!s.diverged.empty()) {
    md << "\n### Diverged cells (" << s.diverged.size()
       << ", recorded, not run again; treated as the worst validation loss of their arm)\n\n"
          "| cell | arm | lr | seed | step | reason |\n|---|---|---|---|---|---|\n";
    for (const auto& d : s.diverged) {
      std::string reason;  // one table cell: '|' escaped, line breaks as spaces
      for (char ch : d.reason) reason += ch == '|' ? std::string("\\|") : std::string(1, ch == '\n' ? ' ' : ch);
      md << "| " << d.id << " | " << d.arm << " | " << num(d.lr, "%g") << " | " << d.seed << " | "
         << (d.step >= 0 ? std::to_string(d.step) : "-") << " | " << reason << " |\n";
    }
  }
  const char* tests_note =
      "Paired permutation test (sign flips of the per-seed differences: all of them up to 20 seeds, 100,000 "
      "random ones beyond; its smallest p is 2/2^seeds: 0.0625 with 5 seeds), the same p adjusted by Holm over "
      "all the pairs of the table, and the exact sign test.\n\n";
  md << "\n### Paired comparisons of test accuracy over common seeds (A - B)\n\n" << tests_note;
  md << "| A | B | seeds | mean A-B (points) | A wins / B wins / ties | permutation p | Holm p | sign test p |\n"
        "|---|---|---|---|---|---|---|---|\n";
  for (const auto& p : s.pairs)
    md << "| " << p.a << " | " << p.b << " | " << p.cmp.n << " | " << num(100.0 * p.cmp.mean_difference, "%+.1f") << " | "
       << p.cmp.wins << " / " << p.cmp.losses << " / " << p.cmp.ties << " | " << p_value(p.cmp.permutation_p) << " | "
       << p_value(p.holm_p) << " | " << num(p.cmp.sign_test_p, "%.3f") << " |\n";
  md << "\n### Paired comparisons of the best validation loss over common seeds (A - B; lower is better)\n\n" << tests_note;
  md << "| A | B | seeds | mean A-B | A higher / B higher / ties | permutation p | Holm p | sign test p |\n"
        "|---|---|---|---|---|---|---|---|\n";
  for (const auto& p : s.pairs)
    md << "| " << p.a << " | " << p.b << " | " << p.loss_cmp.n << " | " << num(p.loss_cmp.mean_difference, "%+.4f") << " | "
       << p.loss_cmp.wins << " / " << p.loss_cmp.losses << " / " << p.loss_cmp.ties << " | "
       << p_value(p.loss_cmp.permutation_p) << " | " << p_value(p.loss_holm_p) << " | "
       << num(p.loss_cmp.sign_test_p, "%.3f") << " |\n";
  md << "\n### Budget per cell\n\n| arm | steps | batch | response tokens trained on (mean over seeds) |\n|---|---|---|---|\n";
  for (const auto& a : s.arms)
    if (a.diverged) md << "| " << a.arm << " | - | " << a.batch << " | diverged |\n";
    else md << "| " << a.arm << " | " << a.steps << " | " << a.batch << " | " << num(a.target_tokens, "%.0f") << " |\n";
  return md.str();
}

nlohmann::json to_json(const SweepSummary& s) {
  nlohmann::json j;
  for (const auto& [name, limit] : s.set_limits) j["set_limits"][name] = limit;
  j["depths"] = s.depths;
  j["extra_sets"] = s.extra_sets;
  for (const auto& a : s.arms) {
    nlohmann::json ja = {{"arm", a.arm}, {"variant", a.variant}, {"curvature", a.curvature_label},
                         {"lr", std::isfinite(a.lr) ? nlohmann::json(a.lr) : nlohmann::json(nullptr)},
                         {"seeds", a.seeds}, {"test_accuracy", a.test_accuracy},
                         {"best_val_losses", a.best_val_losses}, {"test", summary_json(a.test)},
                         {"validation", summary_json(a.validation)},
                         {"best_val_loss", std::isfinite(a.best_val_loss) ? nlohmann::json(a.best_val_loss) : nlohmann::json(nullptr)},
                         {"final_K", std::isfinite(a.final_K) ? nlohmann::json(a.final_K) : nlohmann::json(nullptr)},
                         {"target_tokens", std::isfinite(a.target_tokens) ? nlohmann::json(a.target_tokens) : nlohmann::json(nullptr)},
                         {"steps", a.steps}, {"batch", a.batch}, {"val_curve", a.val_curve},
                         {"diverged", a.diverged}, {"diverged_seeds", a.diverged_seeds},
                         {"test_cuts", cuts_json(a.test_cuts)}, {"extra_cuts", cuts_json(a.extra_cuts)}};
    for (const auto& [d, sd] : a.test_by_depth) ja["test_by_depth"][std::to_string(d)] = summary_json(sd);
    for (const auto& [n, sd] : a.extra_test) ja["extra_test"][n] = summary_json(sd);
    if (a.extra_weighted.n) ja["extra_pooled"] = summary_json(a.extra_weighted);
    j["arms"].push_back(ja);
  }
  for (const auto& r : s.lr_table)
    j["lr_table"].push_back({{"arm", r.arm}, {"lr", r.lr}, {"seeds", r.seeds},
                             {"val_accuracy", std::isfinite(r.val_accuracy) ? nlohmann::json(r.val_accuracy) : nlohmann::json(nullptr)},
                             {"val_loss", std::isfinite(r.val_loss) ? nlohmann::json(r.val_loss) : nlohmann::json(nullptr)},
                             {"test_accuracy", std::isfinite(r.test_accuracy) ? nlohmann::json(r.test_accuracy) : nlohmann::json(nullptr)},
                             {"chosen", r.chosen}, {"diverged", r.diverged}});
  j["diverged_cells"] = nlohmann::json::array();
  for (const auto& d : s.diverged)
    j["diverged_cells"].push_back({{"id", d.id}, {"arm", d.arm}, {"lr", d.lr}, {"seed", d.seed}, {"step", d.step}, {"reason", d.reason}});
  for (const auto& p : s.pairs)
    j["pairs"].push_back({{"a", p.a}, {"b", p.b}, {"n", p.cmp.n}, {"mean_difference", p.cmp.mean_difference},
                          {"wins", p.cmp.wins}, {"losses", p.cmp.losses}, {"ties", p.cmp.ties},
                          {"permutation_p", p.cmp.permutation_p}, {"holm_p", p.holm_p}, {"sign_test_p", p.cmp.sign_test_p},
                          {"val_loss_mean_difference", p.loss_cmp.mean_difference},
                          {"val_loss_wins", p.loss_cmp.wins}, {"val_loss_losses", p.loss_cmp.losses},
                          {"val_loss_permutation_p", p.loss_cmp.permutation_p}, {"val_loss_holm_p", p.loss_holm_p},
                          {"val_loss_sign_test_p", p.loss_cmp.sign_test_p}});
  if (s.base) {
    j["base"] = to_json(*s.base);
    j["base_test_cuts"] = cuts_json(s.base_test_cuts);
    j["base_extra_cuts"] = cuts_json(s.base_extra_cuts);
  }
  return j;
}

std::vector<CellResult> recorded_cells(const SweepGrid& grid, const fs::path& dir) {
  std::vector<CellResult> cells;
  if (!fs::is_directory(dir / "cells")) return cells;  // (a ResultsStore would create the folder)
  ResultsStore store(dir);
  for (const auto& c : expand_cells(grid)) {
    auto r = store.load(c.id());
    if (r && r->fingerprint == cell_fingerprint(grid, c)) cells.push_back(std::move(*r));
  }
  return cells;
}

WrittenSummary write_summary(const SweepGrid& grid, const fs::path& dir) {
  const auto specs = expand_cells(grid);
  std::vector<std::string> arm_order;
  for (const auto& c : specs)
    if (std::find(arm_order.begin(), arm_order.end(), c.arm()) == arm_order.end() && c.variant != "base") arm_order.push_back(c.arm());
  const std::vector<CellResult> cells = recorded_cells(grid, dir);
  WrittenSummary w;
  w.summary = aggregate(cells, arm_order);
  const auto& s = w.summary;
  std::ostringstream md;
  md << "## Sweep summary (" << cells.size() << " of " << specs.size() << " cells recorded"
     << (s.diverged.empty() ? std::string() : ", " + std::to_string(s.diverged.size()) + " of them diverged") << ")\n\n"
     << "Grid: `" << to_json(grid).dump() << "`\n\n"
     << to_markdown(s) << "\nPlots: " << (s.depths.empty() ? "" : "`accuracy_by_depth.png`, ") << "`val_loss.png`"
     << (!s.extra_sets.empty() || s.depths.empty() ? ", `accuracy_by_set.png`" : "") << ".\n";
  w.markdown = md.str();
  w.markdown_path = dir / "summary.md";
  formats::write_file_atomically(w.markdown_path, w.markdown);
  formats::write_file_atomically(dir / "summary.json", to_json(s).dump(2) + "\n");

  std::vector<const ArmSummary*> plotted;  // an arm that diverged at every lr has nothing to draw
  for (const auto& a : s.arms)
    if (!a.diverged) plotted.push_back(&a);
  if (!plotted.empty()) {
    const double n = double(plotted.size());
    if (!s.depths.empty()) {  // real data sets carry no depth: no such plot then
      util::PlotPanel acc{"test accuracy by depth (mean, 95% CI over seeds)", "depth (operations)", "accuracy (%)", {}};
      for (std::size_t i = 0; i < plotted.size(); ++i) {
        const auto& a = *plotted[i];
        util::PlotSeries ser{plot_title(a.arm) + " (lr " + num(a.lr, "%g") + ")", {}, {}, {}};
        const double offset = (double(i) - (n - 1) / 2) * 0.05;  // keeps the error bars apart
        for (const auto& [d, sd] : a.test_by_depth) {
          ser.x.push_back(d + offset);
          ser.y.push_back(100 * sd.mean);
          const double h = half_width(sd);
          ser.y_error.push_back(std::isfinite(h) ? 100 * h : 0.0);
        }
        acc.series.push_back(std::move(ser));
      }
      if (s.base) {
        util::PlotSeries ser{"base (no adapter)", {}, {}, {}};
        for (const auto& [d, t] : s.base->test.by_depth) {
          ser.x.push_back(d);
          ser.y.push_back(100 * t.accuracy());
        }
        acc.series.push_back(std::move(ser));
      }
      auto r1 = util::render_plot(dir / "accuracy_by_depth.png", {acc}, 900, 520);
      if (!r1.rendered) std::cerr << "hyplora sweep: " << r1.message << "\n";
    }
    util::PlotPanel loss{"validation loss (mean over seeds, chosen lr)", "step", "loss (response tokens)", {}};
    for (const auto* ap : plotted) {
      const auto& a = *ap;
      util::PlotSeries ser{plot_title(a.arm), {}, {}, {}};
      for (const auto& [step, l] : a.val_curve) {
        ser.x.push_back(double(step));
        ser.y.push_back(l);
      }
      loss.series.push_back(std::move(ser));
    }
    loss.log_y = true;
    auto r2 = util::render_plot(dir / "val_loss.png", {loss}, 900, 520);
    if (!r2.rendered) std::cerr << "hyplora sweep: " << r2.message << "\n";
    if (!s.extra_sets.empty() || s.depths.empty()) {
      // one x position per test set: 1 = the task's test set, then the eval_data sets
      std::string xlabel = "test set: 1 = task test";
      for (std::size_t i = 0; i < s.extra_sets.size(); ++i) xlabel += ", " + std::to_string(i + 2) + " = " + plot_title(s.extra_sets[i]);
      util::PlotPanel sets{"test accuracy by test set (mean, 95% CI over seeds)", xlabel, "accuracy (%)", {}};
      sets.x_tics = 1;
      for (std::size_t i = 0; i < plotted.size(); ++i) {
        const auto& a = *plotted[i];
        util::PlotSeries ser{plot_title(a.arm) + " (lr " + num(a.lr, "%g") + ")", {}, {}, {}};
        const double offset = (double(i) - (n - 1) / 2) * 0.04;
        auto add = [&](double x, const eval::Summary& sd) {
          ser.x.push_back(x + offset);
          ser.y.push_back(100 * sd.mean);
          const double h = half_width(sd);
          ser.y_error.push_back(std::isfinite(h) ? 100 * h : 0.0);
        };
        add(1, a.test);
        for (std::size_t k = 0; k < s.extra_sets.size(); ++k) {
          auto it = a.extra_test.find(s.extra_sets[k]);
          if (it != a.extra_test.end()) add(double(k + 2), it->second);
        }
        sets.series.push_back(std::move(ser));
      }
      auto r3 = util::render_plot(dir / "accuracy_by_set.png", {sets}, 900, 520);
      if (!r3.rendered) std::cerr << "hyplora sweep: " << r3.message << "\n";
    }
  }
  return w;
}

}  // namespace hyplora::sweep
