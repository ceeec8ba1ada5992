#include "tokenizer/tokenizer.hpp"

#include <cctype>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <queue>

#include "formats/atomic_file.hpp"
#include "formats/byte_cursor.hpp"

namespace hyplora::llm {

using formats::ByteCursor;
using formats::FormatError;

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
// run.c: sscanf(piece, "<0x%02hhX>", &byte) == 1, i.e. "<0x" then one or two hex digits
// (the closing '>' is not checked by the return value).
int parse_byte_piece(std::string_view p) {
  if (p.size() < 4 || p.substr(0, 3) != "<0x") return -1;
  int d0 = hex_value(p[3]);
  if (d0 < 0) return -1;
  if (p.size() >= 5) {
    int d1 = hex_value(p[4]);
    if (d1 >= 0) return d0 * 16 + d1;
  }
  return d0;
}
// Pieces are C strings in run.c: nothing after a NUL byte is ever seen.
std::string_view c_string(std::string_view s) {
  auto z = s.find('\0');
  return z == std::string_view::npos ? s : s.substr(0, z);
}
}  // namespace

TokenType Tokenizer::infer_type(int id, const std::string& piece, int bos_id, int eos_id, int unk_id) {
  if (id == unk_id) return TokenType::Unknown;
  if (id == bos_id || id == eos_id) return TokenType::Control;
  if (piece.size() == 6 && parse_byte_piece(piece) >= 0 && piece[5] == '>') return TokenType::Byte;
  return TokenType::Normal;
}

Tokenizer Tokenizer::load_llama2c(const std::filesystem::path& path, int expected_vocab) {
  const std::string file = path.string();
  const std::string bytes = formats::read_whole_file(path);
  ByteCursor cur(bytes, file);
  const auto max_len = cur.read<std::int32_t>("max_token_length");
  constexpr std::int32_t kMaxTokenLength = 1 << 16;
  if (max_len <= 0 || max_len > kMaxTokenLength)
    cur.fail_at(0, "max_token_length " + std::to_string(max_len) + " is not in 1.." + std::to_string(kMaxTokenLength));
  if (expected_vocab < 0) throw FormatError(file, "expected vocabulary size " + std::to_string(expected_vocab) + " < 0");
  std::vector<std::string> pieces;
  std::vector<float> scores;
  while (expected_vocab > 0 ? int(pieces.size()) < expected_vocab : !cur.at_end()) {
    const auto id = pieces.size();
    const std::uint64_t at = cur.offset();
    if (cur.remaining() < 8)
      cur.fail("truncated: token " + std::to_string(id) + " record needs 8 header bytes, " +
               std::to_string(cur.remaining()) + " left" +
               (expected_vocab > 0 ? " (expected " + std::to_string(expected_vocab) + " tokens)" : ""));
    const float score = cur.read<float>("token score");
    if (!std::isfinite(score)) cur.fail_at(at, "token " + std::to_string(id) + " has a non-finite score");
    const auto len = cur.read<std::int32_t>("token length");
    if (len < 0 || len > max_len)
      cur.fail_at(at + 4, "token " + std::to_string(id) + " length " + std::to_string(len) +
                              " outside 0..max_token_length " + std::to_string(max_len));
    std::string piece(cur.bytes(std::uint64_t(len), "token bytes"));
    if (!formats::is_valid_utf8(piece)) cur.fail_at(at + 8, "token " + std::to_string(id) + " is not valid UTF-8");
    pieces.push_back(std::move(piece));
    scores.push_back(score);
  }
  if (pieces.empty()) throw FormatError(file, "no tokens");
  // The format has no token count: a file holds exactly the model's vocabulary. Bytes after the
  // expected count mean a tokenizer with a larger vocabulary (another model's), not extra padding.
  if (expected_vocab > 0 && !cur.at_end())
    cur.fail("holds more than the expected " + std::to_string(expected_vocab) + " tokens (" +
             std::to_string(cur.remaining()) + " bytes after token " + std::to_string(expected_vocab - 1) +
             "): a tokenizer with a larger vocabulary than the model's");
  Tokenizer t = from_pieces(std::move(pieces), std::move(scores), {}, file);
  t.max_token_length_ = max_len;
  return t;
}

Tokenizer Tokenizer::from_pieces(std::vector<std::string> pieces, std::vector<float> scores,
                                 std::vector<TokenType> types, const std::string& source, int bos_id, int eos_id,
                                 int unk_id) {
  const int n = int(pieces.size());
  if (pieces.empty()) throw FormatError(source, "empty vocabulary");
  if (pieces.size() > std::size_t(std::numeric_limits<int>::max() / 2))
    throw FormatError(source, "vocabulary of " + std::to_string(pieces.size()) + " tokens is too large");
  if (scores.size() != pieces.size())
    throw FormatError(source, std::to_string(scores.size()) + " scores for " + std::to_string(n) + " tokens");
  if (!types.empty() && types.size() != pieces.size())
    throw FormatError(source, std::to_string(types.size()) + " token types for " + std::to_string(n) + " tokens");
  for (int id : {bos_id, eos_id, unk_id})
    if (id < 0 || id >= n) throw FormatError(source, "special token id " + std::to_string(id) + " outside the vocabulary");
  Tokenizer t;
  t.source_ = source;
  t.bos_id_ = bos_id;
  t.eos_id_ = eos_id;
  t.unk_id_ = unk_id;
  for (int i = 0; i < n; ++i) {
    if (!std::isfinite(scores[std::size_t(i)])) throw FormatError(source, "token " + std::to_string(i) + " has a non-finite score");
    if (!formats::is_valid_utf8(pieces[std::size_t(i)])) throw FormatError(source, "token " + std::to_string(i) + " is not valid UTF-8");
    t.max_token_length_ = std::max(t.max_token_length_, int(pieces[std::size_t(i)].size()));
  }
  if (types.empty()) {
    types.resize(pieces.size());
    for (int i = 0; i < n; ++i) types[std::size_t(i)] = infer_type(i, pieces[std::size_t(i)], bos_id, eos_id, unk_id);
  }
  t.pieces_ = std::move(pieces);
  t.scores_ = std::move(scores);
  t.types_ = std::move(types);
  t.build_index(source);
  return t;
}

void Tokenizer::build_index(const std::string& source) {
  index_.clear();
  index_.reserve(pieces_.size() * 2);
  byte_piece_.assign(pieces_.size(), -1);
  for (std::size_t i = 0; i < pieces_.size(); ++i) {
    index_.emplace(std::string(c_string(pieces_[i])), int(i));  // first id wins for duplicate pieces
    byte_piece_[i] = parse_byte_piece(c_string(pieces_[i]));
  }
  space_id_ = lookup(" ");
}

const std::string& Tokenizer::piece(int id) const {
  if (id < 0 || id >= vocab_size())
    throw std::out_of_range("token id " + std::to_string(id) + " outside vocabulary of " + std::to_string(vocab_size()));
  return pieces_[std::size_t(id)];
}

int Tokenizer::lookup(std::string_view p) const {
  auto it = index_.find(p);
  return it == index_.end() ? -1 : it->second;
}

std::vector<int> Tokenizer::encode(std::string_view text, bool bos, bool eos) const {
  if (pieces_.empty()) throw std::logic_error("Tokenizer::encode on an empty tokenizer");
  text = c_string(text);
  std::vector<int> tokens;
  tokens.reserve(text.size() + 3);
  if (bos) tokens.push_back(bos_id_);
  if (!text.empty()) tokens.push_back(space_id_);  // run.c pushes str_lookup(" ") (-1 if absent)

  std::string buf;
  const int vocab = vocab_size();
  for (std::size_t c = 0; c < text.size(); ++c) {
    const auto byte = static_cast<unsigned char>(text[c]);
    if ((byte & 0xC0) != 0x80) buf.clear();  // a lead byte starts a new code point
    buf.push_back(char(byte));
    const bool next_is_continuation = c + 1 < text.size() && (static_cast<unsigned char>(text[c + 1]) & 0xC0) == 0x80;
    if (next_is_continuation && buf.size() < 4) continue;
    const int id = lookup(buf);
    if (id != -1) {
      tokens.push_back(id);
    } else {  // byte fallback: <0x00> is id 3
      for (unsigned char b : buf) tokens.push_back(int(b) + 3);
    }
    buf.clear();
  }
  for (int id : tokens)
    if (id < 0 || id >= vocab)
      // name the tokenizer: a truncated tokenizer.bin read without a model (analyze --frequency-only)
      // loads, and only encoding finds it short
      throw std::runtime_error((source_.empty() ? std::string("tokenizer") : source_) + ": cannot encode text: token id " +
                               std::to_string(id) + " outside the vocabulary of " + std::to_string(vocab) + " tokens (" +
                               (id < 0 ? "no \" \" piece" : "too few byte tokens <0x00>..<0xFF> at ids 3..258") +
                               "; a truncated or damaged tokenizer file?)");

  // Greedy merges: the best-scoring adjacent pair first (the leftmost one on ties), as run.c. run.c
  // rescans every pair after each merge (quadratic: a 1 MB record took minutes); here the candidate
  // pairs sit in a heap ordered by (score, then position), the tokens in a linked list, and a
  // merge pushes only its two new neighbouring pairs. A popped pair is used only if both its tokens
  // are unchanged since it was pushed (version stamps); the list keeps the original order, so the
  // left token's original index orders ties as run.c's left-to-right scan does. Same result.
  const std::size_t n = tokens.size();
  constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  std::vector<std::size_t> next(n), prev(n);
  std::vector<std::uint32_t> version(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? i + 1 : none;
    prev[i] = i > 0 ? i - 1 : none;
  }
  struct Candidate {
    float score;
    std::size_t left, right;
    std::uint32_t left_version, right_version;
    int id;
  };
  auto later = [](const Candidate& a, const Candidate& b) {  // heap order: best score, then leftmost
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(later)> heap(later);
  std::string pair;
  auto push_pair = [&](std::size_t i) {
    if (i == none || next[i] == none) return;
    const std::size_t j = next[i];
    pair.assign(c_string(pieces_[std::size_t(tokens[i])]));
    pair.append(c_string(pieces_[std::size_t(tokens[j])]));
    const int id = lookup(pair);
    if (id != -1 && scores_[std::size_t(id)] > -1e10f)  // run.c's initial best_score
      heap.push({scores_[std::size_t(id)], i, j, version[i], version[j], id});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push_pair(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    if (next[c.left] != c.right || version[c.left] != c.left_version || version[c.right] != c.right_version)
      continue;  // stale: a token of the pair was merged away or changed
    tokens[c.left] = c.id;
    ++version[c.left];
    ++version[c.right];  // removed from the list: no candidate names it any more
    next[c.left] = next[c.right];
    if (next[c.right] != none) prev[next[c.right]] = c.left;
    next[c.right] = none;
    push_pair(prev[c.left]);
    push_pair(c.left);
  }
  std::vector<int> merged;
  merged.reserve(n);
  for (std::size_t i = n > 0 ? 0 : none; i != none; i = next[i]) merged.push_back(tokens[i]);
  tokens = std::move(merged);
  if (eos) tokens.push_back(eos_id_);
  return tokens;
}

std::string Tokenizer::decode(int prev_token, int token) const {
  std::string_view p = c_string(piece(token));
  if (prev_token == bos_id_ && !p.empty() && p[0] == ' ') p.remove_prefix(1);
  const int b = (p.data() == pieces_[std::size_t(token)].data()) ? byte_piece_[std::size_t(token)] : parse_byte_piece(p);
  if (b >= 0) return b == 0 ? std::string() : std::string(1, char(b));  // byte 0 is an empty C string in run.c
  return std::string(p);
}

std::string Tokenizer::decode_all(const std::vector<int>& ids, int prev) const {
  std::string out;
  for (int id : ids) {
    out += decode(prev, id);
    prev = id;
  }
  return out;
}

std::string Tokenizer::printable(std::string_view piece) {
  if (piece.empty()) return {};
  if (piece.size() == 1) {
    const auto b = static_cast<unsigned char>(piece[0]);
    if (!(std::isprint(b) || std::isspace(b))) return {};
  }
  return std::string(piece);
}

void Tokenizer::save_llama2c(const std::filesystem::path& path) const {
  std::string out;
  auto put = [&](const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); };
  const std::int32_t max_len = max_token_length_;
  put(&max_len, 4);
  for (std::size_t i = 0; i < pieces_.size(); ++i) {
    const float s = scores_[i];
    const auto len = std::int32_t(pieces_[i].size());
    put(&s, 4);
    put(&len, 4);
    put(pieces_[i].data(), pieces_[i].size());
  }
  formats::write_file_atomically(path, out);
}

}  // namespace hyplora::llm
