#pragma once
// Prompt templates: how a Record becomes a prompt (model input) and a response (training target).
//
// Responses are ONE line that ends "The answer is N." followed by a newline: the TinyStories models
// never saw EOS (SPEC section 5), so generation stops at the template's stop text (a newline), or at
// a length limit, and the answer is extracted from what was generated.
#include <string>
#include <string_view>
#include <vector>

#include "data/record.hpp"

namespace hyplora::data {

struct PromptTemplate {
  std::string name;
  std::string description;
  std::string prefix_with_input;     ///< placeholders {instruction} and {input}
  std::string prefix_without_input;  ///< placeholder {instruction}
  std::string response_suffix;       ///< appended to the worked answer in the target ("\n")
  std::string stop_text;             ///< generation stops once the generated text contains this ("\n")

  /// The prompt for record (ends where the response starts).
  std::string prompt(const Record& record) const;
  /// What the model is given, in training (the unmasked context) and in evaluation (the text it
  /// continues): prompt() without its trailing spaces. A trailing space merges with the response's
  /// first word in BPE ("A: Tom" is ":" " T" "om"), so a prompt that ends in it is not a prefix of
  /// the trained token sequence; the space goes to the response side in both (the model generates
  /// it), and the two see the same tokens. Newlines stay (they are tokens of their own).
  std::string model_prompt(const Record& record) const;
  /// True when prompt() can end in a space, i.e. when model_prompt() differs from it.
  bool prompt_ends_in_space() const;
  /// The training target: record.answer_text + response_suffix.
  std::string response(const Record& record) const;
  /// The generated text up to (not including) the first stop_text after some non-blank output;
  /// leading blank lines are ignored so a response starting with "\n" is not cut empty.
  std::string_view cut_at_stop(std::string_view generated) const;
  /// True once cut_at_stop would cut something (the caller stops generating).
  bool should_stop(std::string_view generated) const;
};

/// "alpaca": the math_10k / LLM-Adapters instruction template
///   "Below is an instruction that describes a task. Write a response that appropriately completes
///    the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
///   (with "### Input:\n{input}\n\n" before the response when the record has an input);
/// "compact": "Q: {instruction}\nA: " ("Q: {instruction} {input}\nA: " with an input): a few tokens
/// for the 512-context, 512-vocabulary stories260K model.
const PromptTemplate& prompt_template(const std::string& name);  ///< throws std::invalid_argument
std::vector<std::string> prompt_template_names();

/// The metadata entry kPromptBoundaryKey = kPromptBoundary marks adapters, checkpoints and sweep
/// cells made with model_prompt() as the model's context; files of older builds lack the key: their
/// context ended with the prompt's trailing space.
inline constexpr const char* kPromptBoundaryKey = "prompt_boundary";
inline constexpr const char* kPromptBoundary = "model_prompt";

/// Empty where a file's kPromptBoundaryKey entry is one this build knows (kPromptBoundary),
/// otherwise what is wrong with it (a newer build's or a damaged file; files of older builds have
/// no entry at all).
inline std::string prompt_boundary_problem(const std::string& value) {
  if (value == kPromptBoundary) return {};
  return std::string("metadata \"") + kPromptBoundaryKey + "\" is \"" + value + "\"; this build knows \"" +
         kPromptBoundary + "\" (or no entry, in files of older builds)";
}

}  // namespace hyplora::data
