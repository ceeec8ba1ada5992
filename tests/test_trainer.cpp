// The reference trainer: pieces (schedule, JSON config merge, sha256, adapter and checkpoint files)
// and whole runs on stories260K (validation loss falls, resume is bit-exact, NaN policy, bad data).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include "data/record.hpp"
#include "data/registry.hpp"
#include "formats/format_error.hpp"
#include "formats/safetensors.hpp"
#include "model/load_model.hpp"
#include "stories_fixture.hpp"
#include "support.hpp"
#include "train/adapter_file.hpp"
#include "train/adapter_set.hpp"
#include "train/checkpoint.hpp"
#include "train/optimizer.hpp"
#include "train/dataset.hpp"
#include "eval/metrics.hpp"
#include "data/prompt_template.hpp"
#include "train/evaluate.hpp"
#include "train/schedule.hpp"
#include "train/settings.hpp"
#include "train/signals.hpp"
#include "train/trainer.hpp"
#include "util/json_config.hpp"
#include "util/model_locate.hpp"
#include "util/plot.hpp"
#include "util/subprocess.hpp"
#include "util/sha256.hpp"

namespace fs = std::filesystem;
using namespace hyplora;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("hyplora_test_trainer_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

llm::ModelConfig small_config() {
  llm::ModelConfig c;
  c.dim = 16;
  c.hidden_dim = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 32;
  c.seq_len = 32;
  return c;
}

/// Deterministic non-trivial parameter values (B != 0 so that every tensor matters).
void fill_params(train::AdapterSet& set, float seed) {
  for (auto& u : set.units())
    for (long i = 0; i < u->num_params(); ++i) {
      float v = std::sin(seed + 0.37f * float(i) + float(u->layer()));
      if (i == u->offset_scale()) v = 1.0f + std::abs(v);  // a norm scale must stay positive
      u->params()[i] = v;
    }
}

}  // namespace

// ---- pieces -----------------------------------------------------------------------------------

TEST_CASE("learning-rate schedule: warm-up then cosine or linear decay to the floor", "[trainer][schedule]") {
  train::LrSchedule s;
  s.peak = 1e-2;
  s.warmup_steps = 10;
  s.total_steps = 110;
  s.min_ratio = 0.1;
  const double tol = 8 * std::numeric_limits<double>::epsilon();
  CHECK(s.at(0) == Approx(1e-3).epsilon(tol));        // (0+1)/10 of the peak
  CHECK(s.at(9) == Approx(1e-2).epsilon(tol));        // warm-up ends at the peak
  CHECK(s.at(10) == Approx(1e-2).epsilon(tol));       // decay starts at the peak
  CHECK(s.at(60) == Approx(0.55e-2).epsilon(tol));    // cosine halfway: (peak + floor) / 2
  CHECK(s.at(110) == Approx(1e-3).epsilon(tol));      // the floor
  CHECK(s.at(500) == Approx(1e-3).epsilon(tol));      // stays there
  for (long t = 10; t < 110; ++t) CHECK(s.at(t + 1) <= s.at(t));
  s.decay = train::DecayKind::linear;
  CHECK(s.at(35) == Approx(1e-2 - 0.25 * 0.9e-2).epsilon(tol));
  s.decay = train::DecayKind::constant;
  CHECK(s.at(100) == s.peak);
  CHECK_THROWS_WITH(train::parse_decay("exp"), Catch::Contains("cosine, linear or constant"));
  s.total_steps = 0;
  CHECK_THROWS(s.validate());
}

TEST_CASE("sha256 of the FIPS 180-2 test vectors and of the shared model", "[trainer][sha256]") {
  CHECK(util::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(util::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(util::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  util::Sha256 h;  // one million 'a', fed in uneven pieces (crosses every block boundary case)
  const std::string chunk(997, 'a');
  std::size_t left = 1000000;
  while (left) {
    const std::size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  const auto model = test::require_shared("models/stories260K/stories260K.bin");
  CHECK(util::sha256_file(model) == util::stories260k_model_file().sha256);
  CHECK_NOTHROW(util::verify_known_file(model, util::stories260k_model_file()));
  CHECK_NOTHROW(util::verify_known_file(test::require_shared("models/stories260K/tok512.bin"),
                                        util::stories260k_tokenizer_file()));
  // a file of the right name but other content is rejected with its size
  const auto dir = temp_dir("sha");
  std::ofstream(dir / "stories260K.bin") << "not a model";
  CHECK_THROWS_WITH(util::verify_known_file(dir / "stories260K.bin", util::stories260k_model_file()),
                    Catch::Contains("size 11 bytes"));
  fs::remove_all(dir);
}

TEST_CASE("JSON config file fills the flags, the command line overrides it", "[trainer][config]") {
  const auto dir = temp_dir("config");
  // writes `json` to dir/name and parses `--config` with it (and the flags before it)
  auto parse_config = [&](CLI::App& a, const char* name, const char* json, std::vector<std::string> flags = {}) {
    std::ofstream(dir / name) << json;
    flags.push_back("--config");
    flags.push_back((dir / name).string());
    std::reverse(flags.begin(), flags.end());  // CLI11 parses a reversed vector
    a.parse(flags);
  };
  train::TrainSettings s;
  CLI::App app;
  app.add_option("--lr", s.lr);
  app.add_option("--rank", s.rank);
  app.add_option("--adapter", s.adapter);
  app.add_option("--targets", s.targets)->delimiter(',');
  app.add_flag("--learn-curvature", s.learn_curvature);
  util::add_json_config(&app);
  parse_config(app, "c.json", R"({"lr": 0.0123456789012345, "rank": 4, "adapter": "lora",
                                  "targets": ["q", "v"], "learn_curvature": true})", {"--rank", "16"});
  CHECK(s.lr == 0.0123456789012345);  // full double precision survives the file
  CHECK(s.rank == 16);                // the flag wins
  CHECK(s.adapter == "lora");
  CHECK(s.targets == std::vector<std::string>{"q", "v"});
  CHECK(s.learn_curvature);

  train::TrainSettings s2;
  CLI::App app2;
  app2.add_option("--lr", s2.lr);
  util::add_json_config(&app2);
  CHECK_THROWS_AS(parse_config(app2, "bad.json", R"({"lr": 0.1, "no_such_setting": 3})"), CLI::ParseError);

  CLI::App app3;
  app3.add_option("--lr", s2.lr);
  util::add_json_config(&app3);
  CHECK_THROWS_AS(parse_config(app3, "broken.json", R"({"lr": )"), CLI::ParseError);

  // an empty list: a setting that is empty by default stays empty (a run's settings.json holds
  // "data": []); one with a default is an error naming it
  train::TrainSettings s4;
  CLI::App app4;
  app4.add_option("--data", s4.data);
  app4.add_option("--targets", s4.targets)->delimiter(',')->capture_default_str();
  util::add_json_config(&app4);
  parse_config(app4, "empty.json", R"({"data": []})");
  CHECK(s4.data.empty());
  CHECK(s4.targets == train::TrainSettings{}.targets);
  CLI::App app5;
  train::TrainSettings s5;
  app5.add_option("--targets", s5.targets)->delimiter(',')->capture_default_str();
  util::add_json_config(&app5);
  CHECK_THROWS_WITH(parse_config(app5, "no_targets.json", R"({"targets": []})"),
                    Catch::Contains("'targets'") && Catch::Contains("empty list"));
  fs::remove_all(dir);
}

TEST_CASE("training settings: JSON round trip, unknown keys and bad values are errors", "[trainer][config]") {
  train::TrainSettings s;
  s.builtin = true;
  s.lr = 0.00123;
  s.targets = {"q", "down"};
  s.seed = 42;
  const nlohmann::json j = s;
  const auto back = j.get<train::TrainSettings>();
  CHECK(nlohmann::json(back) == j);
  nlohmann::json bad = j;
  bad["lrr"] = 1;
  CHECK_THROWS_WITH(bad.get<train::TrainSettings>(), Catch::Contains("unknown training setting 'lrr'"));
  s.targets = {"q", "z"};
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("unknown module 'z'"));
  s.targets = {"q"};
  s.curvature = -1;
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--curvature"));
  s.curvature = 1;
  s.targets = {"q", "v", "q"};  // passed validation, then failed at the first save (duplicate tensor names)
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--targets names module 'q' twice"));
  s.targets = {"q"};
  s.threads = 100000;  // libgomp crashed on this
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--threads must be in [0, 1024]") && Catch::Contains("100000"));
  s.threads = -1;
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--threads"));
  s.threads = 0;
  s.builtin_train = 99999999999L;  // was std::bad_alloc
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--builtin-train must be in [1, 1000000]"));
  s.builtin_train = 4000;
  s.val_examples = 99999999999L;
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--val-examples"));
  s.val_examples = 128;
  CHECK_NOTHROW(s.validate());
  // no upper bound hung for minutes (depth 5000); 1e30 epochs overflowed the step count
  s.depth_max = 5000;
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--depth-min/--depth-max") && Catch::Contains("<= 100") && Catch::Contains("5000"));
  s.depth_max = 3;
  s.steps = 0;
  s.epochs = 1e30;
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--epochs must be at most 1e+06, got 1e+30"));
  s.epochs = 2;
  CHECK_NOTHROW(s.validate());
  s.alpha = 1e30;
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--alpha"));
  s.alpha = 16;
  CHECK_THROWS_WITH(train::set_thread_count(100000), Catch::Contains("--threads must be in [0, 1024]"));
  CHECK_THROWS_WITH(train::check_thread_count(-4, "--threads"), Catch::Contains("got -4"));
  s.builtin = false;
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("no training data"));
  CHECK_THROWS_WITH(train::resolve_kind("hyplora", "euclidean", "consistent"), Catch::Contains("--adapter lora"));
  CHECK(train::resolve_kind("hyplora", "poincare", "consistent") == train::AdapterKind::hyplora_poincare);
  CHECK(train::resolve_kind("lora", "euclidean", "scaled") == train::AdapterKind::lora_scaled);
}

TEST_CASE("settings: curvature flags on LoRA, data listed twice, --val-examples 0 with --val-data, an underflowing K", "[trainer][settings]") {
  train::TrainSettings s;
  s.builtin = true;
  REQUIRE_NOTHROW(s.validate());
  // --curvature 1e-300 became K = 0 in float: "RuntimeCurvature: ... got 0", naming neither flag nor value
  s.curvature = 1e-300;
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--curvature") && Catch::Contains("float") && Catch::Contains("1e-300"));
  s.curvature = 1e300;
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--curvature") && Catch::Contains("1e+300"));
  // a float K whose reciprocal (the Poincare c) is subnormal: the library's curvature policies refuse it
  s.curvature = 1e38;
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--curvature") && Catch::Contains("reciprocal") && Catch::Contains("1e+38"));
  s.curvature = 1e-30;
  CHECK_NOTHROW(s.validate());
  s.curvature = 1;

  // LoRA has no curvature: --adapter lora --curvature 5 --learn-curvature --manifold poincare exited 0
  // and the adapter metadata recorded K:5, learn_K:true
  s.adapter = "lora";
  s.manifold = "euclidean";
  CHECK_NOTHROW(train::check_adapter_settings_apply(s));
  s.manifold = "lorentz";  // the default (a LoRA run's settings.json holds it): not refused
  CHECK_NOTHROW(train::check_adapter_settings_apply(s));
  s.curvature = 5;
  CHECK_THROWS_WITH(train::check_adapter_settings_apply(s), Catch::Contains("--curvature 5") && Catch::Contains("--adapter lora"));
  s.curvature = 1;
  s.learn_curvature = true;
  CHECK_THROWS_WITH(train::check_adapter_settings_apply(s), Catch::Contains("--learn-curvature") && Catch::Contains("--adapter lora"));
  s.learn_curvature = false;
  s.manifold = "poincare";
  CHECK_THROWS_WITH(train::check_adapter_settings_apply(s), Catch::Contains("--manifold poincare") && Catch::Contains("--adapter lora"));
  s.adapter = "hyplora";
  s.variant = "scaled";
  s.manifold = "lorentz";
  s.curvature = 2;
  CHECK_THROWS_WITH(train::check_adapter_settings_apply(s), Catch::Contains("--curvature 2") && Catch::Contains("--variant scaled"));
  s.variant = "naive";
  CHECK_NOTHROW(train::check_adapter_settings_apply(s));  // naive computes exp0/log0 with K
  s.manifold = "poincare";
  CHECK_THROWS_WITH(train::check_adapter_settings_apply(s), Catch::Contains("--manifold poincare") && Catch::Contains("naive"));
  s.variant = "consistent";
  s.learn_curvature = true;
  CHECK_NOTHROW(train::check_adapter_settings_apply(s));
  s = train::TrainSettings{};
  s.builtin = true;

  // the same --data twice duplicated its records (validation copies overlapped training)
  test::TempDir tmp;
  const fs::path file = tmp.path / "g.jsonl";
  test::spit(file, R"({"question": "1 + 1?", "answer": "2\n#### 2"})" "\n");
  s.data = {"gsm8k:" + file.string(), "gsm8k:" + file.string()};
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--data") && Catch::Contains("twice"));
  s.data = {"gsm8k:" + file.string(), (tmp.path / "." / "g.jsonl").string()};  // same file, other spelling
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--data") && Catch::Contains("twice"));
  s.data = {"gsm8k:" + file.string(), "mawps-train"};
  CHECK_NOTHROW(s.validate());
  CHECK(data::data_source_identity("gsm8k-train", tmp.path.string()) ==
        data::data_source_identity("gsm8k:" + (tmp.path / "gsm8k" / "train.jsonl").string()));
  CHECK(data::data_source_identity("gsm8k-train", tmp.path.string()) != data::data_source_identity("gsm8k-test", tmp.path.string()));
  s.data.clear();

  // docs: --val-examples 0 = no validation set; with --val-data it validated on all of the file
  s.val_examples = 0;
  CHECK_NOTHROW(s.validate());
  s.val_data = file.string();
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--val-examples 0") && Catch::Contains("--val-data"));
  s.val_examples = 5;
  CHECK_NOTHROW(s.validate());
  // the validation file is also a training source: the "best" adapter chosen on trained records
  s.data = {"gsm8k:" + file.string()};
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--val-data") && Catch::Contains("also a --data source"));
  s.val_data = (tmp.path / "." / "g.jsonl").string();  // the same file, spelled otherwise
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("also a --data source"));
}

TEST_CASE("weight decay shrinks A and B only, not the raw curvature or the norm scale", "[trainer][optimizer]") {
  train::AdapterSpec spec;
  spec.kind = train::AdapterKind::hyplora_lorentz;
  spec.rank = 2;
  spec.learn_K = true;
  spec.scale = adapter::ScaleMode::learnable;
  spec.targets = {llm::Module::q};
  train::AdapterSet set(small_config(), spec);
  fill_params(set, 0.25f);
  auto& u = *set.units()[0];
  REQUIRE(u.offset_curvature() >= 0);
  REQUIRE(u.offset_scale() >= 0);
  const std::vector<float> before(u.params(), u.params() + u.num_params());
  set.zero_grad();  // no gradient: the step is the decay alone, p -= lr wd p
  train::AdapterOptimizer opt(set, train::AdamWSettings{0.9, 0.999, 1e-8, 0.5});
  opt.step(set, 0.1);
  for (long i = 0; i < u.num_params(); ++i) {
    INFO("parameter " << i);
    if (i == u.offset_curvature() || i == u.offset_scale())
      CHECK(u.params()[i] == before[std::size_t(i)]);
    else
      CHECK(u.params()[i] == Approx(before[std::size_t(i)] * (1.0f - 0.05f)).epsilon(test::eps_tol(4.0f)));
  }
}

TEST_CASE("adapter files: atomic save and load give the same bits, with PEFT names and curvature", "[trainer][adapter_file]") {
  const auto dir = temp_dir("adapter");
  const auto cfg = small_config();
  for (auto kind : {train::AdapterKind::lora, train::AdapterKind::hyplora_lorentz, train::AdapterKind::paper,
                    train::AdapterKind::hyplora_poincare}) {
    train::AdapterSpec spec;
    spec.kind = kind;
    spec.rank = 3;
    spec.learn_K = kind != train::AdapterKind::lora;
    spec.K = 1.5;
    spec.targets = {llm::Module::q, llm::Module::v, llm::Module::down};
    train::AdapterSet set(cfg, spec);
    fill_params(set, 0.5f);
    const auto path = dir / (std::string(train::kind_name(kind)) + ".safetensors");
    train::save_adapter(path, set, {{"settings", "{}"}});
    auto loaded = train::load_adapter(path, cfg);
    CHECK(loaded.spec().kind == kind);
    const auto a = set.gather_params(), b = loaded.gather_params();
    REQUIRE(a.size() == b.size());
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    const auto st = formats::read_safetensors(path);
    CHECK(st.find("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight") != nullptr);
    CHECK(st.find("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight") != nullptr);
    if (kind != train::AdapterKind::lora) {
      const auto* K = st.find("base_model.model.model.layers.0.self_attn.v_proj.hyplora_K");
      REQUIRE(K != nullptr);
      CHECK(K->data[0] == Approx(set.units()[1]->K()).epsilon(test::eps_tol(4.0f)));
    }
    // another model's shape is refused, naming the field
    auto other = cfg;
    other.dim = 32;
    CHECK_THROWS_WITH(train::load_adapter(path, other), Catch::Contains("dim"));
  }
  // a NaN parameter: save refuses and the previous file stays as it was
  train::AdapterSpec spec;
  spec.rank = 2;
  train::AdapterSet set(cfg, spec);
  fill_params(set, 1.0f);
  const auto path = dir / "good.safetensors";
  train::save_adapter(path, set);
  const std::string before = file_bytes(path);
  set.units()[0]->params()[0] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(train::save_adapter(path, set), Catch::Contains("NaN"));
  CHECK(file_bytes(path) == before);
  // truncated and foreign files are clear errors
  std::ofstream(dir / "cut.safetensors", std::ios::binary) << before.substr(0, before.size() / 2);
  CHECK_THROWS_WITH(train::load_adapter(dir / "cut.safetensors", cfg), Catch::Contains("cut.safetensors"));
  formats::SafetensorsFile foreign;
  foreign.tensors.push_back({"w", "F32", {2}, {1.0f, 2.0f}});
  formats::write_safetensors(dir / "foreign.safetensors", foreign);
  CHECK_THROWS_WITH(train::load_adapter(dir / "foreign.safetensors", cfg), Catch::Contains("not a hyplora adapter"));

  // edited hyperbolic files: every tensor is read and checked against the metadata
  train::AdapterSpec hspec;
  hspec.kind = train::AdapterKind::hyplora_lorentz;
  hspec.rank = 2;
  hspec.learn_K = true;
  hspec.K = 1.5;
  train::AdapterSet hset(cfg, hspec);
  fill_params(hset, 0.5f);
  const auto hpath = dir / "hyp.safetensors";
  train::save_adapter(hpath, hset);
  const auto good = formats::read_safetensors(hpath);
  const auto edited = [&](const std::function<void(formats::SafetensorsFile&)>& edit) {
    auto st = good;
    edit(st);
    formats::write_safetensors(dir / "edited.safetensors", st);
    return dir / "edited.safetensors";
  };
  const std::string q_prefix = "base_model.model.model.layers.0.self_attn.q_proj";
  const auto tensor = [&](formats::SafetensorsFile& st, const std::string& name) -> formats::SafeTensor& {
    for (auto& t : st.tensors)
      if (t.name == name) return t;
    FAIL("no tensor " << name);
    return st.tensors.front();
  };
  // hyplora_K disagrees with the curvature the parameters give (it was not read at all)
  const auto bad_K = edited([&](auto& st) { tensor(st, q_prefix + ".hyplora_K").data[0] = 7.0f; });
  CHECK_THROWS_WITH(train::load_adapter(bad_K, cfg), Catch::Contains("edited.safetensors") &&
                                                          Catch::Contains(q_prefix + ".hyplora_K = 7") &&
                                                          Catch::Contains("disagrees"));
  // ... and a set it is loaded into keeps its values
  train::AdapterSet target(cfg, hspec);
  fill_params(target, 0.25f);
  const auto target_before = target.gather_params();
  CHECK_THROWS_WITH(train::load_adapter_values(bad_K, target), Catch::Contains("disagrees"));
  CHECK(target.gather_params() == target_before);
  // an extra tensor (was ignored)
  CHECK_THROWS_WITH(train::load_adapter(edited([&](auto& st) { st.tensors.push_back({"extra.weight", "F32", {1}, {1.0f}}); }), cfg),
                    Catch::Contains("tensor \"extra.weight\" is not part of a hyplora_lorentz adapter"));
  // kind "lora" over the tensors of a hyperbolic adapter (was loaded as LoRA)
  const auto as_lora = edited([&](auto& st) {
    auto spec_json = nlohmann::json::parse(st.metadata.at("adapter"));
    spec_json["kind"] = "lora";
    st.metadata["adapter"] = spec_json.dump();
  });
  CHECK_THROWS_WITH(train::load_adapter(as_lora, cfg), Catch::Contains("is not part of a lora adapter"));
  // a stored alpha train would refuse (was accepted and generated garbage)
  for (const double alpha : {1e30, -16.0, 0.0}) {
    const auto bad_alpha = edited([&](auto& st) {
      auto spec_json = nlohmann::json::parse(st.metadata.at("adapter"));
      spec_json["alpha"] = alpha;
      st.metadata["adapter"] = spec_json.dump();
    });
    INFO("alpha " << alpha);
    CHECK_THROWS_WITH(train::load_adapter(bad_alpha, cfg), Catch::Contains("edited.safetensors") && Catch::Contains("alpha") &&
                                                                Catch::Contains("positive and finite"));
    CHECK_THROWS_WITH(train::read_adapter_spec(bad_alpha), Catch::Contains("alpha"));
  }
  // a flipped exponent bit: finite, absurd
  CHECK_THROWS_WITH(train::load_adapter(edited([&](auto& st) { tensor(st, q_prefix + ".lora_A.weight").data[1] = -3e38f; }), cfg),
                    Catch::Contains(q_prefix + ".lora_A.weight\": element 1 is -3e+38"));
  // values AdapterConfig / AdapterSet refuse: the message named neither the file nor the metadata
  // ("AdapterConfig: dropout must be in [0, 1), got 2", "AdapterSet: no target modules")
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> bad_specs{
      {[](nlohmann::json& j) { j["dropout"] = 2.0; }, "metadata \"adapter\": dropout 2.0 is not in [0, 1)"},
      {[](nlohmann::json& j) { j["scale_init"] = -5.0; }, "metadata \"adapter\": scale_init -5.0 is not 0 (= sqrt(d_in)) or in [1e-30, 1e30]"},
      {[](nlohmann::json& j) { j["targets"] = nlohmann::json::array(); }, "metadata \"adapter\": targets is empty"},
      {[](nlohmann::json& j) { j["targets"] = {"q_proj", "q_proj"}; }, "metadata \"adapter\": targets names module 'q_proj' twice"},
      {[](nlohmann::json& j) { j["K"] = 1e-7; }, "metadata \"adapter\": "}};  // learnable K below K_min: AdapterConfig's check
  for (const auto& [edit, message] : bad_specs) {
    const auto bad_spec = edited([&](auto& st) {
      auto spec_json = nlohmann::json::parse(st.metadata.at("adapter"));
      edit(spec_json);
      st.metadata["adapter"] = spec_json.dump();
    });
    INFO(message);
    CHECK_THROWS_WITH(train::load_adapter(bad_spec, cfg), Catch::StartsWith((dir / "edited.safetensors").string() + ": ") &&
                                                               Catch::Contains(message));
  }
  // the training settings stored with the adapter: eval takes the prompt template from them. Corrupt
  // settings were ignored, and the adapter was scored with the default template without a word
  const auto template_of = [&](const std::function<void(formats::SafetensorsFile&)>& edit) {
    const auto path = edited(edit);
    return train::stored_prompt_template(formats::read_safetensors(path).metadata, path.string());
  };
  CHECK(template_of([](auto&) {}).empty());  // no settings: unknown, not an error
  CHECK(template_of([](auto& st) { st.metadata["settings"] = "{}"; }).empty());
  CHECK(template_of([](auto& st) { st.metadata["settings"] = R"({"prompt-template": "alpaca"})"; }) == "alpaca");
  const std::vector<std::pair<std::string, std::string>> bad_settings{
      {"{{", "metadata \"settings\" is not valid JSON"},
      {"[1]", "metadata \"settings\" is not a JSON object"},
      {R"({"prompt-template": 5})", "metadata \"settings\": 'prompt-template' is a number"},
      {R"({"prompt-template": "jinja"})", "metadata \"settings\": 'prompt-template' is 'jinja', not a template this build knows (alpaca, compact)"}};
  for (const auto& [settings, message] : bad_settings) {
    INFO(settings);
    CHECK_THROWS_WITH(template_of([&](auto& st) { st.metadata["settings"] = settings; }),
                      Catch::StartsWith((dir / "edited.safetensors").string() + ": ") && Catch::Contains(message));
  }
  // metadata "model" with a value of the wrong type read `dim = "16", this model has 16`
  const auto model_edit = [&](const std::string& model_json) {
    return edited([&](auto& st) { st.metadata["model"] = model_json; });
  };
  auto model_of = nlohmann::json::parse(good.metadata.at("model"));
  model_of["dim"] = std::to_string(cfg.dim);
  CHECK_THROWS_WITH(train::load_adapter(model_edit(model_of.dump()), cfg),
                    Catch::StartsWith((dir / "edited.safetensors").string() + ": ") &&
                        Catch::Contains("metadata \"model\": dim is a string (\"16\"), expected an integer"));
  CHECK_THROWS_WITH(train::load_adapter_values(model_edit(model_of.dump()), target), Catch::Contains("dim is a string"));
  CHECK_THROWS_WITH(train::load_adapter(model_edit("[16, 24]"), cfg), Catch::Contains("metadata \"model\" is a JSON array"));
  CHECK_THROWS_WITH(train::load_adapter_values(model_edit("{{"), target), Catch::Contains("metadata \"model\" is not valid JSON"));
  model_of["dim"] = 32;  // a number: another model
  CHECK_THROWS_WITH(train::load_adapter(model_edit(model_of.dump()), cfg), Catch::Contains("another model: dim = 32, this model has 16"));
  CHECK_NOTHROW(train::load_adapter(hpath, cfg));
  fs::remove_all(dir);
}

TEST_CASE("checkpoint: save and load round trip, corrupt checkpoints are errors", "[trainer][checkpoint]") {
  const auto dir = temp_dir("ckpt");
  train::Checkpoint c;
  c.state.step = 7;
  c.state.adam_t = 6;
  c.state.training_forwards = 14;
  c.state.best_val_loss = 1.25;
  c.state.best_step = 4;
  c.settings.builtin = true;
  c.settings.lr = 0.0042;
  c.params = {1.5f, -2.25f, 3e-8f};
  c.adam_m = {0.1f, 0.2f, 0.3f};
  c.adam_v = {1e-9f, 2e-9f, 3e-9f};
  train::save_checkpoint(dir / "c.safetensors", c);
  const auto back = train::load_checkpoint(dir / "c.safetensors");
  CHECK(back.state.step == 7);
  CHECK(back.state.adam_t == 6);
  CHECK(back.state.training_forwards == 14);
  CHECK(back.state.best_val_loss == 1.25);
  CHECK(back.settings.lr == 0.0042);
  CHECK(back.params == c.params);
  CHECK(back.adam_m == c.adam_m);
  CHECK(back.adam_v == c.adam_v);
  c.state.best_val_loss = std::numeric_limits<double>::infinity();  // no validation yet: stored as null
  train::save_checkpoint(dir / "c.safetensors", c);
  CHECK(std::isinf(train::load_checkpoint(dir / "c.safetensors").state.best_val_loss));
  CHECK_THROWS_WITH(train::load_checkpoint(dir / "missing.safetensors"), Catch::Contains("not found"));
  std::ofstream(dir / "junk.safetensors") << "junk";
  CHECK_THROWS_WITH(train::load_checkpoint(dir / "junk.safetensors"), Catch::Contains("junk.safetensors"));
  // the initial and last validation losses round-trip; a checkpoint of an older build (without
  // those keys) still loads, with NaN
  c.state.initial_val_loss = 2.5;
  c.state.last_val_loss = 1.75;
  train::save_checkpoint(dir / "c.safetensors", c);
  CHECK(train::load_checkpoint(dir / "c.safetensors").state.initial_val_loss == 2.5);
  CHECK(train::load_checkpoint(dir / "c.safetensors").state.last_val_loss == 1.75);
  auto st = formats::read_safetensors(dir / "c.safetensors");
  auto state = nlohmann::json::parse(st.metadata.at("state"));
  state.erase("initial_val_loss");
  state.erase("last_val_loss");
  st.metadata["state"] = state.dump();
  formats::write_safetensors(dir / "old.safetensors", st);
  const auto old = train::load_checkpoint(dir / "old.safetensors");
  CHECK(old.state.step == 7);
  CHECK(std::isnan(old.state.initial_val_loss));
  // this build's prompt boundary loads; an unknown one (read as an older build's) names the file and value
  CHECK(old.prompt_boundary == "model_prompt");
  auto boundary = st;
  boundary.metadata["prompt_boundary"] = "zzz";
  formats::write_safetensors(dir / "boundary.safetensors", boundary);
  CHECK_THROWS_WITH(train::load_checkpoint(dir / "boundary.safetensors"),
                    Catch::Contains("boundary.safetensors") && Catch::Contains("\"prompt_boundary\" is \"zzz\""));
  // a checkpoint without settings names the missing field and the file (was "map::at")
  st.metadata.erase("settings");
  formats::write_safetensors(dir / "nosettings.safetensors", st);
  CHECK_THROWS_WITH(train::load_checkpoint(dir / "nosettings.safetensors"),
                    Catch::Contains("nosettings.safetensors") && Catch::Contains("\"settings\" is missing"));
  // the pending validation round-trips; absurd values are errors naming the file
  c.state.val_pending = true;
  train::save_checkpoint(dir / "c.safetensors", c);
  CHECK(train::load_checkpoint(dir / "c.safetensors").state.val_pending);
  CHECK_FALSE(old.state.val_pending);  // absent in an older checkpoint
  auto bad = c;
  bad.params[1] = 3e38f;
  train::save_checkpoint(dir / "bad.safetensors", bad);
  CHECK_THROWS_WITH(train::load_checkpoint(dir / "bad.safetensors"),
                    Catch::Contains("bad.safetensors") && Catch::Contains("'params': element 1 is 3e+38"));
  bad = c;
  bad.adam_v[2] = -1.0f;
  train::save_checkpoint(dir / "bad.safetensors", bad);
  CHECK_THROWS_WITH(train::load_checkpoint(dir / "bad.safetensors"), Catch::Contains("'adam_v': element 2 is negative"));
  bad = c;
  bad.state.best_step = 8;  // after step 7
  train::save_checkpoint(dir / "bad.safetensors", bad);
  CHECK_THROWS_WITH(train::load_checkpoint(dir / "bad.safetensors"), Catch::Contains("inconsistent run state"));
  // consecutive_bad counts the latest skipped steps: 1000 at step 7 without a skipped step was accepted
  for (const auto& [skipped, consecutive] : {std::pair{0L, 1000}, std::pair{2L, 3}, std::pair{0L, -1}}) {
    bad = c;
    bad.state.skipped_steps = skipped;
    bad.state.consecutive_bad = consecutive;
    train::save_checkpoint(dir / "bad.safetensors", bad);
    INFO("skipped " << skipped << ", consecutive " << consecutive);
    CHECK_THROWS_WITH(train::load_checkpoint(dir / "bad.safetensors"),
                      Catch::StartsWith((dir / "bad.safetensors").string() + ": ") &&
                          Catch::Contains("consecutive_bad " + std::to_string(consecutive) + " is not in [0, skipped_steps " +
                                          std::to_string(skipped) + "]"));
  }
  bad = c;
  bad.state.skipped_steps = 3;
  bad.state.consecutive_bad = 2;  // consistent: loads
  train::save_checkpoint(dir / "bad.safetensors", bad);
  CHECK(train::load_checkpoint(dir / "bad.safetensors").state.consecutive_bad == 2);
  bad.state.skipped_steps = 9;  // more than step 7
  train::save_checkpoint(dir / "bad.safetensors", bad);
  CHECK_THROWS_WITH(train::load_checkpoint(dir / "bad.safetensors"), Catch::Contains("skipped_steps 9 is not in [0, step 7]"));
  // the log window (losses since the last log line) and the last gradient norm round-trip to the bit;
  // an older checkpoint has none; counts beyond the step or a sum without steps are errors
  c.state.loss_window_sum = 7.123456789012345;
  c.state.loss_window_steps = 3;
  c.state.last_grad_norm = 0.1 + 0.2;
  train::save_checkpoint(dir / "c.safetensors", c);
  const auto window = train::load_checkpoint(dir / "c.safetensors").state;
  CHECK(window.loss_window_sum == 7.123456789012345);
  CHECK(window.loss_window_steps == 3);
  CHECK(window.last_grad_norm == 0.1 + 0.2);
  CHECK(old.state.loss_window_steps == 0);
  CHECK(old.state.loss_window_sum == 0);
  for (const auto& [sum, steps, problem] : {std::tuple{1.0, 8L, "loss_window_steps 8 is not in [0, step 7]"},
                                            std::tuple{1.0, 0L, "loss_window_sum 1.0 does not fit loss_window_steps 0"}}) {
    bad = c;
    bad.state.loss_window_sum = sum;
    bad.state.loss_window_steps = steps;
    train::save_checkpoint(dir / "bad.safetensors", bad);
    CHECK_THROWS_WITH(train::load_checkpoint(dir / "bad.safetensors"),
                      Catch::Contains("bad.safetensors") && Catch::Contains(problem));
  }
  fs::remove_all(dir);
}

TEST_CASE("a bad data file gives a clear error naming the file and line", "[trainer][data]") {
  const auto dir = temp_dir("data");
  const auto path = dir / "gsm8k_bad.jsonl";
  std::ofstream(path) << R"({"question": "Tom has 2 apples.", "answer": "2 #### 2"})" << "\n"
                      << R"({"question": "broken", "answer": )" << "\n";
  try {
    train::load_data_source(path.string(), data::BadRecordPolicy::reject);
    FAIL("a broken line was accepted");
  } catch (const data::DataError& e) {
    CHECK_THAT(e.what(), Catch::Contains("gsm8k_bad.jsonl:2"));
  }
  const auto skipped = train::load_data_source(path.string(), data::BadRecordPolicy::skip);
  CHECK(skipped.records.size() == 1);
  CHECK(skipped.skipped == 1);
  std::ofstream(dir / "mystery.json") << "[]";
  CHECK_THROWS_WITH(train::load_data_source((dir / "mystery.json").string(), data::BadRecordPolicy::reject),
                    Catch::Contains("FORMAT:PATH"));
  CHECK_THROWS_WITH(train::load_data_source("gsm8k:" + (dir / "absent.jsonl").string(), data::BadRecordPolicy::reject),
                    Catch::Contains("absent.jsonl"));
  // an unknown format before an existing file, an empty path, a folder: said so (the messages spoke of
  // a registered name, an empty file name, and the format of a "data file")
  CHECK_THROWS_WITH(train::load_data_source("foo:" + path.string(), data::BadRecordPolicy::reject),
                    Catch::Contains("foo:" + path.string()) && Catch::Contains("unknown data format 'foo'"));
  CHECK_THROWS_WITH(train::load_data_source("gsm8k:", data::BadRecordPolicy::reject),
                    Catch::Contains("'gsm8k:' names no file after 'gsm8k:'"));
  CHECK_THROWS_WITH(train::load_data_source(dir.string(), data::BadRecordPolicy::reject),
                    Catch::Contains(dir.string()) && Catch::Contains("is a folder, not a data file"));
  // a mistyped registered name lists the known names (the registry's list was lost)
  CHECK_THROWS_WITH(train::load_data_source("gsm8k-tets", data::BadRecordPolicy::reject),
                    Catch::Contains("'gsm8k-tets'") && Catch::Contains("gsm8k-test") && Catch::Contains("mawps-train"));
  fs::remove_all(dir);
}

// ---- whole runs on stories260K ----------------------------------------------------------------

namespace {

using test::load_stories;

train::TrainSettings small_run(const fs::path& out) {
  train::TrainSettings s;
  s.builtin = true;
  s.adapter = "hyplora";
  s.manifold = "lorentz";
  s.rank = 4;
  s.alpha = 8;
  s.lr = 1e-2;
  s.warmup = 2;
  s.batch = 8;
  s.steps = 12;
  s.depth_min = 1;
  s.depth_max = 2;
  s.builtin_train = 200;
  s.val_examples = 16;
  s.eval_every = 4;
  s.log_every = 2;
  s.plot = "none";
  s.quiet = true;
  s.out = out.string();
  return s;
}

/// train_log.jsonl's lines without the fields that measure time (they differ between any two runs).
std::vector<nlohmann::json> log_lines_without_timing(const fs::path& log) {
  std::ifstream in(log);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("elapsed_s");
    j.erase("tokens_per_s");
    lines.push_back(std::move(j));
  }
  return lines;
}

std::vector<data::Record> records(const train::TrainSettings& s, const char* split, std::size_t n) {
  return train::builtin_records(s.seed, s.depth_min, s.depth_max, split, n);
}

}  // namespace

TEST_CASE("a short training run on the built-in task lowers the validation loss", "[trainer][run]") {
  auto st = load_stories();
  train::set_thread_count(1);
  const auto dir = temp_dir("run");
  auto s = small_run(dir);
  s.steps = 20;
  train::TrainingRun run(s, *st.model, st.tok, records(s, "train", 200), records(s, "validation", 16));
  const auto r = run.run(false);
  INFO("initial " << r.initial_val_loss << " best " << r.best_val_loss);
  CHECK(r.steps == 20);
  CHECK(std::isfinite(r.initial_val_loss));
  CHECK(r.best_val_loss < 0.9 * r.initial_val_loss);
  CHECK(fs::exists(dir / "adapter.safetensors"));
  CHECK(fs::exists(dir / "adapter_best.safetensors"));
  CHECK(fs::exists(dir / "train_log.jsonl"));
  // the best adapter file reproduces the best validation loss when loaded into a fresh set
  train::TrainingRun probe(s, *st.model, st.tok, records(s, "train", 200), records(s, "validation", 16));
  auto best = train::load_adapter(dir / "adapter_best.safetensors", st.model->config());
  best.attach(*st.model);
  CHECK(probe.validation_loss() == Approx(r.best_val_loss).epsilon(test::eps_tol(64.0)));
  st.model->detach_all();
  fs::remove_all(dir);
}

TEST_CASE("stop and resume continue bit for bit (single thread, with dropout)", "[trainer][resume]") {
  auto st = load_stories();
  train::set_thread_count(1);
  const auto dir_a = temp_dir("resume_a"), dir_b = temp_dir("resume_b");
  auto sa = small_run(dir_a);
  sa.dropout = 0.1;  // the dropout streams must be replayed on resume
  sa.grad_accum = 2;
  auto sb = sa;
  sb.out = dir_b.string();
  const auto train_recs = records(sa, "train", 200), val_recs = records(sa, "validation", 16);

  train::TrainingRun full(sa, *st.model, st.tok, train_recs, val_recs);
  const auto ra = full.run(false);
  REQUIRE(ra.steps == 12);
  const auto final_a = full.adapters().gather_params();

  {
    train::TrainingRun first(sb, *st.model, st.tok, train_recs, val_recs);
    first.stop_after_steps = 5;  // stops between validations: the checkpoint is the stop's own
    const auto r1 = first.run(false);
    CHECK(r1.interrupted);
    CHECK(r1.steps == 5);
  }
  train::TrainingRun second(sb, *st.model, st.tok, train_recs, val_recs);
  const auto r2 = second.run(true);
  CHECK(r2.steps == 12);
  const auto final_b = second.adapters().gather_params();
  REQUIRE(final_a.size() == final_b.size());
  CHECK(std::memcmp(final_a.data(), final_b.data(), final_a.size() * sizeof(float)) == 0);
  const auto file_a = train::load_adapter(dir_a / "adapter.safetensors", st.model->config()).gather_params();
  const auto file_b = train::load_adapter(dir_b / "adapter.safetensors", st.model->config()).gather_params();
  CHECK(std::memcmp(file_a.data(), file_b.data(), file_a.size() * sizeof(float)) == 0);
  // the log of the resumed run has each step once
  std::ifstream log(dir_b / "train_log.jsonl");
  std::string line;
  int step6_lines = 0;
  while (std::getline(log, line))
    if (nlohmann::json::parse(line).value("step", -1) == 6 && line.find("\"loss\"") != std::string::npos) ++step6_lines;
  CHECK(step6_lines == 1);
  // and the same lines as the uninterrupted run: the stop at step 5 fell inside the window of the step-6
  // line, which averaged only step 6 when the checkpoint did not keep the window
  const auto log_a = log_lines_without_timing(dir_a / "train_log.jsonl");
  const auto log_b = log_lines_without_timing(dir_b / "train_log.jsonl");
  CHECK(log_a.size() == log_b.size());
  for (std::size_t i = 0; i < std::min(log_a.size(), log_b.size()); ++i) {
    INFO("log line " << i + 1 << ": " << log_a[i].dump() << " / " << log_b[i].dump());
    CHECK(log_a[i] == log_b[i]);
  }
  // the resumed run reports the whole run: the initial validation loss of step 0 and the training
  // time of both processes (summary.json had null and only the resumed part)
  CHECK(std::isfinite(ra.initial_val_loss));
  CHECK(r2.initial_val_loss == ra.initial_val_loss);
  CHECK(r2.total_train_seconds > r2.train_seconds);
  const auto summary = nlohmann::json::parse(file_bytes(dir_b / "summary.json"));
  CHECK(summary["initial_val_loss"].get<double>() == ra.initial_val_loss);
  CHECK(summary["train_seconds"].get<double>() == r2.total_train_seconds);
  fs::remove_all(dir_a);
  fs::remove_all(dir_b);
}

TEST_CASE("resume of a log with a line it cannot read: an error naming the file and line, no file changed; a torn last line is dropped", "[trainer][resume]") {
  // the unreadable line was dropped and the log rewritten without it: history lost without a word
  auto st = load_stories();
  train::set_thread_count(1);
  const auto dir = temp_dir("bad_log");
  const auto s = small_run(dir);
  const auto train_recs = records(s, "train", 200), val_recs = records(s, "validation", 16);
  {
    train::TrainingRun first(s, *st.model, st.tok, train_recs, val_recs);
    first.stop_after_steps = 5;
    REQUIRE(first.run(false).interrupted);
  }
  const fs::path log_path = dir / "train_log.jsonl";
  const std::string log = file_bytes(log_path);
  const std::size_t first_end = log.find('\n') + 1;
  REQUIRE(first_end > 1);
  REQUIRE(std::count(log.begin(), log.end(), '\n') >= 3);
  auto folder = [&] {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::directory_iterator(dir)) files[e.path().filename().string()] = file_bytes(e.path());
    return files;
  };
  struct Case {
    std::string text, message;
  };
  const long lines = long(std::count(log.begin(), log.end(), '\n'));
  const std::vector<Case> bad{
      {log.substr(0, first_end) + "garbage\n" + log.substr(first_end), ":2: line is not valid JSON"},
      {log.substr(0, first_end) + R"({"step": "3", "loss": 1.5})" "\n" + log.substr(first_end),
       ":2: line its \"step\" is a string, not a number"},
      {log + "[1, 2]\n", ":" + std::to_string(lines + 1) + ": line is a JSON array, not an object"},
      // a broken line that ends with its newline is not a torn write
      {log + R"({"step": 6, "lo)" "\n", ":" + std::to_string(lines + 1) + ": line is not valid JSON"}};
  for (const auto& c : bad) {
    INFO(c.message);
    { std::ofstream(log_path, std::ios::binary | std::ios::trunc) << c.text; }
    const auto before = folder();
    train::TrainingRun resumed(s, *st.model, st.tok, train_recs, val_recs);
    CHECK_THROWS_WITH(resumed.run(true), Catch::StartsWith(log_path.string() + c.message) &&
                                             Catch::Contains("no file was changed"));
    CHECK(folder() == before);  // the log kept its line, nothing else was written
  }
  // a last line without its newline is the write of a killed run (after its last checkpoint): dropped
  { std::ofstream(log_path, std::ios::binary | std::ios::trunc) << log << R"({"step": 6, "loss": 1.)"; }
  train::TrainingRun resumed(s, *st.model, st.tok, train_recs, val_recs);
  CHECK(resumed.run(true).steps == 12);
  const std::string after = file_bytes(log_path);
  CHECK(after.substr(0, log.size()) == log);  // the history before the checkpoint is kept as it was
  std::map<long, int> loss_lines;
  std::istringstream in(after);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j;
    REQUIRE_NOTHROW(j = nlohmann::json::parse(line));
    if (j.contains("loss")) ++loss_lines[j["step"].get<long>()];
  }
  CHECK(loss_lines == std::map<long, int>{{2, 1}, {4, 1}, {6, 1}, {8, 1}, {10, 1}, {12, 1}});
  fs::remove_all(dir);
}

TEST_CASE("a stop during a validation saves the run with that validation pending; the resume runs it first and ends bit for bit", "[trainer][resume]") {
  auto st = load_stories();
  train::set_thread_count(1);
  const auto dir_a = temp_dir("val_stop_a");
  auto sa = small_run(dir_a);
  const auto train_recs = records(sa, "train", 200), val_recs = records(sa, "validation", 16);
  train::TrainingRun full(sa, *st.model, st.tok, train_recs, val_recs);
  const auto ra = full.run(false);
  REQUIRE(ra.steps == 12);
  const auto same_params = [&](const fs::path& a, const fs::path& b) {
    const auto x = train::load_adapter(a, st.model->config()).gather_params();
    const auto y = train::load_adapter(b, st.model->config()).gather_params();
    return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
  };
  // stop requested before the run: the initial validation (step 0) is the one cut; eval_every 4:
  // a stop requested during step 8 cuts the validation after it
  for (const long stop_in_step : {-1L, 7L}) {
    const auto dir_b = temp_dir(stop_in_step < 0 ? "val_stop_b0" : "val_stop_b8");
    auto sb = sa;
    sb.out = dir_b.string();
    {
      train::TrainingRun first(sb, *st.model, st.tok, train_recs, val_recs);
      if (stop_in_step < 0) train::request_stop();
      else first.after_backward = [&](long step, train::AdapterSet&) { if (step == stop_in_step) train::request_stop(); };
      const auto r1 = first.run(false);
      train::clear_stop_request();
      INFO("stop in step " << stop_in_step << ": " << r1.stop_reason);
      CHECK(r1.interrupted);
      CHECK(r1.steps == stop_in_step + 1);
      CHECK(r1.stop_reason.find("validation") != std::string::npos);
      const auto c = train::load_checkpoint(dir_b / "checkpoint.safetensors");
      CHECK(c.state.val_pending);
      CHECK(c.state.step == stop_in_step + 1);
      // only files that exist are named: a stop in the initial validation saves no best adapter, and
      // the result and summary.json named adapter_best.safetensors (and "best step -1") all the same
      const bool best_saved = fs::exists(dir_b / "adapter_best.safetensors");
      CHECK(best_saved == (stop_in_step >= 0));
      CHECK(r1.adapter_best.empty() == !best_saved);
      CHECK(fs::exists(r1.adapter_last));
      const auto summary = nlohmann::json::parse(file_bytes(dir_b / "summary.json"));
      CHECK(summary["adapter"] == r1.adapter_last.string());
      if (best_saved) {
        CHECK(summary["adapter_best"] == r1.adapter_best.string());
        CHECK(summary["best_step"] == r1.best_step);
        CHECK(r1.best_step >= 0);
      } else {
        CHECK(summary["adapter_best"].is_null());
        CHECK(summary["best_step"].is_null());
        CHECK(r1.best_step == -1);
      }
    }
    train::TrainingRun second(sb, *st.model, st.tok, train_recs, val_recs);
    const auto r2 = second.run(true);
    CHECK(r2.steps == 12);
    CHECK(r2.initial_val_loss == ra.initial_val_loss);
    CHECK(r2.best_val_loss == ra.best_val_loss);
    CHECK(r2.best_step == ra.best_step);
    CHECK(same_params(dir_a / "adapter.safetensors", dir_b / "adapter.safetensors"));
    CHECK(same_params(dir_a / "adapter_best.safetensors", dir_b / "adapter_best.safetensors"));
    // every validation point is in the log once, with the value of the uninterrupted run
    std::map<long, std::vector<double>> val_a, val_b;
    for (const auto& [dir, vals] : {std::pair{dir_a, &val_a}, std::pair{dir_b, &val_b}}) {
      std::ifstream log(dir / "train_log.jsonl");
      for (std::string line; std::getline(log, line);) {
        const auto j = nlohmann::json::parse(line);
        if (j.contains("val_loss")) (*vals)[j["step"].get<long>()].push_back(j["val_loss"].get<double>());
      }
    }
    CHECK(val_b == val_a);
    CHECK(val_a.size() == 4);  // steps 0, 4, 8, 12
    fs::remove_all(dir_b);
  }
  fs::remove_all(dir_a);
}

TEST_CASE("training's context ends where evaluation's prompt ends, also where a space merges with the answer", "[trainer][data]") {
  // The compact template's prompt ends "A: ". Encoded whole, "A: Tom ..." is ":" " T" "om" (the space
  // merges with the word), so the prompt with its space is not a prefix of the trained sequence and
  // an evaluation from it would continue a token sequence training never showed. The model's prompt
  // (PromptTemplate::model_prompt) drops the trailing space: its tokens must be exactly the unmasked
  // head of the training sequence, for word-led and digit-led answers, with both tokenizers.
  const auto tok512 = llm::Tokenizer::load_llama2c(test::require_shared("models/stories260K/tok512.bin"), 512);
  const auto llama = llm::Tokenizer::load_llama2c(test::require_shared("models/llama2-tokenizer/tokenizer.bin"));
  auto recs = train::builtin_records(0, 1, 3, "test", 6);
  for (const char* answer : {"Tom had 5 apples. The answer is 5.", "She gave away 2. The answer is 2.",
                             "(A) is right. The answer is A."}) {
    data::Record r = recs.front();
    r.answer_text = answer;
    recs.push_back(r);
  }
  int merged_with_space = 0;
  for (const char* name : {"compact", "alpaca"}) {
    const auto& tmpl = data::prompt_template(name);
    for (const llm::Tokenizer* tok : {&tok512, &llama}) {
      std::size_t dropped = 0;
      const auto ex = train::tokenize_examples(recs, tmpl, *tok, 100000, &dropped);
      REQUIRE(dropped == 0);
      REQUIRE(ex.size() == recs.size());
      for (std::size_t i = 0; i < recs.size(); ++i) {
        INFO(name << " vocab " << tok->vocab_size() << ": " << recs[i].answer_text);
        const auto context = tok->encode(tmpl.model_prompt(recs[i]), true, false);
        REQUIRE(ex[i].prompt_tokens == int(context.size()));
        CHECK(std::equal(context.begin(), context.end(), ex[i].tokens.begin()));
        // the old boundary (the prompt with its trailing space): not a prefix where the space merged
        const auto with_space = tok->encode(tmpl.prompt(recs[i]), true, false);
        merged_with_space += !std::equal(with_space.begin(), with_space.end(), ex[i].tokens.begin());
      }
    }
  }
  CHECK(merged_with_space > 0);  // the case this guards against occurs in these inputs
  // --cutoff: an example cut inside its response is kept and counted; one with no response token left
  // is dropped and counted
  const auto& compact = data::prompt_template("compact");
  const auto whole = train::tokenize_examples(recs, compact, tok512, 100000);
  const int shortest_prompt = std::min_element(whole.begin(), whole.end(), [](const auto& a, const auto& b) {
                                return a.prompt_tokens < b.prompt_tokens;
                              })->prompt_tokens;
  const int cutoff = shortest_prompt + 2;
  std::size_t want_dropped = 0, want_cut = 0;
  for (const auto& e : whole) {
    want_dropped += e.prompt_tokens >= cutoff;
    want_cut += e.prompt_tokens < cutoff && int(e.tokens.size()) > cutoff;
  }
  REQUIRE(want_cut > 0);
  std::size_t dropped = 0, cut = 0;
  const auto kept = train::tokenize_examples(recs, compact, tok512, cutoff, &dropped, &cut);
  CHECK(dropped == want_dropped);
  CHECK(cut == want_cut);
  CHECK(kept.size() == recs.size() - want_dropped);
}

TEST_CASE("evaluation counts the prompts that leave no room to generate", "[trainer][eval]") {
  auto st = load_stories();
  train::set_thread_count(1);
  auto recs = train::builtin_records(0, 1, 1, "test", 2);
  for (int i = 0; i < 300; ++i) recs[1].question += " Tom had 3 apples.";  // far beyond 512 tokens
  const auto& tmpl = data::prompt_template("compact");
  const auto acc = train::evaluate_records(*st.model, st.tok, tmpl, recs, "t", train::GenerationLimits{4}, true);
  CHECK(acc.prompts_too_long == 1);
  CHECK(acc.overall.total == 2);
  REQUIRE(acc.items.size() == 2);
  CHECK(acc.items[1].generated.empty());
  CHECK_FALSE(acc.items[1].correct);
  eval::AccuracyReport report;
  report.datasets.push_back(acc);
  CHECK(eval::report_from_json(eval::to_json(report, true)).datasets[0].prompts_too_long == 1);
}

TEST_CASE("without a validation set the best adapter is the last one", "[trainer][run]") {
  auto st = load_stories();
  train::set_thread_count(1);
  const auto dir = temp_dir("no_val");
  auto s = small_run(dir);
  s.val_examples = 0;
  train::TrainingRun run(s, *st.model, st.tok, records(s, "train", 200), {});
  const auto r = run.run(false);
  CHECK_FALSE(r.validated);
  CHECK(r.best_step == 12);
  // (it used to stay the untrained adapter of step 0)
  CHECK(file_bytes(dir / "adapter_best.safetensors") == file_bytes(dir / "adapter.safetensors"));
  const auto summary = nlohmann::json::parse(file_bytes(dir / "summary.json"));
  CHECK(summary["best_by"] == "last step (no validation set)");
  CHECK(summary["best_step"] == 12);
  CHECK(summary["best_val_loss"].is_null());
  fs::remove_all(dir);
}

TEST_CASE("an --out folder holding a run is refused without --resume or --overwrite; resuming a finished run changes nothing", "[trainer][resume]") {
  auto st = load_stories();
  train::set_thread_count(1);
  const auto dir = temp_dir("existing");
  auto s = small_run(dir);
  s.steps = 4;
  s.eval_every = 2;
  const auto train_recs = records(s, "train", 200), val_recs = records(s, "validation", 16);
  {
    train::TrainingRun run(s, *st.model, st.tok, train_recs, val_recs);
    REQUIRE(run.run(false).steps == 4);
  }
  std::map<std::string, std::string> before;
  for (const auto& e : fs::directory_iterator(dir)) before[e.path().filename().string()] = file_bytes(e.path());
  auto same_files = [&] {
    std::map<std::string, std::string> now;
    for (const auto& e : fs::directory_iterator(dir)) now[e.path().filename().string()] = file_bytes(e.path());
    return now == before;
  };
  REQUIRE(before.count("checkpoint.safetensors"));
  // a second run into the same folder: refused, naming the folder, nothing written
  {
    train::TrainingRun again(s, *st.model, st.tok, train_recs, val_recs);
    CHECK_THROWS_WITH(again.run(false), Catch::Contains(dir.string()) && Catch::Contains("already holds a training run") &&
                                            Catch::Contains("--resume") && Catch::Contains("--overwrite"));
  }
  CHECK_THROWS_WITH(train::check_out_folder(dir, false, false), Catch::Contains("already holds a training run"));
  CHECK_THROWS_WITH(train::check_out_folder(dir, true, true), Catch::Contains("exclude each other"));
  CHECK_NOTHROW(train::check_out_folder(dir / "fresh", false, false));
  CHECK(same_files());
  // --resume of the finished run: reported as complete, every file left as it was
  {
    train::TrainingRun resumed(s, *st.model, st.tok, train_recs, val_recs);
    const auto r = resumed.run(true);
    CHECK(r.already_complete);
    CHECK(r.steps == 4);
    CHECK(std::isfinite(r.initial_val_loss));
    CHECK(std::isfinite(r.best_val_loss));
  }
  CHECK(same_files());
  // a run killed between its last checkpoint and its summary: resume writes the missing summary
  fs::remove(dir / "summary.json");
  {
    train::TrainingRun resumed(s, *st.model, st.tok, train_recs, val_recs);
    CHECK(resumed.run(true).already_complete);
    const auto summary = nlohmann::json::parse(file_bytes(dir / "summary.json"));
    CHECK(summary["steps"] == 4);
    CHECK(summary["initial_val_loss"].is_number());
    CHECK(summary["final_val_loss"].is_number());
  }
  // a finished run whose saved adapter was truncated or zeroed: it was reported as "a complete run"
  // (exit 0); now an error naming the file, every file left as it was
  for (const char* name : {"adapter.safetensors", "adapter_best.safetensors"}) {
    const std::string good = file_bytes(dir / name);
    for (const std::string& broken : {good.substr(0, good.size() / 2), std::string(good.size(), '\0')}) {
      { std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << broken; }
      std::map<std::string, std::string> now;
      for (const auto& e : fs::directory_iterator(dir)) now[e.path().filename().string()] = file_bytes(e.path());
      train::TrainingRun resumed(s, *st.model, st.tok, train_recs, val_recs);
      INFO(name << ", " << broken.size() << " bytes");
      CHECK_THROWS_WITH(resumed.run(true), Catch::StartsWith((dir / name).string() + ": ") &&
                                               Catch::Contains("is complete (step 4/4) but this saved adapter does not load"));
      std::map<std::string, std::string> after;
      for (const auto& e : fs::directory_iterator(dir)) after[e.path().filename().string()] = file_bytes(e.path());
      CHECK(after == now);
    }
    { std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << good; }
  }
  {
    train::TrainingRun resumed(s, *st.model, st.tok, train_recs, val_recs);
    CHECK(resumed.run(true).already_complete);
  }
  // an interrupted run keeps its best adapter unless a validation improves on it: checked as well
  {
    const auto part = temp_dir("existing_part");
    auto sp = s;
    sp.out = part.string();
    {
      train::TrainingRun first(sp, *st.model, st.tok, train_recs, val_recs);
      first.stop_after_steps = 3;
      REQUIRE(first.run(false).interrupted);
    }
    const std::string best = file_bytes(part / "adapter_best.safetensors");
    { std::ofstream(part / "adapter_best.safetensors", std::ios::binary | std::ios::trunc) << best.substr(0, 100); }
    train::TrainingRun resumed(sp, *st.model, st.tok, train_recs, val_recs);
    CHECK_THROWS_WITH(resumed.run(true), Catch::StartsWith((part / "adapter_best.safetensors").string() + ": ") &&
                                             Catch::Contains("the best adapter of the run in") &&
                                             Catch::Contains("no file was changed"));
    CHECK(file_bytes(part / "adapter_best.safetensors") == best.substr(0, 100));
    fs::remove_all(part);
  }
  // a checkpoint whose step lies beyond the run's last step (was taken as finished)
  {
    auto c = train::load_checkpoint(dir / "checkpoint.safetensors");
    c.state.step = 1'000'000'000'000L;
    train::save_checkpoint(dir / "checkpoint.safetensors", c);
    train::TrainingRun resumed(s, *st.model, st.tok, train_recs, val_recs);
    CHECK_THROWS_WITH(resumed.run(true), Catch::Contains("checkpoint.safetensors: step 1000000000000 is beyond the run's last step 4"));
  }
  // --overwrite replaces the run; nothing of the old one (a loss.png of another format) stays
  std::ofstream(dir / "loss.png") << "old plot";
  {
    train::TrainingRun replace(s, *st.model, st.tok, train_recs, val_recs);
    replace.overwrite = true;
    CHECK(replace.run(false).steps == 4);
  }
  CHECK_FALSE(fs::exists(dir / "loss.png"));
  CHECK(fs::exists(dir / "checkpoint.safetensors"));
  fs::remove_all(dir);
}

TEST_CASE("a run that fails before its first checkpoint leaves no half-written folder", "[trainer][run]") {
  auto st = load_stories();
  train::set_thread_count(1);
  const auto dir = temp_dir("failed_start");
  auto s = small_run(dir / "run");
  const auto train_recs = records(s, "train", 200), val_recs = records(s, "validation", 16);
  // the log path is a folder: the first write after settings.json fails
  fs::create_directories(dir / "run" / "train_log.jsonl" / "blocker");
  {
    train::TrainingRun run(s, *st.model, st.tok, train_recs, val_recs);
    CHECK_THROWS(run.run(false));
  }
  CHECK_FALSE(fs::exists(dir / "run" / "settings.json"));  // was left behind with the log
  CHECK_FALSE(fs::exists(dir / "run" / "adapter_best.safetensors"));
  for (const auto& e : fs::directory_iterator(dir / "run"))  // no temporary file either
    CHECK(e.path().filename() == "train_log.jsonl");
  // validation records that all exceed --cutoff are an error naming --cutoff (the run had no
  // validation and kept the untrained adapter as "best")
  data::Record huge = val_recs.front();
  huge.question = std::string(4000, 'x');
  CHECK_THROWS_WITH(train::TrainingRun(small_run(dir / "cut"), *st.model, st.tok, train_recs, {huge}),
                    Catch::Contains("no validation example fits --cutoff"));
  fs::remove_all(dir);
}

TEST_CASE("fewer than 5 training records without --val-data: an error naming the data and the count", "[trainer][data]") {
  const auto model = test::require_shared("models/stories260K/stories260K.bin");
  const auto dir = temp_dir("few");
  const auto path = dir / "three.jsonl";
  {
    std::ofstream f(path);
    for (int i = 1; i <= 3; ++i)
      f << R"({"question": "Tom has )" << i << R"( apples.", "answer": "#### )" << i << "\"}\n";
  }
  train::TrainSettings s;
  s.model = model.string();
  s.data = {"gsm8k:" + path.string()};
  s.out = (dir / "run").string();
  // the held-out slice was size/5 = 0 records: no validation, "best" = the untrained adapter
  CHECK_THROWS_WITH(train::prepare_inputs(s), Catch::Contains("three.jsonl") && Catch::Contains("3 training record") &&
                                                  Catch::Contains("--val-data"));
  const auto held_out = dir / "held_out.jsonl";  // a file of its own: the training file itself is refused
  fs::copy_file(path, held_out);
  s.val_data = "gsm8k:" + held_out.string();
  CHECK(train::prepare_inputs(s).validation.size() == 3);
  fs::remove_all(dir);
}

TEST_CASE("trainer: --data-seed fixes the built-in problems and the held-out slice across --seed; unset, they follow --seed",
          "[trainer][data]") {
  const auto model = test::require_shared("models/stories260K/stories260K.bin");
  const auto dir = temp_dir("data_seed");
  const auto path = dir / "forty.jsonl";
  {
    std::ofstream f(path);
    for (int i = 1; i <= 40; ++i)
      f << R"({"question": "Tom has )" << i << R"( apples.", "answer": "#### )" << i << "\"}\n";
  }
  auto questions = [](const std::vector<data::Record>& rs) {
    std::vector<std::string> q;
    for (const auto& r : rs) q.push_back(r.question);
    return q;
  };
  auto inputs = [&](bool builtin, std::uint64_t seed, std::optional<std::uint64_t> data_seed) {
    train::TrainSettings s;
    s.model = model.string();
    s.builtin = builtin;
    s.builtin_train = 20;
    s.val_examples = 8;
    if (!builtin) s.data = {"gsm8k:" + path.string()};
    s.seed = seed;
    s.data_seed = data_seed;
    const auto in = train::prepare_inputs(s);
    return std::pair{questions(in.train), questions(in.validation)};
  };
  for (bool builtin : {false, true}) {
    INFO((builtin ? "built-in task" : "held-out slice of a --data file"));
    const auto a = inputs(builtin, 1, std::nullopt), b = inputs(builtin, 2, std::nullopt);
    REQUIRE(a.second.size() == 8);
    CHECK(a.second != b.second);                     // unset: the validation records follow --seed
    CHECK(inputs(builtin, 2, 1) == a);               // --data-seed 1 at --seed 2: --seed 1's records
    CHECK(inputs(builtin, 1, 7) == inputs(builtin, 2, 7));
  }
  // written to the settings only when set; read back; a resume compares it with the run's --seed when unset
  train::TrainSettings s;
  CHECK_FALSE(nlohmann::json(s).contains("data-seed"));
  s.data_seed = 5;
  const nlohmann::json j = s;
  CHECK(j.at("data-seed") == 5);
  CHECK(j.get<train::TrainSettings>().data_seed == std::optional<std::uint64_t>(5));
  CHECK_THROWS_WITH(nlohmann::json({{"data-seed", -1}}).get<train::TrainSettings>(), Catch::Contains("data-seed"));
  fs::remove_all(dir);
}

TEST_CASE("gradient accumulation: 2 micro-batches of 4 examples train and log what one batch of 8 does", "[trainer][run]") {
  auto st = load_stories();
  train::set_thread_count(1);
  const auto dir_one = temp_dir("accum_one"), dir_two = temp_dir("accum_two");
  auto s1 = small_run(dir_one);
  s1.steps = 3;
  s1.log_every = 1;
  s1.clip = 0;  // the clip would hide a difference in the gradient's size
  auto s2 = s1;
  s2.out = dir_two.string();
  s2.batch = 4;
  s2.grad_accum = 2;  // the same 8 examples a step, in the same order
  const auto train_recs = records(s1, "train", 200), val_recs = records(s1, "validation", 16);
  train::TrainingRun one(s1, *st.model, st.tok, train_recs, val_recs);
  one.run(false);
  train::TrainingRun two(s2, *st.model, st.tok, train_recs, val_recs);
  two.run(false);
  const auto log1 = log_lines_without_timing(dir_one / "train_log.jsonl");
  const auto log2 = log_lines_without_timing(dir_two / "train_log.jsonl");
  REQUIRE(log1.size() == log2.size());
  // Float sums in another order: a few hundred ulps. Averaging the two micro-batches' own means instead
  // was 6e-4 away at step 1 (4.6766 against 4.6795).
  const double tol = test::eps_tol(256.0f);
  int compared = 0;
  for (std::size_t i = 0; i < log1.size(); ++i)
    for (const char* key : {"loss", "grad_norm", "val_loss"})
      if (log1[i].contains(key) && log1[i][key].is_number()) {
        const double a = log1[i][key].get<double>(), b = log2[i].at(key).get<double>();
        INFO("line " << i + 1 << " " << key << ": batch 8 " << a << ", 2 x 4 " << b);
        CHECK(std::abs(a - b) <= tol * std::abs(a));
        ++compared;
      }
  CHECK(compared >= 6);
  fs::remove_all(dir_one);
  fs::remove_all(dir_two);
}

TEST_CASE("a step skipped at the last step still ends the run: final validation, adapter and checkpoint of that step", "[trainer][nan]") {
  auto st = load_stories();
  train::set_thread_count(1);
  const auto dir = temp_dir("nan_last");
  auto s = small_run(dir);  // 12 steps, validations at 4, 8, 12
  s.nan_policy = "skip";
  s.log_every = 1;
  train::TrainingRun run(s, *st.model, st.tok, records(s, "train", 200), records(s, "validation", 16));
  run.after_backward = [](long step, train::AdapterSet& set) {
    if (step == 11) set.units()[0]->grads()[0] = std::numeric_limits<float>::quiet_NaN();  // the 12th step
  };
  const auto r = run.run(false);
  CHECK(r.steps == 12);
  CHECK(r.skipped_steps == 1);
  CHECK_FALSE(r.interrupted);
  CHECK(train::load_checkpoint(dir / "checkpoint.safetensors").state.step == 12);
  bool validated_at_12 = false;
  for (const auto& line : log_lines_without_timing(dir / "train_log.jsonl"))
    if (line.value("step", -1) == 12 && line.contains("val_loss")) validated_at_12 = true;
  CHECK(validated_at_12);
  // the adapter saved is the one trained through step 11, the run's last good update
  const auto saved = train::load_adapter(dir / "adapter.safetensors", st.model->config()).gather_params();
  const auto trained = run.adapters().gather_params();
  REQUIRE(saved.size() == trained.size());
  CHECK(std::memcmp(saved.data(), trained.data(), saved.size() * sizeof(float)) == 0);
  // and a resume finds the run complete
  train::TrainingRun again(s, *st.model, st.tok, records(s, "train", 200), records(s, "validation", 16));
  CHECK(again.run(true).already_complete);
  fs::remove_all(dir);
}

TEST_CASE("NaN gradients: skip policy drops the step, stop policy keeps the last good adapter", "[trainer][nan]") {
  auto st = load_stories();
  train::set_thread_count(1);
  const auto poison = [](long step, train::AdapterSet& set) {
    if (step == 5) set.units()[0]->grads()[0] = std::numeric_limits<float>::quiet_NaN();
  };
  {
    const auto dir = temp_dir("nan_skip");
    auto s = small_run(dir);
    s.nan_policy = "skip";
    train::TrainingRun run(s, *st.model, st.tok, records(s, "train", 200), records(s, "validation", 16));
    run.after_backward = poison;
    const auto r = run.run(false);
    CHECK(r.steps == 12);
    CHECK(r.skipped_steps == 1);
    CHECK_FALSE(r.stopped_bad);
    CHECK(run.adapters().params_plausible());
    CHECK(file_bytes(dir / "train_log.jsonl").find("\"nonfinite\"") != std::string::npos);
    fs::remove_all(dir);
  }
  {
    const auto dir = temp_dir("nan_stop");
    auto s = small_run(dir);
    s.nan_policy = "stop";
    train::TrainingRun run(s, *st.model, st.tok, records(s, "train", 200), records(s, "validation", 16));
    std::string saved_at_4;  // the last save before the bad step (validation at step 4)
    run.after_backward = [&](long step, train::AdapterSet& set) {
      if (step == 5) saved_at_4 = file_bytes(dir / "adapter.safetensors");
      poison(step, set);
    };
    const auto r = run.run(false);
    CHECK(r.stopped_bad);
    CHECK_THAT(r.stop_reason, Catch::Contains("--nan-policy stop"));
    CHECK(r.steps == 5);
    REQUIRE_FALSE(saved_at_4.empty());
    CHECK(file_bytes(dir / "adapter.safetensors") == saved_at_4);
    auto loaded = train::load_adapter(dir / "adapter.safetensors", st.model->config());
    CHECK(loaded.params_plausible());
    CHECK(train::load_checkpoint(dir / "checkpoint.safetensors").state.step == 4);
    fs::remove_all(dir);
  }
  {  // skip policy, a NaN in every step from step 6 on: stops after --max-bad-steps of them
    const auto dir = temp_dir("nan_many");
    auto s = small_run(dir);
    s.nan_policy = "skip";
    s.max_bad_steps = 3;
    train::TrainingRun run(s, *st.model, st.tok, records(s, "train", 200), records(s, "validation", 16));
    run.after_backward = [](long step, train::AdapterSet& set) {
      if (step >= 5) set.units()[0]->grads()[0] = std::numeric_limits<float>::quiet_NaN();
    };
    const auto r = run.run(false);
    CHECK(r.stopped_bad);
    CHECK_THAT(r.stop_reason, Catch::Contains("3 consecutive non-finite steps"));
    CHECK(r.skipped_steps == 3);
    CHECK_NOTHROW(train::load_adapter(dir / "adapter.safetensors", st.model->config()));
    fs::remove_all(dir);
  }
  {  // a step that throws the parameters far out (finite, beyond any weight): stops, keeps the last good files
    const auto dir = temp_dir("diverged");
    auto s = small_run(dir);
    s.lr = 1e30;
    train::TrainingRun run(s, *st.model, st.tok, records(s, "train", 200), records(s, "validation", 16));
    const auto r = run.run(false);
    CHECK(r.stopped_bad);
    CHECK(r.steps == 0);
    CHECK_THAT(r.stop_reason, Catch::Contains("parameters diverged after step 1") && Catch::Contains("largest |p|"));
    CHECK_NOTHROW(train::load_adapter(dir / "adapter.safetensors", st.model->config()));
    CHECK(train::load_checkpoint(dir / "checkpoint.safetensors").state.step == 0);
    fs::remove_all(dir);
  }
}

TEST_CASE("plots: a panel without a finite point is an empty frame that says so, not a gnuplot failure", "[trainer][plot]") {
  util::PlotSeries empty{"nothing", {}, {}, {}};
  util::PlotSeries nan_only{"only NaN", {1.0, 2.0}, {std::nan(""), std::nan("")}, {}};
  util::PlotSeries line{"line", {1.0, 2.0, 3.0}, {0.5, 0.25, 0.125}, {}};
  const util::PlotPanel blank{"blank", "x", "y", {empty, nan_only}};
  const util::PlotPanel drawn{"drawn", "x", "y", {empty, line}};
  const std::string script = util::gnuplot_script({blank, drawn});
  CHECK(script.find("no data") != std::string::npos);
  // the drawn panel plots its one series with points, and neither series without
  CHECK(script.find("$d1_1 using 1:2") != std::string::npos);
  CHECK(script.find("$d1_0 using") == std::string::npos);
  CHECK(script.find("$d0_0 using") == std::string::npos);
  CHECK(script.find("$d0_1 using") == std::string::npos);
  if (!util::program_in_path("gnuplot")) {
    WARN("gnuplot not installed: the rendering half of this test did not run");
    return;
  }
  const hyplora::test::TempDir tmp("hyplora_test_plot");
  for (const auto& panels : {std::vector<util::PlotPanel>{blank}, std::vector<util::PlotPanel>{blank, drawn}}) {
    const auto r = util::render_plot(tmp.path / "p.png", panels);
    INFO(r.message);
    CHECK(r.rendered);
    std::ifstream in(tmp.path / "p.png", std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    CHECK(std::string(magic + 1, 3) == "PNG");
  }
}
