#pragma once
// Named model shapes of the llama2.c TinyStories family and seeded random initialisation
// (for benchmarks and tests): linear weights and embedding ~ N(0, 0.02^2), wo and w3 (the
// residual projections) ~ N(0, (0.02/sqrt(2 n_layers))^2) as llama2.c's model.py, norms = 1.
#include <cstdint>
#include <string>
#include <vector>

#include "model/weights.hpp"

namespace hyplora::llm {

/// "stories260K", "stories15M", "stories42M", "stories110M"; throws std::invalid_argument otherwise.
ModelConfig named_shape(const std::string& name);
/// Names accepted by named_shape.
std::vector<std::string> named_shapes();
/// Deterministic for a given (config, seed) on every platform (own generator and Box-Muller).
ModelWeights random_weights(const ModelConfig& config, std::uint64_t seed, float stddev = 0.02f);

}  // namespace hyplora::llm
