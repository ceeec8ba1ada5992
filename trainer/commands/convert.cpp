// hyplora convert: a llama2.c checkpoint (+ its tokenizer.bin) to a GGUF v3 file.
//   hyplora convert --model stories260K.bin --tokenizer tok512.bin --out stories260K.gguf [--f16] [--name N]
// The GGUF gets llama.* metadata, the tokenizer as tokenizer.ggml.*, and the weights with q/k in
// the llama2.c layout (what llama.cpp expects for "llama"); written atomically. For stories260K
// the output is byte-identical to the GGUF ggml's own writer produces.
#include <cctype>
#include <iostream>
#include <optional>
#include <string>

#include "commands/registry.hpp"
#include "formats/gguf.hpp"
#include "formats/llama2c.hpp"
#include "model/load_model.hpp"
#include "tokenizer/tokenizer.hpp"

namespace {

struct ConvertArgs {
  std::string model, tokenizer, out, name;
  bool f16 = false;
};
ConvertArgs args;

/// Same file (after following links and "..")? Compares existing files by identity, others by path.
bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::error_code ec;
  if (std::filesystem::exists(a, ec) && std::filesystem::exists(b, ec)) return std::filesystem::equivalent(a, b, ec);
  return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec);
}

int run_convert() {
  using namespace hyplora;
  if (same_file(args.out, args.model))
    throw std::invalid_argument("convert: --out " + args.out + " is the --model file itself; write the GGUF to another file");
  if (!args.tokenizer.empty() && same_file(args.out, args.tokenizer))
    throw std::invalid_argument("convert: --out " + args.out + " is the --tokenizer file itself; write the GGUF to another file");
  if (std::filesystem::is_directory(args.out))
    throw std::invalid_argument("convert: --out " + args.out + " is a folder; give the GGUF file name");
  std::string ext = std::filesystem::path(args.model).extension().string();
  for (auto& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  if (llm::is_gguf_file(args.model) || ext == ".gguf")
    throw std::invalid_argument("convert: --model " + args.model + (llm::is_gguf_file(args.model) ? " is a GGUF file" : " is named .gguf") +
                                "; convert reads llama2.c checkpoints (.bin) and writes GGUF");
  const llm::ModelWeights w = llm::read_llama2c(args.model);
  std::optional<llm::Tokenizer> tok;
  if (!args.tokenizer.empty()) tok = llm::Tokenizer::load_llama2c(args.tokenizer, w.config.vocab_size);
  const std::string name = args.name.empty() ? std::filesystem::path(args.model).stem().string() : args.name;
  const auto type = args.f16 ? formats::GgmlType::F16 : formats::GgmlType::F32;
  formats::write_gguf(args.out, formats::llama_gguf_from_weights(w, tok ? &*tok : nullptr, name, type));
  const auto& c = w.config;
  std::cout << "wrote " << args.out << ": llama, dim " << c.dim << ", hidden " << c.hidden_dim << ", " << c.n_layers
            << " layers, " << c.n_heads << " heads (" << c.n_kv_heads << " kv), vocab " << c.vocab_size << ", seq "
            << c.seq_len << (c.shared_classifier ? ", tied classifier" : ", separate classifier") << ", "
            << (args.f16 ? "F16" : "F32") << (tok ? ", with tokenizer" : ", no tokenizer") << "\n";
  return 0;
}

const hyplora::cli::CommandRegistration registration{
    "convert",
    [](CLI::App& app) {
      auto* sub = app.add_subcommand("convert", "Convert a llama2.c checkpoint (and tokenizer.bin) to GGUF");
      sub->add_option("--model", args.model, "llama2.c checkpoint (.bin)")->required()->check(CLI::ExistingFile);
      sub->add_option("--tokenizer", args.tokenizer, "llama2.c tokenizer.bin to embed (tokenizer.ggml.*)")
          ->check(CLI::ExistingFile);
      sub->add_option("--out", args.out, "output GGUF file (written atomically)")->required();
      sub->add_option("--name", args.name, "general.name (default: the model file's stem)");
      sub->add_flag("--f16", args.f16, "store tensors as F16 instead of F32");
      return sub;
    },
    run_convert};

}  // namespace
