#pragma once
// The SentencePiece-BPE tokenizer of llama2.c, reproducing run.c's `encode` and `decode` exactly.
//
// Sources: a llama2.c tokenizer.bin (int32 max_token_length, then per token: float32 score,
// int32 byte length, bytes) or a GGUF file's tokenizer.ggml.{tokens,scores,token_type} arrays.
//
// encode(text, bos, eos), as run.c:
//   1. optional BOS; if text is non-empty, the token of " " (the dummy prefix);
//   2. each UTF-8 code point (a lead byte plus at most 3 continuation bytes) is looked up as a
//      piece; a code point without a piece becomes one token per byte, id = byte + 3 (<0xXX>);
//   3. repeatedly merge the adjacent pair whose concatenation is a piece with the highest score
//      (first such pair on ties), until no pair merges; 4. optional EOS.
//   The text is read up to its first NUL byte, as run.c reads a C string.
// decode(prev, token), as run.c: the piece, without its leading space right after BOS, and a
// piece "<0xXX>" as the raw byte XX.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hyplora::llm {

enum class TokenType : std::int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

class Tokenizer {
 public:
  Tokenizer() = default;

  /// llama2.c tokenizer.bin. expected_vocab > 0: read exactly that many tokens (run.c takes the
  /// count from the model; trailing bytes are ignored as run.c does); otherwise read to the end.
  static Tokenizer load_llama2c(const std::filesystem::path& path, int expected_vocab = 0);
  /// From parsed pieces (what the GGUF reader uses). types may be empty (derived from the pieces).
  /// `source` names the origin in error messages.
  static Tokenizer from_pieces(std::vector<std::string> pieces, std::vector<float> scores,
                               std::vector<TokenType> types, const std::string& source, int bos_id = 1,
                               int eos_id = 2, int unk_id = 0);

  /// Serialise as a llama2.c tokenizer.bin, atomically.
  void save_llama2c(const std::filesystem::path& path) const;

  std::vector<int> encode(std::string_view text, bool bos, bool eos) const;
  /// The bytes run.c's decode returns for `token` following `prev_token` (may be empty).
  std::string decode(int prev_token, int token) const;
  /// Concatenated decode of a sequence (ids[i] decoded after ids[i-1]; the first after `prev`).
  std::string decode_all(const std::vector<int>& ids, int prev = -1) const;
  /// run.c's safe_printf filter: "" for an empty piece or a single byte that is neither
  /// printable nor whitespace; otherwise the piece.
  static std::string printable(std::string_view piece);

  int vocab_size() const { return int(pieces_.size()); }
  int max_token_length() const { return max_token_length_; }
  const std::string& piece(int id) const;
  float score(int id) const { return scores_.at(std::size_t(id)); }
  TokenType type(int id) const { return types_.at(std::size_t(id)); }
  const std::vector<std::string>& pieces() const { return pieces_; }
  const std::vector<float>& scores() const { return scores_; }
  const std::vector<TokenType>& types() const { return types_; }
  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }
  int unk_id() const { return unk_id_; }
  /// Id of an exact piece, -1 when absent.
  int lookup(std::string_view piece) const;
  /// Where the vocabulary was read from (the file, for error messages); "" for a default one.
  const std::string& source() const { return source_; }

  /// Type a llama2.c piece implies: <unk> for id unk, control for bos/eos, byte for "<0xXX>".
  static TokenType infer_type(int id, const std::string& piece, int bos_id, int eos_id, int unk_id);

 private:
  void build_index(const std::string& source);

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  int max_token_length_ = 0;
  int bos_id_ = 1, eos_id_ = 2, unk_id_ = 0;
  int space_id_ = -1;
  std::string source_;
  struct PieceHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int, PieceHash, std::equal_to<>> index_;
  std::vector<int> byte_piece_;  // byte value for "<0xXX>" pieces, -1 otherwise
};

}  // namespace hyplora::llm
