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
#include "data/json_records.hpp"
#include "formats/atomic_file.hpp"
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

/// The file name's extension in lower case (".GGUF" -> ".gguf").
std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (auto& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return ext;
}

int run_convert() {
  using namespace hyplora;
  formats::require_not_an_input(args.out, "convert: --out", {{args.model, "--model"}, {args.tokenizer, "--tokenizer"}});
  if (std::filesystem::is_directory(args.out))
    throw std::invalid_argument("convert: --out " + args.out + " is a folder; give the GGUF file name");
  {  // the output is always GGUF: a .bin or .txt name would hide that
    if (lower_extension(args.out) != ".gguf") throw std::invalid_argument("convert: --out " + args.out + " must end in .gguf (convert writes GGUF)");
  }
  // before the model is read: a folder that cannot take the file (missing, a file in the way, read-only,
  // /proc) failed only at the write, naming the temporary file instead of --out
  formats::require_writable_folder(std::filesystem::path(args.out).parent_path(), "convert: --out " + args.out, false);
  if (llm::is_gguf_file(args.model) || lower_extension(args.model) == ".gguf")
    throw std::invalid_argument("convert: --model " + args.model + (llm::is_gguf_file(args.model) ? " is a GGUF file" : " is named .gguf") +
                                "; convert reads llama2.c checkpoints (.bin) and writes GGUF");
  // general.name is a GGUF string, which must be UTF-8: a name with byte 0xFF was written, and the
  // file was then refused by hyplora's own reader ("string value is not valid UTF-8")
  const std::string name = args.name.empty() ? std::filesystem::path(args.model).stem().string() : args.name;
  if (std::size_t bad = 0; !data::is_valid_utf8(name, &bad))
    throw std::invalid_argument(
        args.name.empty()
            ? "convert: the --model file name " + args.model + " is not valid UTF-8 (byte " + std::to_string(bad) +
                  " of its stem, the default general.name); give --name (GGUF strings must be UTF-8)"
            : "convert: --name is not valid UTF-8 (byte " + std::to_string(bad) + "); GGUF strings must be UTF-8");
  const llm::ModelWeights w = llm::read_llama2c(args.model);
  std::optional<llm::Tokenizer> tok;
  if (!args.tokenizer.empty()) tok = llm::Tokenizer::load_llama2c(args.tokenizer, w.config.vocab_size);
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
