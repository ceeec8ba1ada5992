#include "train/dataset.hpp"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "data/loaders.hpp"
#include "data/registry.hpp"
#include "data/repeats.hpp"
#include "data/rng.hpp"

namespace hyplora::train {
namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

data::DataFormat guess_format(const std::string& path) {
  std::string name = std::filesystem::path(path).string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (contains(name, "llm-adapters") || contains(name, "llm_adapters"))
    return contains(name, "aqua") ? data::DataFormat::llm_adapters_choice : data::DataFormat::llm_adapters;
  if (contains(name, "gsm8k")) return data::DataFormat::gsm8k;
  if (contains(name, "mawps")) return data::DataFormat::mawps;
  if (contains(name, "svamp")) return data::DataFormat::svamp;
  if (contains(name, "aqua")) return data::DataFormat::aqua;
  throw std::invalid_argument("cannot tell the format of data file '" + path +
                              "' from its name: write FORMAT:PATH with FORMAT one of gsm8k, mawps, llm-adapters, "
                              "llm-adapters-choice, svamp, aqua");
}

}  // namespace

data::LoadResult load_data_source(const std::string& spec, data::BadRecordPolicy policy, bool report) {
  data::LoadResult result;
  bool registered = false;
  for (const auto& info : data::dataset_registry())
    if (info.name == spec) registered = true;
  if (registered) {
    result = data::load_dataset(spec, policy);
  } else {
    std::string path = spec;
    data::DataFormat format;
    const auto colon = spec.find(':');
    bool have_format = false;
    if (colon != std::string::npos && colon > 0) {
      try {
        format = data::format_from_name(spec.substr(0, colon));
        path = spec.substr(colon + 1);
        have_format = true;
      } catch (const std::invalid_argument& e) {
        // not a format prefix (e.g. a path holding ':'): fall through, unless what follows it is a file
        // ("foo:FILE" said it was neither a registered data set nor an existing file)
        if (!std::filesystem::exists(spec) && std::filesystem::exists(spec.substr(colon + 1)))
          throw std::invalid_argument("data '" + spec + "': " + e.what());
      }
    }
    if (have_format && path.empty())  // "gsm8k:" said "data file not found: " (an empty name)
      throw std::invalid_argument("data '" + spec + "' names no file after '" + spec.substr(0, colon + 1) + "'");
    if (!have_format && std::filesystem::is_directory(path))  // "cannot tell the format of data file 'DIR'"
      throw std::invalid_argument("data '" + spec + "' is a folder, not a data file (a JSON or JSON Lines file)");
    if (!have_format && !std::filesystem::exists(path)) {
      // neither a registered name nor a file: most likely a mistyped name, so list the known ones
      std::string known;
      for (const auto& info : data::dataset_registry()) known += (known.empty() ? "" : ", ") + info.name;
      throw std::invalid_argument("data '" + spec + "' is neither a registered data set (known: " + known +
                                  ") nor an existing file (a file may be written FORMAT:PATH)");
    }
    if (!have_format) format = guess_format(path);
    if (!std::filesystem::exists(path)) throw std::invalid_argument("data file not found: " + path);
    result = data::load_file(path, format, policy);
  }
  if (report) {
    for (const auto& p : result.problems) std::cerr << "hyplora: skipped bad record: " << p << "\n";
    for (const auto& n : result.notes) std::cerr << "hyplora: note: " << n << "\n";
  }
  if (result.records.empty()) throw std::invalid_argument("data '" + spec + "' holds no usable records");
  // kept as they are (a repeat is a problem the set asks twice), but never silent
  if (const auto repeats = data::count_repeats(result.records); report && repeats.total() > 0)
    std::cerr << "hyplora: " << (repeats.other_label ? "warning" : "note") << ": data '" << spec << "': "
              << repeats.total() << " of " << result.records.size() << " records ask the question of an earlier one ("
              << repeats.same_label << " with the same label, " << repeats.other_label << " with another); all are kept\n";
  return result;
}

namespace {

/// One record as training tokenizes it, before the cutoff.
TokenizedExample tokenize_one(const data::Record& r, const data::PromptTemplate& tmpl, const llm::Tokenizer& tok) {
  // The model's context is the prompt without its trailing spaces (PromptTemplate::model_prompt):
  // the full text, encoded whole, starts with exactly the tokens that evaluation feeds.
  const std::vector<int> p = tok.encode(tmpl.model_prompt(r), true, false);
  TokenizedExample ex;
  ex.tokens = tok.encode(tmpl.prompt(r) + tmpl.response(r), true, false);
  // The prompt boundary: the longest common prefix (all of p unless a merge crosses the boundary).
  std::size_t common = 0;
  while (common < p.size() && common < ex.tokens.size() && p[common] == ex.tokens[common]) ++common;
  ex.prompt_tokens = int(common);
  ex.depth = r.depth;
  return ex;
}

}  // namespace

int response_token_count(const data::Record& record, const data::PromptTemplate& tmpl, const llm::Tokenizer& tok) {
  const TokenizedExample ex = tokenize_one(record, tmpl, tok);
  return int(ex.tokens.size()) - ex.prompt_tokens;
}

int longest_response(const std::vector<TokenizedExample>& examples) {
  int longest = 0;
  for (const auto& ex : examples) longest = std::max(longest, int(ex.tokens.size()) - ex.prompt_tokens);
  return longest;
}

std::vector<TokenizedExample> tokenize_examples(const std::vector<data::Record>& records,
                                                const data::PromptTemplate& tmpl, const llm::Tokenizer& tok,
                                                int cutoff, std::size_t* dropped, std::size_t* cut) {
  std::vector<TokenizedExample> out;
  out.reserve(records.size());
  std::size_t n_dropped = 0, n_cut = 0;
  for (const auto& r : records) {
    TokenizedExample ex = tokenize_one(r, tmpl, tok);
    const bool too_long = int(ex.tokens.size()) > cutoff;
    if (too_long) ex.tokens.resize(std::size_t(cutoff));
    if (ex.prompt_tokens >= int(ex.tokens.size())) {
      ++n_dropped;
      continue;
    }
    n_cut += too_long;
    out.push_back(std::move(ex));
  }
  if (dropped) *dropped = n_dropped;
  if (cut) *cut = n_cut;
  return out;
}

Batch make_batch(const std::vector<TokenizedExample>& examples, const std::vector<std::size_t>& indices,
                 bool train_on_inputs) {
  Batch b;
  b.B = int(indices.size());
  int longest = 2;
  for (auto i : indices) longest = std::max(longest, int(examples.at(i).tokens.size()));
  b.T = longest - 1;  // inputs are tokens[0..len-2], targets tokens[1..len-1]
  b.tokens.assign(std::size_t(b.B) * std::size_t(b.T), 0);
  b.targets.assign(b.tokens.size(), 0);
  b.mask.assign(b.tokens.size(), 0.0f);
  for (int row = 0; row < b.B; ++row) {
    const auto& ex = examples[indices[std::size_t(row)]];
    const int len = int(ex.tokens.size());
    for (int t = 0; t + 1 < len; ++t) {
      const std::size_t at = std::size_t(row) * std::size_t(b.T) + std::size_t(t);
      b.tokens[at] = ex.tokens[std::size_t(t)];
      b.targets[at] = ex.tokens[std::size_t(t) + 1];
      const bool target_is_response = t + 1 >= ex.prompt_tokens;
      if (train_on_inputs || target_is_response) {
        b.mask[at] = 1.0f;
        ++b.target_tokens;
      }
    }
  }
  return b;
}

std::size_t ExampleOrder::at(std::uint64_t k) {
  if (n_ == 0) throw std::logic_error("ExampleOrder: no examples");
  const std::uint64_t epoch = k / n_;
  if (epoch != epoch_) {
    perm_.resize(n_);
    for (std::size_t i = 0; i < n_; ++i) perm_[i] = i;
    std::uint64_t s = seed_ ^ (0xA0761D6478BD642FULL * (epoch + 1));
    data::Rng rng(data::splitmix64(s));
    for (std::size_t i = n_ - 1; i > 0; --i) std::swap(perm_[i], perm_[rng.index(i + 1)]);  // Fisher-Yates
    epoch_ = epoch;
  }
  return perm_[k % n_];
}

}  // namespace hyplora::train
