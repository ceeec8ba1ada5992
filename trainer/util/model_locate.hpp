#pragma once
// Finding the default model (stories260K) and its tokenizer:
//   1. an explicit path (--model), 2. $HYPLORA_MODEL, 3. <shared>/models/stories260K/stories260K.bin
//   with <shared> = $HYPLORA_SHARED_DIR or the compiled-in HYPLORA_SHARED_DIR_DEFAULT,
//   4. a cached download in $HYPLORA_CACHE_DIR/stories260K (default ~/.cache/hyplora/stories260K), 5. a download
//   from Hugging Face (karpathy/tinyllamas, folder stories260K) with curl, verified by size, SHA-256
//   and the llama2.c header before it is moved into the cache. Offline, the error says what to do.
#include <cstdint>
#include <filesystem>
#include <string>

namespace hyplora::util {

struct ModelFiles {
  std::filesystem::path model;
  std::filesystem::path tokenizer;  // empty when none was found next to the model
  std::string source;               // how it was found: "--model", "$HYPLORA_MODEL", "shared", "cache", "download"
};

struct KnownFile {
  const char* name;
  const char* url;
  std::uint64_t size;
  const char* sha256;
};
/// stories260K.bin and tok512.bin as published on Hugging Face.
const KnownFile& stories260k_model_file();
const KnownFile& stories260k_tokenizer_file();

/// The shared folder: $HYPLORA_SHARED_DIR, else the compiled-in default.
std::filesystem::path shared_dir();

/// Tokenizer next to a model file: tok<vocab>.bin, tokenizer.bin (llama2.c conventions); empty when none.
std::filesystem::path tokenizer_next_to(const std::filesystem::path& model);

/// Throws std::runtime_error naming the file when its size, SHA-256 or llama2.c header is not the expected one.
void verify_known_file(const std::filesystem::path& path, const KnownFile& expected);

/// Resolves the model and tokenizer as described above. `explicit_model` / `explicit_tokenizer` may be empty.
/// allow_download=false turns step 5 into an error that says how to get the files.
ModelFiles locate_model(const std::string& explicit_model, const std::string& explicit_tokenizer,
                        bool allow_download = true);

}  // namespace hyplora::util
