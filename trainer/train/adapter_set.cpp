#include "train/adapter_set.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "formats/weight_check.hpp"
#include "hyplora/adapter/adapter.hpp"
#include "hyplora/backend/cpu.hpp"

namespace hyplora::train {

const char* kind_name(AdapterKind kind) {
  switch (kind) {
    case AdapterKind::lora: return "lora";
    case AdapterKind::lora_scaled: return "lora_scaled";
    case AdapterKind::naive: return "naive";
    case AdapterKind::hyplora_lorentz: return "hyplora_lorentz";
    case AdapterKind::hyplora_poincare: return "hyplora_poincare";
    case AdapterKind::paper: return "paper";
  }
  return "?";
}

AdapterKind kind_from_name(const std::string& name) {
  for (auto k : {AdapterKind::lora, AdapterKind::lora_scaled, AdapterKind::naive, AdapterKind::hyplora_lorentz,
                 AdapterKind::hyplora_poincare, AdapterKind::paper})
    if (name == kind_name(k)) return k;
  throw std::invalid_argument("unknown adapter kind '" + name +
                              "' (lora, lora_scaled, naive, hyplora_lorentz, hyplora_poincare, paper)");
}

AdapterKind resolve_kind(const std::string& adapter, const std::string& manifold, const std::string& variant) {
  if (variant == "scaled") return AdapterKind::lora_scaled;
  if (variant == "naive") return AdapterKind::naive;
  if (adapter == "lora") {
    if (variant == "paper") throw std::invalid_argument("--variant paper applies to --adapter hyplora only");
    if (variant != "consistent") throw std::invalid_argument("unknown --variant '" + variant + "'");
    return AdapterKind::lora;
  }
  if (adapter != "hyplora") throw std::invalid_argument("--adapter must be lora or hyplora, got '" + adapter + "'");
  if (manifold == "euclidean")
    throw std::invalid_argument("--adapter hyplora needs --manifold lorentz or poincare (Euclidean is --adapter lora)");
  if (variant == "paper") {
    if (manifold != "lorentz") throw std::invalid_argument("--variant paper exists on the Lorentz model only");
    return AdapterKind::paper;
  }
  if (variant != "consistent") throw std::invalid_argument("unknown --variant '" + variant + "'");
  if (manifold == "lorentz") return AdapterKind::hyplora_lorentz;
  if (manifold == "poincare") return AdapterKind::hyplora_poincare;
  throw std::invalid_argument("--manifold must be euclidean, lorentz or poincare, got '" + manifold + "'");
}

llm::Module module_from_name(const std::string& name) {
  static const std::pair<const char*, llm::Module> table[] = {
      {"q", llm::Module::q},       {"k", llm::Module::k},   {"v", llm::Module::v},      {"o", llm::Module::o},
      {"gate", llm::Module::gate}, {"up", llm::Module::up}, {"down", llm::Module::down}};
  for (auto& [short_name, m] : table)
    if (name == short_name || name == llm::module_name(m)) return m;
  throw std::invalid_argument("unknown target module '" + name + "' (q, k, v, o, gate, up, down)");
}

namespace {

const char* scale_name(adapter::ScaleMode m) {
  switch (m) {
    case adapter::ScaleMode::automatic: return "auto";
    case adapter::ScaleMode::none: return "none";
    case adapter::ScaleMode::fixed: return "fixed";
    case adapter::ScaleMode::learnable: return "learnable";
  }
  return "?";
}

adapter::ScaleMode scale_from_name(const std::string& s) {
  for (auto m : {adapter::ScaleMode::automatic, adapter::ScaleMode::none, adapter::ScaleMode::fixed,
                 adapter::ScaleMode::learnable})
    if (s == scale_name(m)) return m;
  throw std::invalid_argument("unknown norm-scale mode '" + s + "' (auto, none, fixed, learnable)");
}

std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// (d_out, d_in) of module m.
std::pair<long, long> module_shape(const llm::ModelConfig& c, llm::Module m) {
  switch (m) {
    case llm::Module::q: return {c.dim, c.dim};
    case llm::Module::k:
    case llm::Module::v: return {c.kv_dim(), c.dim};
    case llm::Module::o: return {c.dim, c.dim};
    case llm::Module::gate:
    case llm::Module::up: return {c.hidden_dim, c.dim};
    case llm::Module::down: return {c.dim, c.hidden_dim};
  }
  throw std::logic_error("module_shape: bad module");
}

template <class Variant>
class Unit final : public AdapterUnit {
 public:
  Unit(int layer, llm::Module module, const adapter::AdapterConfig& cfg) : AdapterUnit(layer, module), a_(cfg) {}
  void forward(const float* X, float* Y, long n, bool training) override {
    if (training) ++training_forwards_;
    a_.forward_branch(X, Y, n, training);
  }
  void backward(const float* X, const float* dY, float* dX, long n) override { a_.backward_branch(X, dY, dX, n); }
  float* params() override { return a_.params(); }
  float* grads() override { return a_.grads(); }
  long num_params() const override { return long(a_.num_params()); }
  long d_in() const override { return long(a_.d_in()); }
  long d_out() const override { return long(a_.d_out()); }
  int rank() const override { return int(a_.rank()); }
  long offset_A() const override { return long(a_.layout().A); }
  long offset_B() const override { return long(a_.layout().B); }
  long offset_curvature() const override { return long(a_.layout().curvature); }
  long offset_scale() const override { return long(a_.layout().scale); }
  double K() const override { return double(a_.K()); }
  double norm_scale() const override { return double(a_.norm_scale()); }
  void zero_grad() override { a_.zero_grad(); }
  void advance_training_forwards(std::uint64_t target) override {
    if (target < training_forwards_)
      throw std::logic_error("AdapterUnit: cannot rewind dropout draws (" + std::to_string(training_forwards_) +
                             " > " + std::to_string(target) + ")");
    // A zero-row training forward draws the next dropout stream and touches nothing else.
    if (a_.config().dropout > 0.0)
      for (std::uint64_t i = training_forwards_; i < target; ++i) a_.forward_branch(nullptr, nullptr, 0, true);
    training_forwards_ = target;
  }

 private:
  adapter::Adapter<Variant, float, backend::Cpu> a_;
};

std::unique_ptr<AdapterUnit> make_unit(AdapterKind kind, int layer, llm::Module m, const adapter::AdapterConfig& c) {
  switch (kind) {
    case AdapterKind::lora: return std::make_unique<Unit<adapter::Lora>>(layer, m, c);
    case AdapterKind::lora_scaled: return std::make_unique<Unit<adapter::LoraScaled>>(layer, m, c);
    case AdapterKind::naive: return std::make_unique<Unit<adapter::Naive>>(layer, m, c);
    case AdapterKind::hyplora_lorentz: return std::make_unique<Unit<adapter::HypLoraLorentz>>(layer, m, c);
    case AdapterKind::hyplora_poincare: return std::make_unique<Unit<adapter::HypLoraPoincare>>(layer, m, c);
    case AdapterKind::paper: return std::make_unique<Unit<adapter::PaperHypLora>>(layer, m, c);
  }
  throw std::logic_error("make_unit: bad kind");
}

}  // namespace

void to_json(nlohmann::json& j, const AdapterSpec& s) {
  std::vector<std::string> targets;
  for (auto m : s.targets) targets.push_back(llm::module_name(m));
  j = nlohmann::json{{"kind", kind_name(s.kind)}, {"rank", s.rank},       {"alpha", s.alpha},
                     {"dropout", s.dropout},       {"targets", targets},   {"K", s.K},
                     {"learn_K", s.learn_K},       {"scale", scale_name(s.scale)},
                     {"scale_init", s.scale_init}, {"seed", s.seed}};
}

void from_json(const nlohmann::json& j, AdapterSpec& s) {
  try {
    s.kind = kind_from_name(j.at("kind").get<std::string>());
    s.rank = j.at("rank").get<int>();
    s.alpha = j.at("alpha").get<double>();
    s.dropout = j.at("dropout").get<double>();
    s.targets.clear();
    for (const auto& t : j.at("targets")) s.targets.push_back(module_from_name(t.get<std::string>()));
    s.K = j.at("K").get<double>();
    s.learn_K = j.at("learn_K").get<bool>();
    s.scale = scale_from_name(j.at("scale").get<std::string>());
    s.scale_init = j.at("scale_init").get<double>();
    s.seed = j.at("seed").get<std::uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("adapter settings: ") + e.what());
  }
  if (s.rank <= 0) throw std::invalid_argument("adapter settings: rank must be positive");
  if (!(s.K > 0) || !std::isfinite(s.K)) throw std::invalid_argument("adapter settings: K must be positive and finite");
}

AdapterSet::AdapterSet(const llm::ModelConfig& cfg, const AdapterSpec& spec) : cfg_(cfg), spec_(spec) {
  if (spec.targets.empty()) throw std::invalid_argument("AdapterSet: no target modules");
  for (int layer = 0; layer < cfg.n_layers; ++layer)
    for (llm::Module m : spec.targets) {
      auto [d_out, d_in] = module_shape(cfg, m);
      adapter::AdapterConfig c;
      c.d_in = d_in;
      c.d_out = d_out;
      c.rank = spec.rank;
      c.alpha = spec.alpha;
      c.dropout = spec.dropout;
      c.seed = mix(spec.seed ^ mix(std::uint64_t(layer) * 16 + std::uint64_t(m) + 1));
      c.curvature = spec.learn_K ? adapter::CurvatureMode::learnable : adapter::CurvatureMode::fixed;
      c.K_init = spec.K;
      c.scale = spec.scale;
      c.scale_init = spec.scale_init;
      units_.push_back(make_unit(spec.kind, layer, m, c));
    }
}
AdapterSet::AdapterSet(AdapterSet&&) noexcept = default;
AdapterSet& AdapterSet::operator=(AdapterSet&&) noexcept = default;
AdapterSet::~AdapterSet() = default;

void AdapterSet::attach(llm::LlamaModel& model) {
  const auto& mc = model.config();
  if (mc.dim != cfg_.dim || mc.hidden_dim != cfg_.hidden_dim || mc.n_layers != cfg_.n_layers ||
      mc.kv_dim() != cfg_.kv_dim())
    throw std::invalid_argument("AdapterSet::attach: adapter shapes were made for another model (dim " +
                                std::to_string(cfg_.dim) + ", layers " + std::to_string(cfg_.n_layers) + ")");
  for (auto& u : units_) model.attach(u->layer(), u->module(), u.get());
}

void AdapterSet::detach(llm::LlamaModel& model) { model.detach_all(); }

long AdapterSet::num_params() const {
  long n = 0;
  for (const auto& u : units_) n += u->num_params();
  return n;
}

void AdapterSet::zero_grad() {
  for (auto& u : units_) u->zero_grad();
}

std::vector<float> AdapterSet::gather_params() const {
  std::vector<float> out;
  out.reserve(std::size_t(num_params()));
  for (const auto& u : units_) out.insert(out.end(), u->params(), u->params() + u->num_params());
  return out;
}

std::vector<float> AdapterSet::gather_grads() const {
  std::vector<float> out;
  out.reserve(std::size_t(num_params()));
  for (const auto& u : units_) out.insert(out.end(), u->grads(), u->grads() + u->num_params());
  return out;
}

void AdapterSet::scatter_params(const std::vector<float>& flat) {
  if (long(flat.size()) != num_params())
    throw std::invalid_argument("AdapterSet::scatter_params: " + std::to_string(flat.size()) + " values for " +
                                std::to_string(num_params()) + " parameters");
  for (float x : flat)
    if (!std::isfinite(x)) throw std::invalid_argument("AdapterSet::scatter_params: non-finite parameter");
  std::size_t off = 0;
  for (auto& u : units_) {
    std::copy(flat.begin() + long(off), flat.begin() + long(off) + u->num_params(), u->params());
    off += std::size_t(u->num_params());
  }
}

bool AdapterSet::grads_finite() const {
  for (const auto& u : units_)
    for (long i = 0; i < u->num_params(); ++i)
      if (!std::isfinite(u->grads()[i])) return false;
  return true;
}

bool AdapterSet::params_plausible(double* largest) const {
  double big = 0;
  for (const auto& u : units_)
    for (long i = 0; i < u->num_params(); ++i) {
      const double a = std::fabs(double(u->params()[i]));
      if (std::isnan(a)) {
        if (largest) *largest = a;
        return false;
      }
      big = std::max(big, a);
    }
  if (largest) *largest = big;
  return big <= double(formats::max_weight_magnitude());
}

double AdapterSet::grad_norm() const {
  double s = 0;
  for (const auto& u : units_)
    for (long i = 0; i < u->num_params(); ++i) s += double(u->grads()[i]) * double(u->grads()[i]);
  return std::sqrt(s);
}

void AdapterSet::scale_grads(float factor) {
  for (auto& u : units_)
    for (long i = 0; i < u->num_params(); ++i) u->grads()[i] *= factor;
}

double AdapterSet::mean_K() const {
  if (units_.empty()) return 1.0;
  double s = 0;
  for (const auto& u : units_) s += u->K();
  return s / double(units_.size());
}

void AdapterSet::advance_training_forwards(std::uint64_t target) {
  for (auto& u : units_) u->advance_training_forwards(target);
}

std::uint64_t AdapterSet::training_forwards() const { return units_.empty() ? 0 : units_.front()->training_forwards(); }

}  // namespace hyplora::train
