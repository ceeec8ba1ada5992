#pragma once
// Run-time choice of a variant (for CLIs and config files): names <-> tag types.
//   auto kind = variant_from_name("hyplora_lorentz");
//   dispatch_variant(kind, [&](auto tag) { using V = decltype(tag); Adapter<V, float, backend::Cpu> a(cfg); ... });
#include <stdexcept>
#include <string>

#include "hyplora/adapter/variants.hpp"

namespace hyplora::adapter {

enum class VariantKind { lora, lora_scaled, naive, hyplora_lorentz, hyplora_poincare, paper };

inline const char* variant_names() { return "lora, lora_scaled, naive, hyplora_lorentz, hyplora_poincare, paper"; }

inline VariantKind variant_from_name(const std::string& s) {
  if (s == "lora") return VariantKind::lora;
  if (s == "lora_scaled") return VariantKind::lora_scaled;
  if (s == "naive") return VariantKind::naive;
  if (s == "hyplora_lorentz" || s == "hyplora") return VariantKind::hyplora_lorentz;
  if (s == "hyplora_poincare") return VariantKind::hyplora_poincare;
  if (s == "paper") return VariantKind::paper;
  throw std::invalid_argument("unknown adapter variant '" + s + "' (expected one of: " + variant_names() + ")");
}

inline const char* variant_name(VariantKind k) {
  switch (k) {
    case VariantKind::lora: return Lora::name;
    case VariantKind::lora_scaled: return LoraScaled::name;
    case VariantKind::naive: return Naive::name;
    case VariantKind::hyplora_lorentz: return HypLoraLorentz::name;
    case VariantKind::hyplora_poincare: return HypLoraPoincare::name;
    case VariantKind::paper: return PaperHypLora::name;
  }
  return "?";
}

/// Calls f(Tag{}) with the tag type of k; all branches must return the same type.
template <class F>
decltype(auto) dispatch_variant(VariantKind k, F&& f) {
  switch (k) {
    case VariantKind::lora: return f(Lora{});
    case VariantKind::lora_scaled: return f(LoraScaled{});
    case VariantKind::naive: return f(Naive{});
    case VariantKind::hyplora_lorentz: return f(HypLoraLorentz{});
    case VariantKind::hyplora_poincare: return f(HypLoraPoincare{});
    case VariantKind::paper: return f(PaperHypLora{});
  }
  throw std::invalid_argument("dispatch_variant: invalid VariantKind");
}

}  // namespace hyplora::adapter
