#include "train/adapter_file.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <stdexcept>

#include "data/prompt_template.hpp"
#include "formats/format_error.hpp"
#include "formats/safetensors.hpp"
#include "formats/weight_check.hpp"
#include "train/settings.hpp"

namespace hyplora::train {
namespace {

constexpr const char* kFormat = "hyplora-adapter/1";

bool is_attention(llm::Module m) {
  return m == llm::Module::q || m == llm::Module::k || m == llm::Module::v || m == llm::Module::o;
}

nlohmann::json model_json(const llm::ModelConfig& c) {
  return {{"dim", c.dim},           {"hidden_dim", c.hidden_dim}, {"n_layers", c.n_layers},
          {"n_heads", c.n_heads},   {"n_kv_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size}};
}

void check_model(const nlohmann::json& stored, const llm::ModelConfig& c, const std::string& file) {
  if (!stored.is_object())
    throw formats::FormatError(file, std::string("metadata \"model\" is a JSON ") + stored.type_name() +
                                         ", expected an object (dim, hidden_dim, n_layers, ...)");
  const nlohmann::json want = model_json(c);
  for (auto it = want.begin(); it != want.end(); ++it) {
    // a value of the wrong type read "dim = \"64\", this model has 64"
    if (stored.contains(it.key()) && !stored.at(it.key()).is_number())
      throw formats::FormatError(file, "metadata \"model\": " + it.key() + " is a " + stored.at(it.key()).type_name() +
                                           " (" + stored.at(it.key()).dump() + "), expected an integer");
    if (!stored.contains(it.key()) || stored.at(it.key()) != it.value())
      throw formats::FormatError(file, "adapter was trained for another model: " + it.key() + " = " +
                                           (stored.contains(it.key()) ? stored.at(it.key()).dump() : "missing") +
                                           ", this model has " + it.value().dump());
  }
}

std::map<std::string, std::string> read_metadata(const formats::SafetensorsFile& st, const std::string& file) {
  auto it = st.metadata.find("format");
  if (it == st.metadata.end() || it->second != kFormat)
    throw formats::FormatError(file, std::string("not a hyplora adapter file (metadata \"format\" is ") +
                                         (it == st.metadata.end() ? "missing" : "'" + it->second + "'") +
                                         ", expected '" + kFormat + "')");
  for (const char* key : {"adapter", "model"})
    if (!st.metadata.count(key)) throw formats::FormatError(file, std::string("metadata \"") + key + "\" is missing");
  return st.metadata;
}

AdapterSpec spec_from(const std::map<std::string, std::string>& meta, const std::string& file) {
  AdapterSpec spec;
  try {
    spec = nlohmann::json::parse(meta.at("adapter")).get<AdapterSpec>();
  } catch (const std::exception& e) {
    throw formats::FormatError(file, std::string("metadata \"adapter\" is not a valid adapter description: ") + e.what());
  }
  const auto bad = [&](const std::string& problem) { throw formats::FormatError(file, "metadata \"adapter\": " + problem); };
  // as train checks --alpha: the scale alpha/rank multiplies every output (1e30, -16 gave garbage)
  if (!(std::isfinite(spec.alpha) && spec.alpha > 0 && spec.alpha <= kMaxAlpha))
    bad("alpha " + nlohmann::json(spec.alpha).dump() + " is not positive and finite (at most " + nlohmann::json(kMaxAlpha).dump() + ")");
  // what AdapterConfig / AdapterSet would refuse later, there without the file or the field
  // ("AdapterConfig: dropout must be in [0, 1), got 2", "AdapterSet: no target modules")
  if (!(spec.dropout >= 0 && spec.dropout < 1)) bad("dropout " + nlohmann::json(spec.dropout).dump() + " is not in [0, 1)");
  if (!(spec.scale_init == 0 || (spec.scale_init >= 1e-30 && spec.scale_init <= 1e30)))
    bad("scale_init " + nlohmann::json(spec.scale_init).dump() + " is not 0 (= sqrt(d_in)) or in [1e-30, 1e30]");
  if (spec.targets.empty()) bad("targets is empty (no module to adapt)");
  for (std::size_t i = 0; i < spec.targets.size(); ++i)
    if (std::count(spec.targets.begin(), spec.targets.begin() + long(i), spec.targets[i]))
      bad(std::string("targets names module '") + llm::module_name(spec.targets[i]) + "' twice");
  return spec;
}

/// The adapters `spec` describes for `model`; anything else AdapterSet refuses names the file.
AdapterSet make_set(const llm::ModelConfig& model, const AdapterSpec& spec, const std::string& file) {
  try {
    return AdapterSet(model, spec);
  } catch (const std::invalid_argument& e) {
    throw formats::FormatError(file, std::string("metadata \"adapter\": ") + e.what());
  }
}

bool is_hyperbolic(AdapterKind kind) {
  return kind == AdapterKind::hyplora_lorentz || kind == AdapterKind::hyplora_poincare || kind == AdapterKind::paper;
}

/// Reads every unit's values from `st` into `set`. The file must hold exactly the tensors of the
/// set's kind, rank and targets (an extra tensor, e.g. the hyplora_K of a hyperbolic file under kind
/// "lora", is an error), every value must be a plausible weight (formats::weight_value_problem), and
/// a hyperbolic file's hyplora_K must be the curvature its settings and parameters give. Nothing in
/// `set` changes unless all of that holds.
void fill_values(const formats::SafetensorsFile& st, const std::string& file, AdapterSet& set) {
  std::set<std::string> expected;
  auto take = [&](const std::string& name, const std::vector<std::int64_t>& shape) -> const formats::SafeTensor& {
    expected.insert(name);
    const auto& t = st.require(name, shape, file);
    for (std::size_t i = 0; i < t.data.size(); ++i)
      if (const auto problem = formats::weight_value_problem(t.data[i]); !problem.empty())
        throw formats::FormatError(file, "tensor \"" + name + "\": element " + std::to_string(i) + " is " + problem);
    return t;
  };
  const bool hyperbolic = is_hyperbolic(set.spec().kind);
  std::vector<std::vector<float>> values;
  std::vector<float> stored_K;
  for (auto& u : set.units()) {
    const std::string prefix = peft_module_prefix(u->layer(), u->module());
    const auto& A = take(prefix + ".lora_A.weight", {u->rank(), u->d_in()});
    const auto& B = take(prefix + ".lora_B.weight", {u->d_out(), u->rank()});
    std::vector<float> p(std::size_t(u->num_params()));
    std::copy(A.data.begin(), A.data.end(), p.begin() + u->offset_A());
    std::copy(B.data.begin(), B.data.end(), p.begin() + u->offset_B());
    if (u->offset_curvature() >= 0) p[std::size_t(u->offset_curvature())] = take(prefix + ".hyplora_curvature_raw", {1}).data[0];
    if (u->offset_scale() >= 0) {
      const float s = take(prefix + ".hyplora_norm_scale", {1}).data[0];
      if (!(s > 0)) throw formats::FormatError(file, prefix + ".hyplora_norm_scale must be positive");
      p[std::size_t(u->offset_scale())] = s;
    }
    if (hyperbolic) stored_K.push_back(take(prefix + ".hyplora_K", {1}).data[0]);
    values.push_back(std::move(p));
  }
  for (const auto& t : st.tensors)
    if (!expected.count(t.name))
      throw formats::FormatError(file, "tensor \"" + t.name + "\" is not part of a " + kind_name(set.spec().kind) +
                                           " adapter of rank " + std::to_string(set.spec().rank) +
                                           " on these targets (a file of another adapter kind, or an edited one)");
  const std::vector<float> before = set.gather_params();
  for (std::size_t i = 0; i < values.size(); ++i) std::copy(values[i].begin(), values[i].end(), set.units()[i]->params());
  for (std::size_t i = 0; i < stored_K.size(); ++i) {
    const auto& u = set.units()[i];
    const double K = u->K();  // from the spec (fixed) or the curvature parameter just read
    // the file stores float(K) of the same computation: equal up to float rounding of K
    if (!(std::fabs(double(stored_K[i]) - K) <= 1e-5 * std::max(1.0, std::fabs(K)))) {
      set.scatter_params(before);
      throw formats::FormatError(file, peft_module_prefix(u->layer(), u->module()) + ".hyplora_K = " +
                                           std::to_string(stored_K[i]) + " disagrees with the curvature " +
                                           std::to_string(K) + " that the adapter's settings and parameters give");
    }
  }
}

}  // namespace

std::string peft_module_prefix(int layer, llm::Module module) {
  return "base_model.model.model.layers." + std::to_string(layer) + (is_attention(module) ? ".self_attn." : ".mlp.") +
         llm::module_name(module);
}

void save_adapter(const std::filesystem::path& path, const AdapterSet& set,
                  const std::map<std::string, std::string>& extra_metadata) {
  if (double largest = 0; !set.params_plausible(&largest))
    throw std::runtime_error("refusing to save adapter " + path.string() + ": it holds " +
                             (std::isfinite(largest) ? "a parameter of " + formats::weight_value_problem(float(largest))
                                                     : std::string("NaN or infinite parameters")) +
                             " (the previous file is kept)");
  formats::SafetensorsFile st;
  st.metadata = extra_metadata;
  st.metadata["format"] = kFormat;
  st.metadata["adapter"] = nlohmann::json(set.spec()).dump();
  st.metadata["model"] = model_json(set.model_config()).dump();
  {
    std::vector<std::string> targets;
    for (auto m : set.spec().targets) targets.push_back(llm::module_name(m));
    st.metadata["peft_config"] = nlohmann::json{{"peft_type", "LORA"},
                                                {"r", set.spec().rank},
                                                {"lora_alpha", set.spec().alpha},
                                                {"lora_dropout", set.spec().dropout},
                                                {"target_modules", targets},
                                                {"hyplora_kind", kind_name(set.spec().kind)}}
                                     .dump();
  }
  const bool hyperbolic = is_hyperbolic(set.spec().kind);
  for (const auto& u : set.units()) {
    const std::string prefix = peft_module_prefix(u->layer(), u->module());
    const float* p = u->params();
    formats::SafeTensor A{prefix + ".lora_A.weight", "F32", {u->rank(), u->d_in()},
                          std::vector<float>(p + u->offset_A(), p + u->offset_A() + long(u->rank()) * u->d_in())};
    formats::SafeTensor B{prefix + ".lora_B.weight", "F32", {u->d_out(), u->rank()},
                          std::vector<float>(p + u->offset_B(), p + u->offset_B() + u->d_out() * long(u->rank()))};
    st.tensors.push_back(std::move(A));
    st.tensors.push_back(std::move(B));
    if (hyperbolic) st.tensors.push_back({prefix + ".hyplora_K", "F32", {1}, {float(u->K())}});
    if (u->offset_curvature() >= 0)
      st.tensors.push_back({prefix + ".hyplora_curvature_raw", "F32", {1}, {p[u->offset_curvature()]}});
    if (u->offset_scale() >= 0) st.tensors.push_back({prefix + ".hyplora_norm_scale", "F32", {1}, {p[u->offset_scale()]}});
  }
  formats::write_safetensors(path, st);
}

AdapterSpec read_adapter_spec(const std::filesystem::path& path, std::map<std::string, std::string>* metadata) {
  const auto st = formats::read_safetensors(path);
  const auto meta = read_metadata(st, path.string());
  if (metadata) *metadata = meta;
  return spec_from(meta, path.string());
}

int stored_longest_response(const std::map<std::string, std::string>& metadata, const std::string& file) {
  const auto it = metadata.find(kLongestResponseKey);
  if (it == metadata.end()) return -1;
  int value = -1;
  const auto& t = it->second;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (t.empty() || ec != std::errc() || end != t.data() + t.size() || value < 0 || value > 1000000)
    throw formats::FormatError(file, std::string("metadata \"") + kLongestResponseKey + "\" is '" + t +
                                         "', not an integer in [0, 1000000]");
  return value;
}

std::string stored_prompt_template(const std::map<std::string, std::string>& metadata, const std::string& file) {
  const auto it = metadata.find("settings");
  if (it == metadata.end()) return {};
  // corrupt settings were ignored: the adapter was scored with the default template, without a word
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw formats::FormatError(file, std::string("metadata \"settings\" is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw formats::FormatError(file, "metadata \"settings\" is not a JSON object");
  const auto t = j.find("prompt-template");
  if (t == j.end()) return {};
  if (!t->is_string())
    throw formats::FormatError(file, std::string("metadata \"settings\": 'prompt-template' is a ") + t->type_name() +
                                         ", expected a template name");
  const std::string name = t->get<std::string>();
  const auto known = data::prompt_template_names();
  if (std::find(known.begin(), known.end(), name) == known.end()) {
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw formats::FormatError(file, "metadata \"settings\": 'prompt-template' is '" + name +
                                         "', not a template this build knows (" + list + ")");
  }
  return name;
}

AdapterSet load_adapter(const std::filesystem::path& path, const llm::ModelConfig& model) {
  const std::string file = path.string();
  const auto st = formats::read_safetensors(path);
  const auto meta = read_metadata(st, file);
  try {
    check_model(nlohmann::json::parse(meta.at("model")), model, file);
  } catch (const nlohmann::json::exception& e) {
    throw formats::FormatError(file, std::string("metadata \"model\" is not valid JSON: ") + e.what());
  }
  AdapterSet set = make_set(model, spec_from(meta, file), file);
  fill_values(st, file, set);
  return set;
}

void load_adapter_values(const std::filesystem::path& path, AdapterSet& set) {
  const std::string file = path.string();
  const auto st = formats::read_safetensors(path);
  const auto meta = read_metadata(st, file);
  try {
    check_model(nlohmann::json::parse(meta.at("model")), set.model_config(), file);
  } catch (const nlohmann::json::exception& e) {
    throw formats::FormatError(file, std::string("metadata \"model\" is not valid JSON: ") + e.what());
  }
  const AdapterSpec stored = spec_from(meta, file);
  if (stored.kind != set.spec().kind || stored.rank != set.spec().rank || stored.targets != set.spec().targets)
    throw formats::FormatError(file, std::string("adapter is a ") + kind_name(stored.kind) + " of rank " +
                                         std::to_string(stored.rank) + ", expected " + kind_name(set.spec().kind) +
                                         " of rank " + std::to_string(set.spec().rank));
  fill_values(st, file, set);
}

}  // namespace hyplora::train
