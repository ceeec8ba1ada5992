// libFuzzer target: llama2.c checkpoints (read_llama2c). Any input must either load a model whose
// shapes are consistent or throw a std::exception; crashes, leaks, UB and OOM are findings.
#include <cstdint>
#include <exception>

#include "formats/llama2c.hpp"
#include "fuzz_support.hpp"
#include "model/llama.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static hyplora::fuzz::ScratchFile file("llama2c", ".bin");
  const auto& path = file.write(data, size);
  try {
    const auto w = hyplora::llm::read_llama2c(path);
    hyplora::llm::validate_weight_shapes(w, "fuzz: loaded checkpoint");  // what the model constructor checks
  } catch (const std::exception&) {
  }
  return 0;
}
