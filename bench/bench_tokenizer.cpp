// Encode throughput of hyplora::llm::Tokenizer (hash-map lookup) beside a verbatim port of
// llama2.c run.c's encode (qsort'ed vocabulary, bsearch, sprintf), on the GSM8K training questions
// with the Llama 2 32K tokenizer, single thread. Both are timed alternately (warm-up, then the
// median, min and max of --reps runs). The run also counts texts where the two disagree (must be 0).
//
// usage: bench_tokenizer [--reps R] [--texts N] [--tokenizer PATH] [--data PATH]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "bench_stats.hpp"
#include "tokenizer/tokenizer.hpp"

namespace {

// ---- run.c's encode, kept as close to the C original as C++ allows --------------------------
struct TokenIndex {
  const char* str;
  int id;
};
int compare_tokens(const void* a, const void* b) {
  return std::strcmp(static_cast<const TokenIndex*>(a)->str, static_cast<const TokenIndex*>(b)->str);
}
struct RunC {
  std::vector<std::string> vocab;
  std::vector<float> scores;
  std::vector<TokenIndex> sorted;
  int max_token_length = 0;
  explicit RunC(const hyplora::llm::Tokenizer& t) : vocab(t.pieces()), scores(t.scores()), max_token_length(t.max_token_length()) {
    for (int i = 0; i < int(vocab.size()); ++i) sorted.push_back({vocab[std::size_t(i)].c_str(), i});
    std::qsort(sorted.data(), sorted.size(), sizeof(TokenIndex), compare_tokens);
  }
  int str_lookup(const char* str) const {
    TokenIndex tok{str, 0};
    auto* res = static_cast<const TokenIndex*>(
        std::bsearch(&tok, sorted.data(), sorted.size(), sizeof(TokenIndex), compare_tokens));
    return res ? res->id : -1;
  }
  void encode(const char* text, std::vector<int>& tokens) const {
    std::vector<char> buf(std::size_t(max_token_length) * 2 + 3);
    char* str_buffer = buf.data();
    std::size_t str_len = 0;
    tokens.clear();
    tokens.push_back(1);
    if (text[0] != '\0') tokens.push_back(str_lookup(" "));
    for (const char* c = text; *c != '\0'; c++) {
      if ((*c & 0xC0) != 0x80) str_len = 0;
      str_buffer[str_len++] = *c;
      str_buffer[str_len] = '\0';
      if ((*(c + 1) & 0xC0) == 0x80 && str_len < 4) continue;
      int id = str_lookup(str_buffer);
      if (id != -1) {
        tokens.push_back(id);
      } else {
        for (std::size_t i = 0; i < str_len; i++) tokens.push_back((unsigned char)str_buffer[i] + 3);
      }
      str_len = 0;
    }
    while (true) {
      float best_score = -1e10f;
      int best_id = -1, best_idx = -1;
      for (int i = 0; i < int(tokens.size()) - 1; i++) {
        std::snprintf(str_buffer, buf.size(), "%s%s", vocab[std::size_t(tokens[std::size_t(i)])].c_str(),
                      vocab[std::size_t(tokens[std::size_t(i) + 1])].c_str());
        int id = str_lookup(str_buffer);
        if (id != -1 && scores[std::size_t(id)] > best_score) {
          best_score = scores[std::size_t(id)];
          best_id = id;
          best_idx = i;
        }
      }
      if (best_idx == -1) break;
      tokens[std::size_t(best_idx)] = best_id;
      tokens.erase(tokens.begin() + best_idx + 1);
    }
  }
};

using hyplora::bench::Stats;
using hyplora::bench::stats;

}  // namespace

int run(int argc, char** argv);

int main(int argc, char** argv) {
  return hyplora::bench::guarded_main("bench_tokenizer", "[--reps R>=3] [--texts N] [--tokenizer PATH] [--data PATH]",
                                      [&] { return run(argc, argv); });
}

int run(int argc, char** argv) {
  std::string shared = HYPLORA_SHARED_DIR_DEFAULT;
  if (const char* e = std::getenv("HYPLORA_SHARED_DIR"); e && *e) shared = e;
  std::string tok_path = shared + "/models/llama2-tokenizer/tokenizer.bin";
  std::string data_path = shared + "/data/gsm8k/train.jsonl";
  int reps = 5;
  std::size_t max_texts = 500;
  hyplora::bench::ArgReader args(argc, argv);
  while (args.more()) {
    if (args.integer("--reps", reps, 3, 10000)) {}
    else if (args.integer("--texts", max_texts, 1, 100000000)) {}
    else if (args.value("--tokenizer", tok_path)) {}
    else if (args.value("--data", data_path)) {}
    else args.unknown();
  }
  const auto tok = hyplora::llm::Tokenizer::load_llama2c(tok_path);
  std::vector<std::string> texts;
  std::ifstream in(data_path);
  std::size_t bytes = 0;
  for (std::string line; texts.size() < max_texts && std::getline(in, line);) {
    if (line.empty()) continue;
    texts.push_back(nlohmann::json::parse(line).at("question").get<std::string>());
    bytes += texts.back().size();
  }
  if (texts.empty()) {
    std::fprintf(stderr, "no texts in %s\n", data_path.c_str());
    return 1;
  }
  const RunC runc(tok);

  std::size_t n_tokens = 0, mismatches = 0;
  std::vector<int> ref;
  for (const auto& t : texts) {
    const auto ids = tok.encode(t, true, false);
    runc.encode(t.c_str(), ref);
    mismatches += ids != ref;
    n_tokens += ids.size();
  }
  auto time = [](auto&& f) {
    const auto a = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
  };
  auto ours = [&] {
    for (const auto& t : texts) (void)tok.encode(t, true, false);
  };
  auto theirs = [&] {
    for (const auto& t : texts) runc.encode(t.c_str(), ref);
  };
  ours(), theirs();
  std::vector<double> to, tr;
  for (int r = 0; r < reps; ++r) {
    to.push_back(time(ours));
    tr.push_back(time(theirs));
  }
  const Stats so = stats(to), sr = stats(tr);
  std::printf("bench_tokenizer: first %zu GSM8K train questions, %zu bytes, %zu tokens (with BOS), vocab %d, %d reps, 1 thread\n",
              texts.size(), bytes, n_tokens, tok.vocab_size(), reps);
  std::printf("  hyplora Tokenizer::encode : %8.1f ms median (min %.1f, max %.1f)  %10.0f tokens/s\n", so.median * 1e3,
              so.min * 1e3, so.max * 1e3, double(n_tokens) / so.median);
  std::printf("  run.c encode (bsearch)    : %8.1f ms median (min %.1f, max %.1f)  %10.0f tokens/s\n", sr.median * 1e3,
              sr.min * 1e3, sr.max * 1e3, double(n_tokens) / sr.median);
  std::printf("  speed-up vs run.c: %.2fx; texts where the ids differ: %zu\n", sr.median / so.median, mismatches);
  return mismatches == 0 ? 0 : 1;
}
