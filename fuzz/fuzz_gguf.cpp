// libFuzzer target: GGUF (parse_gguf) and the Llama mapping (weights and tokenizer) behind
// load_gguf_model / load_gguf_tokenizer.
#include <cstdint>
#include <exception>
#include <string_view>

#include "formats/gguf.hpp"
#include "model/llama.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  hyplora::formats::GgufFile g;
  try {
    g = hyplora::formats::parse_gguf(bytes, "fuzz.gguf");
  } catch (const std::exception&) {
    return 0;
  }
  try {
    const auto w = hyplora::formats::llama_weights_from_gguf(g, "fuzz.gguf");
    hyplora::llm::validate_weight_shapes(w, "fuzz: GGUF model");
  } catch (const std::exception&) {
  }
  try {
    const auto t = hyplora::formats::tokenizer_from_gguf(g, "fuzz.gguf");
    (void)t.decode_all(t.encode("Once upon a time, 12+30=42. caf\xc3\xa9", true, false));
  } catch (const std::exception&) {
  }
  try {  // what `hyplora convert` writes back must parse again
    (void)hyplora::formats::parse_gguf(hyplora::formats::serialize_gguf(g), "fuzz-roundtrip.gguf");
  } catch (const std::exception&) {
  }
  return 0;
}
