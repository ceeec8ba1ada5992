// libFuzzer target: safetensors (parse_safetensors), the adapter file container.
#include <cstdint>
#include <exception>
#include <string_view>

#include "formats/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const auto st = hyplora::formats::parse_safetensors(bytes, "fuzz.safetensors");
    for (const auto& t : st.tensors)
      if (t.element_count() != t.data.size()) __builtin_trap();  // a loaded tensor must match its shape
    (void)st.require("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", {8, 64}, "fuzz.safetensors");
  } catch (const std::exception&) {
  }
  return 0;
}
