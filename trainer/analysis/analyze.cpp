#include "analysis/analyze.hpp"

#include <algorithm>
#include <charconv>
#include <exception>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <numeric>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "analysis/plots.hpp"
#include "data/json_records.hpp"
#include "data/loaders.hpp"
#include "data/registry.hpp"
#include "data/story_task.hpp"
#include "formats/atomic_file.hpp"
#include "hyplora/analysis/analysis.hpp"
#include "model/load_model.hpp"
#include "util/model_locate.hpp"

namespace hyplora::analysis_cli {

namespace fs = std::filesystem;
using json = nlohmann::json;
using hyplora::index_t;

namespace {

struct SourceRecords {
  std::string name;  // as given on the command line
  std::string format;
  std::vector<data::Record> records;
  std::size_t skipped = 0;
  std::vector<std::string> problems;
};

/// Data format of a JSON / JSON Lines file from the keys of its first record.
data::DataFormat detect_format(const std::string& path) {
  const std::string text = data::read_text_file(path);
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) throw std::runtime_error(path + ": empty data file");
  json rec;
  try {
    if (!data::is_json_lines(path, text)) {
      const json arr = json::parse(text);
      if (!arr.is_array() || arr.empty()) throw std::runtime_error(path + ": cannot detect the data format: an empty JSON array");
      rec = arr.front();
    } else {
      const auto eol = text.find('\n', first);
      rec = json::parse(text.substr(first, eol == std::string::npos ? std::string::npos : eol - first));
    }
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": cannot detect the data format: " + e.what());
  }
  if (!rec.is_object()) throw std::runtime_error(path + ": cannot detect the data format: records are not JSON objects");
  if (rec.contains("original_text")) return data::DataFormat::mawps;
  if (rec.contains("Body") && rec.contains("Question")) return data::DataFormat::svamp;
  if (rec.contains("options") && rec.contains("rationale")) return data::DataFormat::aqua;
  if (rec.contains("instruction")) {
    const bool letter = rec.contains("answer") && rec["answer"].is_string() && rec["answer"].get<std::string>().size() == 1 &&
                        std::isalpha(static_cast<unsigned char>(rec["answer"].get<std::string>()[0]));
    return letter ? data::DataFormat::llm_adapters_choice : data::DataFormat::llm_adapters;
  }
  if (rec.contains("question") && rec.contains("answer")) return data::DataFormat::gsm8k;
  throw std::runtime_error(path + ": cannot detect the data format from the fields of its first record "
                           "(known: GSM8K question/answer, MAWPS original_text, LLM-Adapters instruction, "
                           "SVAMP Body/Question, AQuA options/rationale)");
}

SourceRecords load_source(const std::string& item) {
  SourceRecords s;
  s.name = item;
  if (item == "builtin" || item.rfind("builtin:", 0) == 0) {
    std::size_t count = 2000;
    if (item != "builtin") {  // builtin:<count>, the whole rest a count in [1, kMaxBuiltinCount]
      const std::string text = item.substr(8);
      unsigned long long n = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n < 1 || n > kMaxBuiltinCount)
        throw std::invalid_argument("--data " + item + ": expected builtin:<count> with a count in [1, " +
                                    std::to_string(kMaxBuiltinCount) + "]");
      count = std::size_t(n);
    }
    s.format = "builtin";
    s.records = data::generate_story_problems(data::StoryTaskConfig{}, data::SplitRole::train, count);
    return s;
  }
  data::LoadResult r;
  // FORMAT:PATH, as train / eval / sweep take it (it said "file not found" of an existing file)
  if (const auto colon = item.find(':'); colon != std::string::npos && colon > 0 && !fs::exists(item)) {
    std::optional<data::DataFormat> fmt;
    try {
      fmt = data::format_from_name(item.substr(0, colon));
    } catch (const std::invalid_argument& e) {
      // not a format prefix: a path or a name holding ':', unless what follows is a file
      if (fs::exists(item.substr(colon + 1))) throw std::invalid_argument("--data " + item + ": " + e.what());
    }
    if (fmt) {
      s.format = data::format_name(*fmt);
      r = data::load_file(item.substr(colon + 1), *fmt, data::BadRecordPolicy::skip);
      s.records = std::move(r.records);
      s.skipped = r.skipped;
      s.problems = std::move(r.problems);
      return s;
    }
  }
  if (!fs::exists(item)) {
    // a path is not a misspelt name: "unknown data set '/x.jsonl' (known: ...)" hid the missing file
    const auto ends_with = [&](const std::string& tail) {
      return item.size() >= tail.size() && item.compare(item.size() - tail.size(), tail.size(), tail) == 0;
    };
    if (item.find('/') != std::string::npos || ends_with(".json") || ends_with(".jsonl") || ends_with(".ndjson"))
      throw std::invalid_argument("--data " + item + ": file not found");
    const auto& info = data::find_dataset(item);  // throws listing the known names
    s.format = data::format_name(info.format);
    r = data::load_dataset(item, data::BadRecordPolicy::skip);
  } else {
    const auto fmt = detect_format(item);
    s.format = data::format_name(fmt);
    r = data::load_file(item, fmt, data::BadRecordPolicy::skip);
  }
  s.records = std::move(r.records);
  s.skipped = r.skipped;
  s.problems = std::move(r.problems);
  return s;
}

std::string record_text(const data::Record& r, const std::string& mode) {
  std::string t = r.question;
  if (!r.input.empty()) t += " " + r.input;
  if (mode == "full" && !r.answer_text.empty()) t += " " + r.answer_text;
  return t;
}

std::string csv_escape(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += "\"\"";
    else if (c == '\n') o += "\\n";
    else if (c == '\r') o += "\\r";
    else o += c;
  }
  return o + "\"";
}

std::string num(double v) {
  std::ostringstream s;
  s << std::setprecision(10) << v;
  return s.str();
}

json bins_json(const analysis::NormFrequency& nf) {
  json arr = json::array();
  for (const auto& b : nf.bins)
    arr.push_back({{"count_lo", b.count_lo}, {"count_hi", b.count_hi}, {"tokens", b.tokens}, {"mean_count", b.mean_count},
                   {"mean_norm", b.mean_norm}, {"std_norm", b.std_norm}});
  return arr;
}

}  // namespace

json run_analyze(const AnalyzeOptions& o, std::ostream& log) {
  const auto t_start = std::chrono::steady_clock::now();
  if (o.data.empty()) throw std::invalid_argument("analyze: no --data given");
  if (o.out_dir.empty()) throw std::invalid_argument("analyze: no --out folder given");
  if (o.text != "full" && o.text != "question")
    throw std::invalid_argument("analyze: --text must be 'full' or 'question', not '" + o.text + "'");
  if (o.max_points < 4) throw std::invalid_argument("analyze: --max-points must be at least 4");
  if (o.bins < 1) throw std::invalid_argument("analyze: --bins must be at least 1");
  if (o.max_points > kMaxDeltaPoints)
    throw std::invalid_argument("analyze: --max-points must be at most " + std::to_string(kMaxDeltaPoints) +
                                " (the delta of n points takes n^2 doubles per thread and n^3 time)");
  if (o.max_prompts < 0) throw std::invalid_argument("analyze: --max-prompts must be >= 0 (0 = all), got " + std::to_string(o.max_prompts));
  if (o.min_prompt_tokens < 4) throw std::invalid_argument("analyze: min_prompt_tokens must be at least 4");

  // ---- model and tokenizer -------------------------------------------------------------------------
  std::optional<llm::ModelWeights> weights_opt;
  llm::Tokenizer tokenizer;
  index_t vocab = 0, dim = 0;
  std::string model_name, tokenizer_name;
  if (o.frequency_only) {
    if (o.tokenizer.empty()) throw std::invalid_argument("analyze: --frequency-only needs --tokenizer");
    tokenizer = llm::Tokenizer::load_llama2c(o.tokenizer);
    vocab = tokenizer.vocab_size();
    model_name = "(none: --frequency-only)";
    tokenizer_name = o.tokenizer;
    log << "analyze: frequency only, tokenizer " << o.tokenizer << " (vocab " << vocab << ")\n";
  } else {
    const auto files = util::locate_model(o.model, o.tokenizer);
    auto loaded = llm::load_model_and_tokenizer(files.model, files.tokenizer);
    weights_opt = std::move(loaded.weights);
    const auto& weights = *weights_opt;
    tokenizer = std::move(loaded.tokenizer);
    vocab = weights.config.vocab_size;
    dim = weights.config.dim;
    model_name = files.model.string();
    tokenizer_name = files.tokenizer.empty() ? std::string("(in the model file)") : files.tokenizer.string();
    if (index_t(weights.token_embedding.size()) != vocab * dim)
      throw std::runtime_error("analyze: model " + model_name + " has an embedding of " +
                               std::to_string(weights.token_embedding.size()) + " values, expected vocab x dim = " +
                               std::to_string(vocab * dim));
    for (std::size_t i = 0; i < weights.token_embedding.size(); ++i)
      if (!std::isfinite(weights.token_embedding[i]))
        throw std::runtime_error("analyze: model " + model_name + " has a non-finite token embedding value (row " +
                                 std::to_string(i / std::size_t(dim)) + ")");
    log << "analyze: model " << model_name << " (vocab " << vocab << ", dim " << dim << "), tokenizer " << tokenizer_name
        << "\n";
  }

  // ---- data and token counts -------------------------------------------------------------------------
  std::vector<SourceRecords> sources;
  for (const auto& item : o.data) {
    sources.push_back(load_source(item));
    log << "analyze: " << item << " (" << sources.back().format << "): " << sources.back().records.size() << " records";
    if (sources.back().skipped) log << ", " << sources.back().skipped << " skipped";
    log << "\n";
    // each skipped record with its file:line and problem, as train and eval print them (only the
    // count was printed)
    for (const auto& problem : sources.back().problems) log << "analyze: skipped bad record: " << problem << "\n";
  }
  std::vector<std::uint64_t> counts(std::size_t(vocab), 0);
  struct Prompt {
    std::string id;
    std::vector<int> ids;
  };
  std::vector<Prompt> prompts;
  json sources_json = json::array();
  std::uint64_t total_tokens = 0;
  for (const auto& s : sources) {
    std::uint64_t tokens = 0;
    for (const auto& r : s.records) {
      auto ids = tokenizer.encode(record_text(r, o.text), o.bos, false);
      for (std::size_t k = 0; k < ids.size(); ++k) {
        if (o.bos && k == 0) continue;  // BOS opens every prompt; not corpus text
        const int id = ids[k];
        if (id < 0 || id >= vocab) throw std::runtime_error("analyze: tokenizer produced id " + std::to_string(id) +
                                                            " outside the model's vocabulary " + std::to_string(vocab));
        ++counts[std::size_t(id)];
        ++tokens;
      }
      prompts.push_back({r.id.empty() ? s.name + "#" + std::to_string(prompts.size()) : r.id, std::move(ids)});
    }
    total_tokens += tokens;
    sources_json.push_back({{"data", s.name}, {"format", s.format}, {"records", s.records.size()},
                            {"skipped", s.skipped}, {"tokens", tokens}});
  }
  if (total_tokens == 0) {
    std::string names;
    for (const auto& d : o.data) names += (names.empty() ? "" : ", ") + d;
    throw std::runtime_error("analyze: --data " + names + " gave no tokens (no record, or every record skipped)");
  }
  // The output folder, made (or emptied of an earlier analysis's files) once the inputs are read: a
  // rerun with --frequency-only or --no-plots left the other run's CSVs and plots beside its report.
  bool out_ready = false;
  auto prepare_out = [&] {
    if (out_ready) return;
    fs::create_directories(o.out_dir);
    std::error_code ec;
    for (const char* name : {"report.json", "token_counts.csv", "norm_frequency.csv", "deltas.csv", "frequency_rank.png",
                             "frequency_rank.png.gp", "norm_frequency.png", "norm_frequency.png.gp",
                             "delta_distribution.png", "delta_distribution.png.gp"})
      fs::remove(o.out_dir / name, ec);
    out_ready = true;
  };
  index_t seen_types = 0;
  for (auto c : counts) seen_types += c > 0;

  // ---- power law -------------------------------------------------------------------------------------
  json power_json;
  analysis::PowerLawFit fit;
  bool have_fit = false;
  try {
    analysis::PowerLawOptions po;
    po.min_tail = o.min_tail;
    fit = analysis::fit_discrete_power_law(counts, po);
    have_fit = true;
    power_json = {{"alpha", fit.alpha},
                  {"alpha_stderr", fit.alpha_stderr},
                  {"x_min", fit.x_min},
                  {"ks", fit.ks},
                  {"n_tail", fit.n_tail},
                  {"n_types", fit.n_total},
                  {"log_likelihood", fit.log_likelihood},
                  {"alpha_at_search_bound", fit.alpha_at_bound},
                  {"data", "count of each token type seen (zero counts excluded)"},
                  {"method", "discrete MLE (Hurwitz zeta), x_min by minimum KS distance (Clauset-Shalizi-Newman 2009)"}};
    json tests = json::array();
    for (const char* alt : {"lognormal", "exponential"}) {
      const auto t = analysis::compare_power_law(counts, fit, alt);
      tests.push_back({{"alternative", t.alternative}, {"parameters", t.parameters}, {"log_likelihood", t.log_likelihood},
                       {"R", t.R}, {"normalized_R", t.normalized_R}, {"p_value", t.p_value}, {"favoured", t.favoured}});
    }
    power_json["vuong"] = tests;
    power_json["vuong_note"] = "discrete exponential and discretised log-normal on the same tail; R > 0 favours the power law";
    log << "analyze: power law alpha " << fit.alpha << " +- " << fit.alpha_stderr << ", x_min " << fit.x_min << ", KS "
        << fit.ks << ", tail " << fit.n_tail << " of " << fit.n_total << " types\n";
  } catch (const std::invalid_argument& e) {
    power_json = {{"error", e.what()}};
    log << "analyze: power-law fit skipped: " << e.what() << "\n";
  }

  json norm_json = nullptr, delta_json = nullptr;
  analysis::NormFrequency nf;
  std::vector<double> rel;
  if (!o.frequency_only) {
    const auto& weights = *weights_opt;
    // ---- norm against frequency -------------------------------------------------------------------------
    nf = analysis::norm_by_frequency(weights.token_embedding.data(), vocab, dim, counts, index_t(o.bins));
    norm_json = {{"bins", bins_json(nf)},
                      {"unseen_tokens", nf.unseen_tokens},
                      {"unseen_mean_norm", nf.unseen_mean_norm},
                      {"unseen_std_norm", nf.unseen_std_norm},
                      {"spearman_count_vs_norm", nf.spearman}};
    log << "analyze: Spearman(count, norm) = " << nf.spearman << "\n";

    // ---- delta of prompt embeddings ----------------------------------------------------------------------
    std::size_t n_prompts = prompts.size();
    if (o.max_prompts > 0) n_prompts = std::min<std::size_t>(n_prompts, std::size_t(o.max_prompts));
    const analysis::SampledDeltaOptions dopt{index_t(o.max_points), o.seed};
    // Per-prompt delta with embedding table `table` (vocab x dim); prompts shorter than
    // min_prompt_tokens are left out (used[p] = 0).
    std::vector<char> used(n_prompts, 0);
    auto prompt_deltas = [&](const float* table) {
      std::vector<analysis::DeltaResult<float>> res(n_prompts);
      // an exception may not leave an OpenMP region (std::terminate): the first one is kept and
      // rethrown after it (e.g. bad_alloc for a long prompt)
      std::exception_ptr failure;
  #if defined(_OPENMP)
  #pragma omp parallel for schedule(dynamic, 4)
  #endif
      for (long p = 0; p < long(n_prompts); ++p) {
        try {
          const auto& ids = prompts[std::size_t(p)].ids;
          if (long(ids.size()) < o.min_prompt_tokens) continue;
          std::vector<float> emb(ids.size() * std::size_t(dim));
          for (std::size_t k = 0; k < ids.size(); ++k)
            std::copy_n(table + std::size_t(ids[k]) * std::size_t(dim), dim, emb.data() + k * std::size_t(dim));
          std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ULL + std::uint64_t(p));
          res[std::size_t(p)] = analysis::prompt_delta(emb.data(), index_t(ids.size()), dim, dopt, rng);
          used[std::size_t(p)] = 1;
        } catch (...) {
  #if defined(_OPENMP)
  #pragma omp critical(hyplora_analyze_failure)
  #endif
          if (!failure) failure = std::current_exception();
        }
      }
      if (failure) std::rethrow_exception(failure);
      return res;
    };
    const auto t_delta = std::chrono::steady_clock::now();
    const auto deltas = prompt_deltas(weights.token_embedding.data());
    const double delta_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_delta).count();
    std::vector<analysis::DeltaResult<float>> kept;
    for (std::size_t p = 0; p < n_prompts; ++p)
      if (used[p]) kept.push_back(deltas[p]);
    // Null control: the same prompts over a Gaussian embedding table of the same shape and overall
    // standard deviation (no learned geometry): what delta the prompt structure alone gives.
    double mean_e = 0, var_e = 0;
    for (float v : weights.token_embedding) mean_e += v;
    mean_e /= double(weights.token_embedding.size());
    for (float v : weights.token_embedding) var_e += (v - mean_e) * (v - mean_e);
    const double sd_e = std::sqrt(var_e / double(weights.token_embedding.size()));
    std::vector<float> null_table(weights.token_embedding.size());
    {
      std::mt19937_64 rng(o.seed + 12345);
      std::normal_distribution<double> gauss(0.0, sd_e);
      for (auto& v : null_table) v = float(gauss(rng));
    }
    const auto null_deltas = prompt_deltas(null_table.data());
    std::vector<analysis::DeltaResult<float>> null_kept;
    for (std::size_t p = 0; p < n_prompts; ++p)
      if (used[p]) null_kept.push_back(null_deltas[p]);
    const auto null_ds = analysis::summarize_deltas(null_kept);
    const auto ds = analysis::summarize_deltas(kept);
    delta_json = {{"prompts", ds.count},
                       {"skipped_short_prompts", long(n_prompts) - long(ds.count)},
                       {"mean_delta", ds.mean_delta},
                       {"std_delta", ds.std_delta},
                       {"mean_relative", ds.mean_relative},
                       {"std_relative", ds.std_relative},
                       {"min_relative", ds.min_relative},
                       {"max_relative", ds.max_relative},
                       {"max_points", o.max_points},
                       {"base_point", o.bos ? "first token (BOS)" : "first token"},
                       {"distance", "Euclidean distance of input-embedding rows"},
                       {"seconds", delta_seconds},
                       {"gaussian_null_control",
                        {{"mean_relative", null_ds.mean_relative},
                         {"std_relative", null_ds.std_relative},
                         {"mean_delta", null_ds.mean_delta},
                         {"embedding_std", sd_e},
                         {"note", "same prompts, embedding table replaced by i.i.d. Gaussian values of the same overall "
                                  "standard deviation"}}}};
    if (ds.count == 0) {  // its zeros read as a tree's delta: no figure at all, said so
      const std::string why = "no prompt has at least " + std::to_string(o.min_prompt_tokens) +
                              " tokens (" + std::to_string(n_prompts) + " skipped): no Gromov delta was measured";
      delta_json = {{"prompts", 0}, {"skipped_short_prompts", long(n_prompts)}, {"mean_relative", nullptr},
                    {"mean_delta", nullptr}, {"note", why}};
      log << "analyze: warning: " << why << "\n";
    } else {
      log << "analyze: delta over " << ds.count << " prompts: relative " << ds.mean_relative << " +- " << ds.std_relative
          << " (delta " << ds.mean_delta << " +- " << ds.std_delta << "), " << delta_seconds << " s; Gaussian null "
          << null_ds.mean_relative << " +- " << null_ds.std_relative << "\n";
    }

    {
      std::ostringstream s;
      s << "bin,count_lo,count_hi,tokens,mean_count,mean_norm,std_norm\n";
      for (std::size_t b = 0; b < nf.bins.size(); ++b) {
        const auto& x = nf.bins[b];
        s << b << "," << num(x.count_lo) << "," << num(x.count_hi) << "," << x.tokens << "," << num(x.mean_count) << ","
          << num(x.mean_norm) << "," << num(x.std_norm) << "\n";
      }
      s << "unseen,0,0," << nf.unseen_tokens << ",0," << num(nf.unseen_mean_norm) << "," << num(nf.unseen_std_norm) << "\n";
      prepare_out();
      formats::write_file_atomically(o.out_dir / "norm_frequency.csv", s.str());
    }
    {
      std::ostringstream s;
      s << "prompt,id,tokens,points,delta,diameter,relative_delta\n";
      for (std::size_t p = 0; p < n_prompts; ++p) {
        if (!used[p]) continue;
        const auto& d = deltas[p];
        s << p << "," << csv_escape(prompts[p].id) << "," << prompts[p].ids.size() << "," << d.n << "," << num(d.delta) << ","
          << num(d.diameter) << "," << num(d.relative) << "\n";
      }
      formats::write_file_atomically(o.out_dir / "deltas.csv", s.str());
    }

    for (const auto& d : kept) rel.push_back(double(d.relative));
  }

  // ---- tables --------------------------------------------------------------------------------------------
  {
    std::vector<index_t> order(static_cast<std::size_t>(vocab));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](index_t a, index_t b) { return counts[std::size_t(a)] > counts[std::size_t(b)]; });
    std::ostringstream s;
    s << "rank,token_id,piece,count,frequency,embedding_norm\n";
    for (std::size_t r = 0; r < order.size(); ++r) {
      const index_t t = order[r];
      s << r + 1 << "," << t << "," << csv_escape(tokenizer.piece(int(t))) << "," << counts[std::size_t(t)] << ","
        << num(double(counts[std::size_t(t)]) / double(total_tokens)) << "," << (nf.norms.empty() ? std::string() : num(nf.norms[std::size_t(t)])) << "\n";
    }
    prepare_out();
    formats::write_file_atomically(o.out_dir / "token_counts.csv", s.str());
  }
  // ---- plots -----------------------------------------------------------------------------------------------
  json plots_json = json::object();
  if (o.plots) {
    const auto results = make_analysis_plots(o.out_dir, counts, o.frequency_only ? nullptr : &nf, have_fit ? &fit : nullptr,
                                             o.frequency_only ? nullptr : &rel);
    for (const auto& r : results) {
      plots_json[r.name] = r.rendered ? json(r.image.filename().string()) : json({{"script", r.script.filename().string()}, {"not_rendered", r.message}});
      if (!r.rendered) log << "analyze: plot " << r.name << " not rendered: " << r.message << "\n";
    }
  }

  json report = {
      {"model", model_name},
      {"tokenizer", tokenizer_name},
      {"vocab_size", vocab},
      {"embedding_dim", dim},
      {"text", o.text == "full" ? "question + input + worked answer" : "question + input"},
      {"bos", o.bos},
      {"seed", o.seed},
      {"data", sources_json},
      {"tokens", total_tokens},
      {"token_types_seen", seen_types},
      {"power_law", power_json},
      {"norm_vs_frequency", norm_json},
      {"delta", delta_json},
      {"plots", plots_json},
      {"paper_reference", {{"relative_delta", "about 0.06-0.12 (LLaMA-class models)"}, {"power_law_alpha", 1.9}}},
      {"files", o.frequency_only ? json({"report.json", "token_counts.csv"})
                                 : json({"report.json", "token_counts.csv", "norm_frequency.csv", "deltas.csv"})},
      {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count()}};
  prepare_out();
  formats::write_file_atomically(o.out_dir / "report.json", report.dump(2) + "\n");
  log << "analyze: wrote " << (o.out_dir / "report.json").string() << "\n";
  return report;
}

}  // namespace hyplora::analysis_cli
