// Tokenizer: run.c-exact encode/decode against the shared references, llama.cpp's SPM vocabulary
// test, and bad tokenizer.bin files.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "formats/byte_cursor.hpp"
#include "model/load_model.hpp"
#include "support.hpp"
#include "tokenizer/tokenizer.hpp"

using hyplora::formats::FormatError;
using hyplora::llm::Tokenizer;
using hyplora::test::require_shared;
using hyplora::test::slurp;
using hyplora::test::spit;
using hyplora::test::TempDir;

namespace {

struct EncodeCase {
  std::string text;
  std::vector<int> ids;
};

std::vector<EncodeCase> read_encode_cases(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<EncodeCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    cases.push_back({j.at("text").get<std::string>(), j.at("ids").get<std::vector<int>>()});
  }
  return cases;
}

void check_encode_reference(const std::string& tokenizer, const std::string& reference) {
  const auto tok = Tokenizer::load_llama2c(require_shared(tokenizer));
  const auto cases = read_encode_cases(require_shared(reference));
  REQUIRE(cases.size() >= 100);
  int checked = 0, round_trips = 0;
  for (const auto& c : cases) {
    INFO("text: " << c.text);
    CHECK(tok.encode(c.text, true, false) == c.ids);
    // EOS appends id 2 and nothing else.
    auto with_eos = c.ids;
    with_eos.push_back(2);
    CHECK(tok.encode(c.text, true, true) == with_eos);
    // decode round trip: run.c strips the dummy prefix's space after BOS, so the text comes back.
    std::vector<int> body(c.ids.begin() + 1, c.ids.end());
    CHECK(tok.decode_all(body, tok.bos_id()) == c.text);
    round_trips += tok.decode_all(body, tok.bos_id()) == c.text;
    ++checked;
  }
  CHECK(checked == int(cases.size()));
  std::cout << tokenizer << ": " << checked << " reference encodings checked, " << round_trips << " decode round trips\n";
}

/// run.c's encode as it is written there: the code-point split with byte fallback, then after every
/// merge a rescan of all pairs for the best score (the first one on ties). Quadratic; the reference
/// for the heap-based merge of Tokenizer::encode.
std::vector<int> encode_rescanning(const Tokenizer& tok, const std::string& text) {
  std::vector<int> t{tok.bos_id()};
  if (!text.empty()) t.push_back(tok.lookup(" "));
  std::string buf;
  for (std::size_t c = 0; c < text.size(); ++c) {
    const auto byte = static_cast<unsigned char>(text[c]);
    if ((byte & 0xC0) != 0x80) buf.clear();
    buf.push_back(char(byte));
    if (c + 1 < text.size() && (static_cast<unsigned char>(text[c + 1]) & 0xC0) == 0x80 && buf.size() < 4) continue;
    const int id = tok.lookup(buf);
    if (id != -1) t.push_back(id);
    else
      for (unsigned char b : buf) t.push_back(int(b) + 3);
    buf.clear();
  }
  while (true) {
    float best = -1e10f;
    int best_id = -1;
    std::size_t at = 0;
    for (std::size_t i = 0; i + 1 < t.size(); ++i) {
      const int id = tok.lookup(tok.piece(t[i]) + tok.piece(t[i + 1]));
      if (id != -1 && tok.score(id) > best) {
        best = tok.score(id);
        best_id = id;
        at = i;
      }
    }
    if (best_id == -1) break;
    t[at] = best_id;
    t.erase(t.begin() + std::ptrdiff_t(at) + 1);
  }
  return t;
}

}  // namespace

TEST_CASE("encode's heap-ordered merges give run.c's rescanning result; a 680 KB text round-trips", "[tokenizer]") {
  // random texts from a small alphabet (many equal-scoring pairs: the leftmost-on-ties rule), words,
  // digits, punctuation and multi-byte characters, with both tokenizers
  for (const char* file : {"models/stories260K/tok512.bin", "models/llama2-tokenizer/tokenizer.bin"}) {
    const auto tok = Tokenizer::load_llama2c(require_shared(file));
    const std::vector<std::string> atoms = {"a", "aa", "b", "ab", " ", " the", "Tom", "7", "12", "+", ".", "\n", "\xc3\xa9",
                                            "\xe2\x82\xac", "\xf0\x9f\x99\x82", "is", "ing", "\t", "ll"};
    std::uint64_t state = 12345;
    auto next = [&] { state = state * 6364136223846793005ULL + 1442695040888963407ULL; return state >> 33; };
    for (int k = 0; k < 300; ++k) {
      std::string text;
      const int len = int(next() % 60);
      for (int i = 0; i < len; ++i) text += atoms[next() % atoms.size()];
      INFO(file << " text: " << text);
      REQUIRE(tok.encode(text, true, false) == encode_rescanning(tok, text));
    }
    // a long text: the rescanning merge is quadratic in it (a 1 MB record took minutes); the heap is not
    std::string long_text;
    for (int i = 0; i < 20000; ++i) long_text += "Tom has 3 apples and buys 4 more. ";
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = tok.encode(long_text, true, false);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << file << ": " << long_text.size() << " bytes -> " << ids.size() << " tokens in " << seconds << " s\n";
    CHECK(tok.decode_all(std::vector<int>(ids.begin() + 1, ids.end()), tok.bos_id()) == long_text);
  }
}

TEST_CASE("tok512 encodes exactly as run.c (tok512_encode.jsonl)", "[tokenizer]") {
  check_encode_reference("models/stories260K/tok512.bin", "reference/tok512_encode.jsonl");
}

TEST_CASE("Llama 2 32K tokenizer encodes exactly as run.c (llama2_32k_encode.jsonl)", "[tokenizer]") {
  check_encode_reference("models/llama2-tokenizer/tokenizer.bin", "reference/llama2_32k_encode.jsonl");
}

TEST_CASE("llama.cpp SPM vocabulary test: all 47 texts agree (40 one-line, 7 multi-line)", "[tokenizer]") {
  const auto tok = Tokenizer::load_llama2c(require_shared("models/llama2-tokenizer/tokenizer.bin"));
  std::string inp = slurp(require_shared("reference/llama_spm_vocab_test.inp"));
  const std::string out = slurp(require_shared("reference/llama_spm_vocab_test.out"));
  // llama.cpp's test-tokenizer-0: texts separated by "\n__ggml_vocab_test__\n"; split as Python's
  // str.split does (the file ends with a separator, so the last text is the empty string, whose
  // ids are the .out file's final empty line).
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  std::size_t pos = 0;
  while (true) {
    auto at = inp.find(sep, pos);
    if (at == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, at - pos));
    pos = at + sep.size();
  }
  std::vector<std::vector<int>> expected;
  for (std::size_t lpos = 0;;) {
    const auto nl = out.find('\n', lpos);
    std::istringstream ids(out.substr(lpos, nl == std::string::npos ? std::string::npos : nl - lpos));
    std::vector<int> v;
    for (int id; ids >> id;) v.push_back(id);
    expected.push_back(v);
    if (nl == std::string::npos) break;
    lpos = nl + 1;
  }
  REQUIRE(texts.size() == 47);
  REQUIRE(expected.size() == texts.size());
  int one_line = 0, multi_line_agree = 0;
  for (std::size_t k = 0; k < texts.size(); ++k) {
    INFO("text " << k << ": [" << texts[k] << "]");
    const auto ids = tok.encode(texts[k], false, false);
    if (texts[k].find('\n') == std::string::npos) {
      ++one_line;
      CHECK(ids == expected[k]);
    } else {
      multi_line_agree += ids == expected[k];
      CHECK(ids == expected[k]);  // beyond what SPEC promises, these agree too
    }
  }
  CHECK(one_line == 40);
  std::cout << "llama_spm_vocab_test: " << one_line << " one-line texts checked; " << multi_line_agree << " of "
            << texts.size() - std::size_t(one_line) << " multi-line texts also agree \n";
}

TEST_CASE("decode follows run.c: BOS strips a leading space, <0xXX> is a raw byte", "[tokenizer]") {
  const auto tok = Tokenizer::load_llama2c(require_shared("models/llama2-tokenizer/tokenizer.bin"));
  const int hello = tok.lookup(" Hello");
  REQUIRE(hello >= 0);
  CHECK(tok.decode(tok.bos_id(), hello) == "Hello");
  CHECK(tok.decode(hello, hello) == " Hello");
  CHECK(tok.decode(0, 0x41 + 3) == "A");     // <0x41>
  CHECK(tok.decode(0, 0x0A + 3) == "\n");    // <0x0A>
  CHECK(tok.decode(0, 3).empty());            // <0x00> is an empty C string in run.c
  CHECK(tok.decode(0, 0xE4 + 3) == std::string(1, char(0xE4)));
  CHECK(Tokenizer::printable(std::string(1, char(0x01))).empty());
  CHECK(Tokenizer::printable(std::string(1, char(0xE4))).empty());
  CHECK(Tokenizer::printable("\n") == "\n");
  CHECK(Tokenizer::printable("A") == "A");
  CHECK(Tokenizer::printable("") == "");
  CHECK_THROWS_AS(tok.decode(0, tok.vocab_size()), std::out_of_range);
  CHECK_THROWS_AS(tok.decode(0, -1), std::out_of_range);
  // A text is read up to its first NUL, as run.c reads a C string.
  CHECK(tok.encode(std::string("ab\0cd", 5), true, false) == tok.encode("ab", true, false));
  // Invalid UTF-8 (a lone continuation byte, a truncated sequence) falls back to byte tokens.
  const auto ids = tok.encode(std::string("a\x80\xE4", 3), false, false);
  CHECK(tok.decode_all(ids, tok.bos_id()) == std::string("a\x80\xE4", 3));
}

TEST_CASE("tokenizer.bin written back is byte-identical", "[tokenizer]") {
  const auto src = require_shared("models/stories260K/tok512.bin");
  const auto tok = Tokenizer::load_llama2c(src);
  CHECK(tok.vocab_size() == 512);
  CHECK(tok.max_token_length() == 7);
  TempDir dir;
  tok.save_llama2c(dir.path / "tok.bin");
  CHECK(slurp(dir.path / "tok.bin") == slurp(src));
  // expected_vocab = the model's vocab_size: the file must hold exactly that many tokens (run.c reads
  // that many and ignores the rest; here a longer file is another model's tokenizer and is refused).
  CHECK(Tokenizer::load_llama2c(src, 512).vocab_size() == 512);
  CHECK_THROWS_WITH(Tokenizer::load_llama2c(src, 100), Catch::Contains("more than the expected 100 tokens"));
}

TEST_CASE("a tokenizer of another model is refused and the message names both files", "[tokenizer][bad-input]") {
  const auto model = require_shared("models/stories260K/stories260K.bin");
  const auto llama2 = require_shared("models/llama2-tokenizer/tokenizer.bin");
  try {
    (void)hyplora::llm::load_tokenizer(llama2, model, 512);  // 32,000 tokens for a 512-token model
    FAIL("no exception");
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(llama2.string()) != std::string::npos);
    CHECK(msg.find(model.string()) != std::string::npos);
    CHECK(msg.find("512 tokens") != std::string::npos);
  }
}

TEST_CASE("bad tokenizer.bin files are rejected with the file, offset and problem", "[tokenizer][bad-input]") {
  const auto good = slurp(require_shared("models/stories260K/tok512.bin"));
  TempDir dir;
  auto expect_error = [&](const std::string& bytes, const std::string& needle, int expected_vocab = 0) {
    const auto p = dir.path / "bad.bin";
    spit(p, bytes);
    INFO("expecting: " << needle);
    try {
      (void)Tokenizer::load_llama2c(p, expected_vocab);
      FAIL("no exception");
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      INFO("message: " << msg);
      CHECK(msg.find(p.string()) != std::string::npos);
      CHECK(msg.find(needle) != std::string::npos);
    }
  };
  expect_error("", "truncated");
  expect_error(good.substr(0, good.size() - 3), "truncated");
  expect_error(good.substr(0, 4), "no tokens");
  expect_error(good, "truncated", 513);  // more tokens than the file holds
  std::string b = good;
  const std::int32_t absurd = 1 << 30;
  std::memcpy(b.data(), &absurd, 4);
  expect_error(b, "max_token_length");
  b = good;
  const std::int32_t neg = -5;
  std::memcpy(b.data() + 4 + 4, &neg, 4);  // token 0's length
  expect_error(b, "offset 8: token 0 length -5");
  b = good;
  b[4 + 8] = char(0xFF);  // token 0's first byte: invalid UTF-8
  expect_error(b, "not valid UTF-8");
  b = good;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(b.data() + 4, &nan, 4);
  expect_error(b, "non-finite score");
  CHECK_THROWS_AS(Tokenizer::load_llama2c(dir.path / "missing.bin"), FormatError);
}

TEST_CASE("truncations and byte flips of tokenizer.bin never crash", "[tokenizer][bad-input]") {
  const auto good = slurp(require_shared("models/stories260K/tok512.bin"));
  TempDir dir;
  const auto p = dir.path / "t.bin";
  std::uint32_t state = 12345;
  int rejected = 0, accepted = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string b = good;
    state = state * 1664525u + 1013904223u;
    if (trial % 2 == 0) {
      b.resize(state % b.size());
    } else {
      for (int f = 0; f < 4; ++f) {
        state = state * 1664525u + 1013904223u;
        b[state % b.size()] = char(state >> 24);
      }
    }
    spit(p, b);
    try {
      const auto t = Tokenizer::load_llama2c(p);
      (void)t.encode("Once upon a time", true, false);
      ++accepted;
    } catch (const FormatError&) {
      ++rejected;
    } catch (const std::runtime_error& e) {  // only encode on a vocabulary without " " or byte tokens
      INFO("trial " << trial);
      CHECK_THAT(e.what(), Catch::Contains("outside the vocabulary"));
      ++rejected;
    }
  }
  CHECK(rejected > 0);
  CHECK(accepted > 0);  // flips of scores or piece bytes still load (the reader does not over-reject)
}
