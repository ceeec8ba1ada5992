// The Llama runtime against llama2.c run.c (shared reference outputs), the batched path against
// the KV-cache path, llama2.c checkpoint reading/writing and validation, sampling as run.c.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <vector>

#include "formats/format_error.hpp"
#include "formats/llama2c.hpp"
#include "model/generator.hpp"
#include "model/llama.hpp"
#include "model/random_init.hpp"
#include "model/sampler.hpp"
#include "support.hpp"

using namespace hyplora::llm;
using hyplora::test::require_shared;

namespace {

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

/// Float32 tolerance for logits after L layers: a dot product of length n (at most the hidden
/// width) accumulates n roundings of relative size eps, which add up like a random walk,
/// sqrt(n) eps; the residual stream passes through 2 L such products and the classifier one
/// more, so two correct implementations that sum in different orders differ by about
/// (2 L + 1) sqrt(hidden) eps max|logit|.
float logit_tolerance(const ModelConfig& c, float max_abs_logit) {
  return float(2 * c.n_layers + 1) * std::sqrt(float(c.hidden_dim)) * std::numeric_limits<float>::epsilon() *
         max_abs_logit;
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("hyplora_test_model_" + std::to_string(::getpid()) + "_" + name);
}

/// Test hook: Y += X M^T with a fixed small dense M (d_out x d_in).
struct DenseHook : LinearAdapterHook {
  int d_in, d_out;
  std::vector<float> M;
  DenseHook(int in, int out, unsigned seed) : d_in(in), d_out(out), M(std::size_t(in) * out) {
    for (std::size_t i = 0; i < M.size(); ++i) M[i] = 0.05f * std::sin(float(i * 7 + seed));
  }
  void forward(const float* X, float* Y, long n, bool) override {
    for (long r = 0; r < n; ++r)
      for (int o = 0; o < d_out; ++o) {
        float s = 0;
        for (int i = 0; i < d_in; ++i) s += M[std::size_t(o) * d_in + i] * X[r * d_in + i];
        Y[r * d_out + o] += s;
      }
  }
  void backward(const float*, const float*, float*, long) override {}
};

}  // namespace

TEST_CASE("stories260K: logits at every position match llama2.c run.c", "[model][reference]") {
  const auto ref = read_json(require_shared("reference/stories260K_logits.json"));
  LlamaModel model(read_llama2c(require_shared("models/stories260K/stories260K.bin")));
  const auto ids = ref["ids"].get<std::vector<int>>();
  const auto& logits = ref["logits"];
  REQUIRE(logits.size() == ids.size());
  const int V = model.config().vocab_size;
  float max_abs = 0, max_err = 0;
  for (const auto& row : logits)
    for (const auto& v : row) max_abs = std::max(max_abs, std::abs(v.get<float>()));
  // one criterion for every logit: the float forward's rounding (logit_tolerance, scaled by the
  // largest logit) plus half a unit of the 6th significant digit the reference was printed with
  const float tol = logit_tolerance(model.config(), max_abs);
  for (std::size_t pos = 0; pos < ids.size(); ++pos) {
    const float* out = model.forward(ids[pos], int(pos));
    REQUIRE(logits[pos].size() == std::size_t(V));
    for (int j = 0; j < V; ++j) {
      const float r = logits[pos][j].get<float>();
      const float err = std::abs(out[j] - r);
      max_err = std::max(max_err, err - 5e-6f * std::abs(r));
      if (err > tol + 5e-6f * std::abs(r)) {
        FAIL_CHECK("position " << pos << " token " << j << ": " << out[j] << " vs run.c " << r);
        return;
      }
    }
  }
  INFO("max |logit| " << max_abs << ", max error beyond the printing " << max_err << ", tolerance " << tol);
  CHECK(max_err <= tol);
  std::printf("stories260K logits: max error beyond the printed digits %.3g over %zu positions (tolerance %.3g)\n", max_err, ids.size(), tol);
}

TEST_CASE("stories260K: batched forward equals the KV-cache path", "[model][batched]") {
  const auto ref = read_json(require_shared("reference/stories260K_logits.json"));
  LlamaModel model(read_llama2c(require_shared("models/stories260K/stories260K.bin")));
  const auto ids = ref["ids"].get<std::vector<int>>();
  const int T = int(ids.size()), V = model.config().vocab_size, B = 2;
  // second sequence: the same tokens reversed (rows are independent sequences)
  std::vector<int> tokens(ids);
  tokens.insert(tokens.end(), ids.rbegin(), ids.rend());
  std::vector<float> batched(std::size_t(B) * T * V);
  model.forward_logits(tokens.data(), B, T, batched.data());
  float max_abs = 0, max_err = 0;
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      const float* kv = model.forward(tokens[b * T + t], t);
      for (int j = 0; j < V; ++j) {
        max_abs = std::max(max_abs, std::abs(kv[j]));
        max_err = std::max(max_err, std::abs(kv[j] - batched[(std::size_t(b) * T + t) * V + j]));
      }
    }
  const float tol = logit_tolerance(model.config(), max_abs);
  INFO("max error " << max_err << " tolerance " << tol);
  CHECK(max_err <= tol);
  std::printf("batched vs KV cache: max abs error %.3g (tolerance %.3g)\n", max_err, tol);

  SECTION("evaluate_loss agrees with the logits, and masks select tokens") {
    std::vector<int> targets(tokens.size());
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) targets[i] = tokens[i + 1];
    targets.back() = 0;
    std::vector<float> mask(tokens.size(), 0.0f);
    for (int t = 3; t < 10; ++t) mask[t] = 1.0f;
    mask[T + 5] = 2.0f;
    double num = 0, den = 0;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (mask[i] == 0) continue;
      const float* z = batched.data() + i * V;
      const double mx = *std::max_element(z, z + V);
      double s = 0;
      for (int j = 0; j < V; ++j) s += std::exp(double(z[j]) - mx);
      num += mask[i] * (mx + std::log(s) - z[targets[i]]);
      den += mask[i];
    }
    const float loss = model.evaluate_loss(tokens.data(), targets.data(), mask.data(), B, T);
    // float log-sum-exp over V terms: each term and the sum round within ~(1 + log2 V) float eps
    const double lse_tol = 8 * (1 + std::log2(double(V))) * std::numeric_limits<float>::epsilon();
    CHECK(std::abs(loss - num / den) <= lse_tol * std::abs(num / den));
  }
}

TEST_CASE("stories260K: greedy generations match llama2.c run.c character for character", "[model][reference]") {
  const auto ref = read_json(require_shared("reference/stories260K_greedy.json"));
  LlamaModel model(read_llama2c(require_shared("models/stories260K/stories260K.bin")));
  const auto tok = Tokenizer::load_llama2c(require_shared("models/stories260K/tok512.bin"), model.config().vocab_size);
  REQUIRE(ref["cases"].size() > 0);
  for (const auto& c : ref["cases"]) {
    REQUIRE(c["temperature"].get<double>() == 0.0);
    Sampler sampler(model.config().vocab_size, 0.0f, 0.9f, 42);
    const auto g = generate(model, tok, c["prompt"].get<std::string>(), c["steps"].get<int>(), sampler);
    INFO("prompt '" << c["prompt"].get<std::string>() << "'");
    CHECK(g.text == c["text"].get<std::string>());
    CHECK(g.positions == c["steps"].get<int>());
  }
}

TEST_CASE("adapter hooks: the KV-cache and batched paths apply them identically", "[model][hooks]") {
  ModelConfig c = named_shape("stories260K");
  c.n_layers = 2;
  c.seq_len = 16;
  LlamaModel model(random_weights(c, 7, 0.1f));
  const int d = c.dim, kv = c.kv_dim(), hid = c.hidden_dim, V = c.vocab_size, T = 9;
  std::vector<int> tokens(T);
  for (int t = 0; t < T; ++t) tokens[t] = (t * 37 + 5) % V;
  std::vector<float> plain(std::size_t(T) * V), hooked(plain.size());
  model.forward_logits(tokens.data(), 1, T, plain.data());
  DenseHook q(d, d, 1), k(d, kv, 2), v(d, kv, 3), o(d, d, 4), gate(d, hid, 5), up(d, hid, 6), down(hid, d, 7);
  model.attach(1, Module::q, &q); model.attach(1, Module::k, &k); model.attach(1, Module::v, &v);
  model.attach(0, Module::o, &o); model.attach(0, Module::gate, &gate); model.attach(1, Module::up, &up);
  model.attach(0, Module::down, &down);
  model.forward_logits(tokens.data(), 1, T, hooked.data());
  float max_abs = 0, max_err = 0, max_change = 0;
  for (int t = 0; t < T; ++t) {
    const float* z = model.forward(tokens[t], t);
    for (int j = 0; j < V; ++j) {
      max_abs = std::max(max_abs, std::abs(z[j]));
      max_err = std::max(max_err, std::abs(z[j] - hooked[std::size_t(t) * V + j]));
      max_change = std::max(max_change, std::abs(hooked[std::size_t(t) * V + j] - plain[std::size_t(t) * V + j]));
    }
  }
  const float tol = logit_tolerance(c, max_abs);
  CHECK(max_err <= tol);
  CHECK(max_change > 100 * tol);  // the hooks did change the output
  model.detach_all();
  std::vector<float> again(plain.size());
  model.forward_logits(tokens.data(), 1, T, again.data());
  CHECK(again == plain);
  CHECK_THROWS_AS(model.attach(2, Module::q, &q), std::out_of_range);
}

TEST_CASE("llama2.c checkpoints: write then read gives the same weights and logits", "[model][llama2c]") {
  for (bool shared : {true, false}) {
    ModelConfig c = named_shape("stories260K");
    c.n_layers = 2;
    c.seq_len = 32;
    c.shared_classifier = shared;
    const ModelWeights w = random_weights(c, 11);
    const auto path = temp_path(shared ? "tied.bin" : "untied.bin");
    write_llama2c(w, path);
    const ModelWeights r = read_llama2c(path);
    CHECK(r.config.dim == c.dim);
    CHECK(r.config.n_kv_heads == c.n_kv_heads);
    CHECK(r.config.shared_classifier == shared);
    CHECK(r.token_embedding == w.token_embedding);
    CHECK(r.wk == w.wk);
    CHECK(r.w2 == w.w2);
    CHECK(r.rms_final == w.rms_final);
    CHECK(r.classifier == w.classifier);
    LlamaModel a(w), b(r);
    const float* za = a.forward(3, 0);
    std::vector<float> first(za, za + c.vocab_size);
    const float* zb = b.forward(3, 0);
    CHECK(std::equal(first.begin(), first.end(), zb));
    std::filesystem::remove(path);
  }
}

TEST_CASE("llama2.c checkpoints: bad files give errors naming file, offset and problem", "[model][llama2c]") {
  ModelConfig c = named_shape("stories260K");
  c.n_layers = 1;
  c.seq_len = 8;
  const auto good = temp_path("good.bin");
  write_llama2c(random_weights(c, 3), good);
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto bad = temp_path("bad.bin");
  auto write_bad = [&](const std::string& b) { std::ofstream(bad, std::ios::binary).write(b.data(), std::streamsize(b.size())); };
  auto message_of = [&]() -> std::string {
    try {
      read_llama2c(bad);
    } catch (const hyplora::formats::FormatError& e) {
      return e.what();
    }
    return "no error";
  };
  SECTION("truncated") {
    write_bad(bytes.substr(0, bytes.size() - 4));
    const auto m = message_of();
    CHECK(m.find(bad.string()) != std::string::npos);
    CHECK(m.find("implies") != std::string::npos);
  }
  SECTION("shorter than the header") {
    write_bad(bytes.substr(0, 10));
    CHECK(message_of().find("header") != std::string::npos);
  }
  SECTION("insane header") {
    std::string b = bytes;
    const std::int32_t heads = 7;  // 64 % 7 != 0
    std::memcpy(b.data() + 12, &heads, 4);
    write_bad(b);
    CHECK(message_of().find("n_heads") != std::string::npos);
  }
  SECTION("NaN weight") {
    std::string b = bytes;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::size_t offset = 28 + 4 * (std::size_t(c.vocab_size) * c.dim + 5);  // rms_att[5]
    std::memcpy(b.data() + offset, &nan, 4);
    write_bad(b);
    const auto m = message_of();
    CHECK(m.find("rms_att[5]") != std::string::npos);
    CHECK(m.find("offset " + std::to_string(offset)) != std::string::npos);
  }
  SECTION("missing file") {
    CHECK_THROWS_AS(read_llama2c(temp_path("does_not_exist.bin")), std::runtime_error);
  }
  std::filesystem::remove(good);
  std::filesystem::remove(bad);
}

TEST_CASE("named shapes and seeded random weights", "[model][init]") {
  const auto c = named_shape("stories15M");
  CHECK(c.dim == 288);
  CHECK(c.n_layers == 6);
  CHECK(c.n_heads == 6);
  CHECK(c.n_kv_heads == 6);
  CHECK(c.hidden_dim == 768);
  CHECK(c.vocab_size == 32000);
  CHECK(c.seq_len == 256);
  CHECK_THROWS_AS(named_shape("stories1B"), std::invalid_argument);
  auto small = named_shape("stories260K");
  const auto a = random_weights(small, 5), b = random_weights(small, 5), d = random_weights(small, 6);
  CHECK(a.wq == b.wq);
  CHECK(a.wq != d.wq);
  // N(0, 0.02^2): the sample standard deviation of the embedding is within a few percent
  double ss = 0;
  for (float x : a.token_embedding) ss += double(x) * x;
  CHECK(std::abs(std::sqrt(ss / a.token_embedding.size()) - 0.02) < 0.02 * 0.05);
}

TEST_CASE("model rejects bad shapes and inputs", "[model][validation]") {
  ModelWeights w = random_weights(named_shape("stories260K"), 1);
  w.wq.pop_back();
  CHECK_THROWS_AS(LlamaModel(w), std::invalid_argument);
  LlamaModel m(random_weights(named_shape("stories260K"), 1));
  CHECK_THROWS_AS(m.forward(512, 0), std::out_of_range);
  CHECK_THROWS_AS(m.forward(1, 512), std::out_of_range);
  std::vector<int> toks = {1, 2, 600}, tg = {2, 3, 4};
  std::vector<float> out(3 * 512);
  CHECK_THROWS_AS(m.forward_logits(toks.data(), 1, 3, out.data()), std::out_of_range);
  toks[2] = 5;
  tg[1] = -1;
  CHECK_THROWS_AS(m.evaluate_loss(toks.data(), tg.data(), nullptr, 1, 3), std::out_of_range);
  std::vector<float> mask = {1, 0, 1};
  CHECK(std::isfinite(m.evaluate_loss(toks.data(), tg.data(), mask.data(), 1, 3)));  // masked rows may hold any target
  CHECK_THROWS_AS(m.forward_logits(toks.data(), 1, 513, out.data()), std::invalid_argument);
}

TEST_CASE("a batch whose activations cannot fit is refused before anything is allocated", "[model][validation]") {
  const auto c = named_shape("stories260K");
  // the estimate holds at least the residual stream, (L + 1) x B x T x dim values, and grows with B
  const int T = 256;
  const std::size_t one = LlamaModel::activation_bytes(c, 1, T), many = LlamaModel::activation_bytes(c, 64, T);
  CHECK(one >= sizeof(float) * std::size_t(c.n_layers + 1) * T * std::size_t(c.dim));
  CHECK(many > 32 * one);
  if (available_memory_bytes() == 0) {
    WARN("/proc/meminfo has no MemAvailable here: the refusal is not checked");
    return;
  }
  LlamaModel m(random_weights(c, 1));
  // 2^26 sequences of 256 tokens: about a petabyte of activations, refused without allocating them (this
  // test would be killed or take minutes if it tried)
  const int B = 1 << 26;
  REQUIRE(LlamaModel::activation_bytes(c, B, T) > (std::size_t(1) << 48));
  try {
    m.reserve(B, T);
    FAIL("reserve(2^26, 256) did not throw");
  } catch (const ActivationMemoryError& e) {
    const std::string what = e.what();
    CHECK(what.find("67108864 x 256 tokens") != std::string::npos);
    CHECK(what.find("GiB for its activations") != std::string::npos);
    CHECK(what.find("MemAvailable") != std::string::npos);
  }
  // the model still works at a shape that fits
  std::vector<int> toks = {1, 2, 3};
  std::vector<float> out(3 * 512);
  m.forward_logits(toks.data(), 1, 3, out.data());
  CHECK(std::isfinite(out[0]));
}

TEST_CASE("sampling as run.c", "[model][sampler]") {
  const std::vector<float> p = {0.1f, 0.5f, 0.3f, 0.5f};
  CHECK(Sampler::argmax(p.data(), 4) == 1);  // first maximum wins
  // sample_mult: cdf 0.1, 0.6, 0.9, 1.4
  CHECK(Sampler::sample_mult(p.data(), 4, 0.05f) == 0);
  CHECK(Sampler::sample_mult(p.data(), 4, 0.65f) == 2);
  CHECK(Sampler::sample_mult(p.data(), 4, 2.0f) == 3);
  // top-p 0.7 over {0.5, 0.3, 0.1, 0.1}: sorted prefix mass 0.5, 0.8 > 0.7 -> keep two, r = coin * 0.8
  Sampler s(4, 1.0f, 0.7f, 1);
  const std::vector<float> q = {0.1f, 0.3f, 0.1f, 0.5f};
  CHECK(s.sample_topp(q.data(), 0.5f) == 3);   // r = 0.4 < 0.5
  CHECK(s.sample_topp(q.data(), 0.7f) == 1);   // r = 0.56
  CHECK(s.sample_topp(q.data(), 0.99f) == 1);  // never beyond the kept prefix
  // xorshift*: same seed, same stream; values in [0, 1)
  Sampler a(4, 1.0f, 0.9f, 1234), b(4, 1.0f, 0.9f, 1234);
  for (int i = 0; i < 100; ++i) {
    const float x = a.random_f32();
    CHECK(x == b.random_f32());
    CHECK((x >= 0.0f && x < 1.0f));
  }
  CHECK_THROWS_AS(Sampler(4, -1.0f, 0.9f, 1), std::invalid_argument);
  // a temperature so small that logit / T overflows: greedy (it read probindex_[-1] under top-p)
  for (const float topp : {0.9f, 1.0f}) {
    Sampler tiny(4, 1e-38f, topp, 7);
    for (int i = 0; i < 5; ++i) {
      std::vector<float> overflowing = {10.0f, 30.0f, -20.0f, 25.0f};  // 30 / 1e-38 = inf
      CHECK(tiny.sample(overflowing.data()) == 1);
      std::vector<float> finite = {1.0f, 3.0f, -2.0f, 2.5f};  // 3e38: finite, all mass on the maximum
      CHECK(tiny.sample(finite.data()) == 1);
    }
  }
  // top-p over probabilities none of which reaches the cutoff (NaN): the argmax, not index -1
  const std::vector<float> nan_p(4, std::numeric_limits<float>::quiet_NaN());
  CHECK(s.sample_topp(nan_p.data(), 0.5f) == Sampler::argmax(nan_p.data(), 4));
  // NaN below the cutoff beside real candidates: the candidates, as run.c
  const std::vector<float> mixed = {std::numeric_limits<float>::quiet_NaN(), 0.7f, 0.3f, 0.0f};
  CHECK(s.sample_topp(mixed.data(), 0.1f) == 1);
}
