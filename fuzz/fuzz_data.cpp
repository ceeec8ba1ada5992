// libFuzzer target: JSON / JSON Lines data sets, through every loader format (GSM8K, MAWPS,
// LLM-Adapters numeric and choice, SVAMP, AQuA), with both bad-record policies.
#include <cstdint>
#include <exception>

#include "data/loaders.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hyplora::data;
  static hyplora::fuzz::ScratchFile file("data", ".json");
  const auto& path = file.write(data, size);
  for (auto format : {DataFormat::gsm8k, DataFormat::mawps, DataFormat::llm_adapters, DataFormat::llm_adapters_choice,
                      DataFormat::svamp, DataFormat::aqua})
    for (auto policy : {BadRecordPolicy::skip, BadRecordPolicy::reject}) {
      try {
        const auto r = load_file(path.string(), format, policy);
        for (const auto& rec : r.records) (void)answer_sentence(rec);
      } catch (const std::exception&) {
      }
    }
  return 0;
}
