// libFuzzer target: JSON / JSON Lines data sets, through every loader format (GSM8K, MAWPS,
// LLM-Adapters numeric and choice, SVAMP, AQuA), with both bad-record policies; then what training
// does with the records it loads: both prompt templates, tokenize_examples (with a cutoff) and
// make_batch, whose shapes and loss mask are checked (a violation traps, as a crash would).
#include <cstdint>
#include <cstdio>
#include <exception>
#include <numeric>
#include <string>
#include <vector>

#include "data/loaders.hpp"
#include "data/prompt_template.hpp"
#include "data/repeats.hpp"
#include "fuzz_support.hpp"
#include "tokenizer/tokenizer.hpp"
#include "train/dataset.hpp"

namespace {

// A llama2.c-style vocabulary without a file: <unk> <s> </s>, the 256 byte tokens, the printable
// ASCII characters and a few merges of the templates' words (scored so that longer merges win).
const hyplora::llm::Tokenizer& tokenizer() {
  static const hyplora::llm::Tokenizer tok = [] {
    std::vector<std::string> pieces{"<unk>", "<s>", "</s>"};
    std::vector<float> scores{0, 0, 0};
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      pieces.push_back(name);
      scores.push_back(0);
    }
    for (char c = ' '; c <= '~'; ++c) {
      pieces.emplace_back(1, c);
      scores.push_back(-1000);
    }
    for (const char* merge : {"Q:", "A:", " T", "Th", "The", " a", " an", " answer", " is", "##", "###", "\n\n"}) {
      pieces.emplace_back(merge);
      scores.push_back(float(pieces.back().size()));
    }
    return hyplora::llm::Tokenizer::from_pieces(std::move(pieces), std::move(scores), {}, "fuzz vocabulary");
  }();
  return tok;
}

// What training builds from the records; every invariant of the examples and the batch is checked.
void check_training_view(const std::vector<hyplora::data::Record>& records) {
  using namespace hyplora;
  constexpr int kCutoff = 48;
  (void)data::count_repeats(records);
  for (const auto& name : data::prompt_template_names()) {
    const auto& tmpl = data::prompt_template(name);
    std::size_t dropped = 0, cut = 0;
    const auto examples = train::tokenize_examples(records, tmpl, tokenizer(), kCutoff, &dropped, &cut);
    if (examples.size() + dropped != records.size() || cut > examples.size()) __builtin_trap();
    long response_tokens = 0, all_targets = 0;
    for (const auto& ex : examples) {
      const long len = long(ex.tokens.size());
      if (len > kCutoff || ex.prompt_tokens < 1 || ex.prompt_tokens >= len) __builtin_trap();
      for (int id : ex.tokens)
        if (id < 0 || id >= tokenizer().vocab_size()) __builtin_trap();
      response_tokens += len - ex.prompt_tokens;
      all_targets += len - 1;
    }
    if (examples.empty()) continue;
    std::vector<std::size_t> indices(examples.size());
    std::iota(indices.begin(), indices.end(), std::size_t(0));
    for (bool on_inputs : {false, true}) {
      const auto b = train::make_batch(examples, indices, on_inputs);
      const std::size_t cells = std::size_t(b.B) * std::size_t(b.T);
      if (b.B != int(examples.size()) || b.tokens.size() != cells || b.targets.size() != cells || b.mask.size() != cells)
        __builtin_trap();
      if (b.target_tokens != (on_inputs ? all_targets : response_tokens)) __builtin_trap();
      if (std::accumulate(b.mask.begin(), b.mask.end(), 0.0) != double(b.target_tokens)) __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hyplora::data;
  static hyplora::fuzz::ScratchFile file("data", ".json");
  const auto& path = file.write(data, size);
  for (auto format : {DataFormat::gsm8k, DataFormat::mawps, DataFormat::llm_adapters, DataFormat::llm_adapters_choice,
                      DataFormat::svamp, DataFormat::aqua})
    for (auto policy : {BadRecordPolicy::skip, BadRecordPolicy::reject}) {
      LoadResult r;
      try {
        r = load_file(path.string(), format, policy);
      } catch (const std::exception&) {
        continue;
      }
      for (const auto& rec : r.records) (void)answer_sentence(rec);
      if (policy == BadRecordPolicy::skip) check_training_view(r.records);
    }
  return 0;
}
