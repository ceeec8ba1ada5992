#pragma once
// The bridge between the library's adapter template (include/hyplora/adapter/adapter.hpp) and the
// model: one adapter per (layer, target module), each wrapped as a LinearAdapterHook, plus the
// flat views the optimiser and the checkpoint need.
//
//   kind              --adapter / --manifold / --variant     Delta(x)
//   lora              lora  (any) consistent                  B A x
//   lora_scaled       lora or hyplora, variant scaled         B A (x/s)              (control, SPEC 5)
//   naive             variant naive                           log0(exp0(B A log0(exp0 x)))  (= lora)
//   hyplora_lorentz   hyplora lorentz consistent              SPEC 3, the method
//   hyplora_poincare  hyplora poincare consistent
//   paper             hyplora lorentz paper                   marlin-codes/HypLoRA behaviour
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyplora/adapter/config.hpp"
#include "model/adapter_hook.hpp"
#include "model/llama.hpp"

namespace hyplora::train {

enum class AdapterKind { lora, lora_scaled, naive, hyplora_lorentz, hyplora_poincare, paper };

const char* kind_name(AdapterKind kind);
AdapterKind kind_from_name(const std::string& name);  ///< inverse of kind_name; throws std::invalid_argument
/// --adapter, --manifold, --variant to a kind; throws std::invalid_argument for impossible combinations.
AdapterKind resolve_kind(const std::string& adapter, const std::string& manifold, const std::string& variant);
/// "q" -> Module::q ... ("q_proj" accepted too); throws std::invalid_argument.
llm::Module module_from_name(const std::string& name);

/// What every adapter of a set shares.
struct AdapterSpec {
  AdapterKind kind = AdapterKind::hyplora_lorentz;
  int rank = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  std::vector<llm::Module> targets{llm::Module::q, llm::Module::k, llm::Module::v, llm::Module::up, llm::Module::down};
  double K = 1.0;
  bool learn_K = false;
  adapter::ScaleMode scale = adapter::ScaleMode::automatic;
  double scale_init = 0.0;
  std::uint64_t seed = 0;
};
void to_json(nlohmann::json& j, const AdapterSpec& s);
void from_json(const nlohmann::json& j, AdapterSpec& s);  ///< throws std::invalid_argument on bad values

/// One adapter on one linear layer.
class AdapterUnit : public llm::LinearAdapterHook {
 public:
  AdapterUnit(int layer, llm::Module module) : layer_(layer), module_(module) {}
  int layer() const { return layer_; }
  llm::Module module() const { return module_; }
  virtual float* params() = 0;
  virtual float* grads() = 0;
  virtual long num_params() const = 0;
  virtual long d_in() const = 0;
  virtual long d_out() const = 0;
  virtual int rank() const = 0;
  /// Offsets of lora_A, lora_B, curvature_raw, norm_scale in params() (-1 when absent).
  virtual long offset_A() const = 0;
  virtual long offset_B() const = 0;
  virtual long offset_curvature() const = 0;
  virtual long offset_scale() const = 0;
  virtual double K() const = 0;
  virtual double norm_scale() const = 0;
  virtual void zero_grad() = 0;
  /// Training forwards so far (each draws a fresh dropout mask); restored on resume.
  std::uint64_t training_forwards() const { return training_forwards_; }
  /// Replays dropout-mask draws so a resumed run draws the same masks as an uninterrupted one.
  virtual void advance_training_forwards(std::uint64_t target) = 0;

 protected:
  int layer_;
  llm::Module module_;
  std::uint64_t training_forwards_ = 0;
};

class AdapterSet {
 public:
  /// One adapter per layer and target module of a model with config `cfg`.
  AdapterSet(const llm::ModelConfig& cfg, const AdapterSpec& spec);
  AdapterSet(AdapterSet&&) noexcept;
  AdapterSet& operator=(AdapterSet&&) noexcept;
  ~AdapterSet();

  const AdapterSpec& spec() const { return spec_; }
  const llm::ModelConfig& model_config() const { return cfg_; }
  std::vector<std::unique_ptr<AdapterUnit>>& units() { return units_; }
  const std::vector<std::unique_ptr<AdapterUnit>>& units() const { return units_; }

  void attach(llm::LlamaModel& model);
  static void detach(llm::LlamaModel& model);

  long num_params() const;
  void zero_grad();
  /// All parameters / gradients concatenated in unit order (copy).
  std::vector<float> gather_params() const;
  std::vector<float> gather_grads() const;
  /// Sets all parameters from the concatenation (size must be num_params(), values finite).
  void scatter_params(const std::vector<float>& flat);
  /// True when every gradient (resp. parameter) is finite.
  bool grads_finite() const;
  /// Finite and of a weight's magnitude (|p| <= formats::max_weight_magnitude()): what save_adapter
  /// writes and the readers accept. Largest |p| in *largest (NaN when a value is NaN).
  bool params_plausible(double* largest = nullptr) const;
  /// sqrt(sum g^2) over all gradients (double accumulation, fixed order).
  double grad_norm() const;
  void scale_grads(float factor);
  /// Mean K over units (1 for kinds without curvature).
  double mean_K() const;
  void advance_training_forwards(std::uint64_t target);
  std::uint64_t training_forwards() const;

 private:
  llm::ModelConfig cfg_;
  AdapterSpec spec_;
  std::vector<std::unique_ptr<AdapterUnit>> units_;
};

}  // namespace hyplora::train
