// libFuzzer target: llama2.c tokenizer.bin (Tokenizer::load_llama2c), then encode / decode with
// whatever vocabulary loaded, so a loaded-but-inconsistent vocabulary cannot hide.
#include <cstdint>
#include <exception>
#include <string>

#include "fuzz_support.hpp"
#include "tokenizer/tokenizer.hpp"

namespace {
void exercise(const hyplora::llm::Tokenizer& t) {
  // ASCII, digits, multi-byte UTF-8, a byte that is not UTF-8 and a NUL (run.c stops there).
  static const std::string text = std::string("Once upon a time, 12+30=42. caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82 \xff end") +
                                  std::string(1, '\0') + "after NUL";
  const auto ids = t.encode(text, true, true);
  (void)t.decode_all(ids);
  const int n = t.vocab_size();
  for (int id = 0; id < n && id < 4096; ++id) (void)t.decode(id == 0 ? -1 : id - 1, id);
  (void)t.lookup("hello");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static hyplora::fuzz::ScratchFile file("tokenizer", ".bin");
  const auto& path = file.write(data, size);
  try {
    exercise(hyplora::llm::Tokenizer::load_llama2c(path));
  } catch (const std::exception&) {
  }
  try {  // the count taken from a model header (run.c's way), including a mismatch
    exercise(hyplora::llm::Tokenizer::load_llama2c(path, 512));
  } catch (const std::exception&) {
  }
  return 0;
}
