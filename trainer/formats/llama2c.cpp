#include "formats/llama2c.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include "formats/atomic_file.hpp"
#include "formats/format_error.hpp"
#include "formats/weight_check.hpp"
#include "model/llama.hpp"

namespace hyplora::llm {

namespace {

constexpr std::uint64_t kHeaderBytes = 7 * sizeof(std::int32_t);

[[noreturn]] void fail(const std::filesystem::path& p, std::uint64_t offset, const std::string& problem) {
  throw formats::FormatError(p.string(), offset, problem);
}

std::uint64_t freq_cis_count(const ModelConfig& c) {
  return static_cast<std::uint64_t>(c.seq_len) * (c.head_dim() / 2);
}

/// Floats of every weight tensor (the classifier only when it is not shared), as allocate() sizes them.
std::uint64_t weight_count(const ModelConfig& c) {
  const std::uint64_t d = std::uint64_t(c.dim), h = std::uint64_t(c.hidden_dim), L = std::uint64_t(c.n_layers),
                      V = std::uint64_t(c.vocab_size), kv = std::uint64_t(c.kv_dim());
  return V * d + L * d + 2 * L * d * d + 2 * L * kv * d + L * d + 3 * L * h * d + d + (c.shared_classifier ? 0 : V * d);
}

}  // namespace

ModelWeights read_llama2c(const std::filesystem::path& path) {
  std::error_code ec;
  const auto file_size = std::filesystem::file_size(path, ec);
  if (ec) throw formats::FormatError(path.string(), "cannot read llama2.c checkpoint: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw formats::FormatError(path.string(), "cannot open llama2.c checkpoint");
  if (file_size < kHeaderBytes)
    fail(path, 0, "file of " + std::to_string(file_size) + " bytes is shorter than the 28-byte llama2.c header");
  std::int32_t h[7];
  in.read(reinterpret_cast<char*>(h), sizeof h);
  if (!in) fail(path, 0, "cannot read the header");
  if (static_cast<std::uint32_t>(h[0]) == 0x616b3432u)
    fail(path, 0, "magic 'ak42': a llama2.c version-1/2 export, not the legacy (version 0) format run.c reads");
  ModelConfig c;
  c.dim = h[0]; c.hidden_dim = h[1]; c.n_layers = h[2]; c.n_heads = h[3]; c.n_kv_heads = h[4];
  c.shared_classifier = h[5] > 0;
  c.vocab_size = h[5] == INT32_MIN ? 0 : std::abs(h[5]);
  c.seq_len = h[6];
  try {
    validate_config(c, "header");
  } catch (const std::invalid_argument& e) {
    fail(path, 0, std::string("not a llama2.c checkpoint: ") + e.what());
  }
  // The size the header implies, computed before anything is allocated: a 28-byte header may
  // claim a 7B model (fuzzing found a 92-byte file that made the reader zero-fill 26 GB).
  const std::uint64_t expected = kHeaderBytes + (weight_count(c) + 2 * freq_cis_count(c)) * sizeof(float);
  if (expected != file_size)
    fail(path, 0, "header (dim " + std::to_string(c.dim) + ", hidden " + std::to_string(c.hidden_dim) + ", layers " +
                      std::to_string(c.n_layers) + ", heads " + std::to_string(c.n_heads) + "/" +
                      std::to_string(c.n_kv_heads) + ", vocab " + std::to_string(h[5]) + ", seq " +
                      std::to_string(c.seq_len) + ") implies " + std::to_string(expected) + " bytes but the file has " +
                      std::to_string(file_size));
  ModelWeights w;
  w.allocate(c);
  std::uint64_t offset = kHeaderBytes;
  auto read_tensor = [&](const char* name, std::vector<float>& v) {
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
    if (!in) fail(path, offset, std::string("cannot read tensor ") + name);
    for (std::size_t i = 0; i < v.size(); ++i)
      if (const auto problem = formats::weight_value_problem(v[i]); !problem.empty())
        fail(path, offset + i * sizeof(float), std::string("tensor ") + name + "[" + std::to_string(i) + "] is " + problem);
    offset += v.size() * sizeof(float);
  };
  // file order: everything up to rms_final, then the freq_cis tables, then the classifier
  read_tensor("token_embedding", w.token_embedding);
  read_tensor("rms_att", w.rms_att);
  read_tensor("wq", w.wq);
  read_tensor("wk", w.wk);
  read_tensor("wv", w.wv);
  read_tensor("wo", w.wo);
  read_tensor("rms_ffn", w.rms_ffn);
  read_tensor("w1", w.w1);
  read_tensor("w2", w.w2);
  read_tensor("w3", w.w3);
  read_tensor("rms_final", w.rms_final);
  const std::uint64_t skip = 2 * freq_cis_count(c) * sizeof(float);
  in.seekg(static_cast<std::streamoff>(skip), std::ios::cur);
  offset += skip;
  if (!c.shared_classifier) read_tensor("classifier", w.classifier);
  return w;
}

void write_llama2c(const ModelWeights& w, const std::filesystem::path& path) {
  validate_weight_shapes(w, ("write_llama2c " + path.string()).c_str());
  const auto& c = w.config;
  if (c.rope_theta != 10000.0f || c.norm_eps != 1e-5f)
    throw std::invalid_argument(path.string() + ": the llama2.c format fixes rope_theta 10000 and norm eps 1e-5; "
                                "this model uses theta " + std::to_string(c.rope_theta) + ", eps " +
                                std::to_string(c.norm_eps));
  w.for_each_tensor([&](const char* name, const std::vector<float>& v) {
    for (std::size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]))
        throw std::invalid_argument(path.string() + ": refusing to write tensor " + name + "[" + std::to_string(i) +
                                    "]: not finite");
  });
  formats::AtomicFileWriter out(path);
  const std::int32_t h[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                             c.shared_classifier ? c.vocab_size : -c.vocab_size, c.seq_len};
  out.write(h, sizeof h);
  auto put = [&](const std::vector<float>& v) { out.write(v.data(), v.size() * sizeof(float)); };
  put(w.token_embedding); put(w.rms_att); put(w.wq); put(w.wk); put(w.wv); put(w.wo); put(w.rms_ffn);
  put(w.w1); put(w.w2); put(w.w3); put(w.rms_final);
  const int hs = c.head_dim(), half = hs / 2;
  std::vector<float> re(freq_cis_count(c)), im(re.size());
  // as llama2.c's export (model.py precompute_freqs_cis, float32 tensors): every intermediate rounded
  // to float. Against stories260K.bin's tables: 193 of 2048 differ, by 1 ulp (torch's float cos/sin);
  // computed in double it was 1170, by up to 2.3e-6. run.c does not read these tables.
  for (int t = 0; t < c.seq_len; ++t)
    for (int p = 0; p < half; ++p) {
      const float exponent = float(2 * p) / float(hs);
      const float freq = 1.0f / float(std::pow(10000.0, double(exponent)));
      const float angle = float(t) * freq;
      re[static_cast<std::size_t>(t) * half + p] = static_cast<float>(std::cos(double(angle)));
      im[static_cast<std::size_t>(t) * half + p] = static_cast<float>(std::sin(double(angle)));
    }
  put(re); put(im);
  if (!c.shared_classifier) put(w.classifier);
  out.commit();
}

}  // namespace hyplora::llm
