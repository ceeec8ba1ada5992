#include "data/prompt_template.hpp"

#include <cctype>
#include <stdexcept>

namespace hyplora::data {

namespace {

std::string fill(std::string_view pattern, const Record& r) {
  std::string out;
  std::size_t i = 0;
  while (i < pattern.size()) {
    if (pattern.compare(i, 13, "{instruction}") == 0) { out += r.question; i += 13; continue; }
    if (pattern.compare(i, 7, "{input}") == 0) { out += r.input; i += 7; continue; }
    out += pattern[i++];
  }
  return out;
}

const std::vector<PromptTemplate>& templates() {
  static const std::vector<PromptTemplate> all = {
      {"alpaca",
       "math_10k / LLM-Adapters instruction template",
       "Below is an instruction that describes a task, paired with an input that provides further context. "
       "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
       "### Input:\n{input}\n\n### Response:\n",
       "Below is an instruction that describes a task. Write a response that appropriately completes the "
       "request.\n\n### Instruction:\n{instruction}\n\n### Response:\n",
       "\n", "\n"},
      {"compact", "short template for small-context models", "Q: {instruction} {input}\nA: ", "Q: {instruction}\nA: ",
       "\n", "\n"},
  };
  return all;
}

}  // namespace

std::string PromptTemplate::prompt(const Record& r) const {
  return fill(r.input.empty() ? prefix_without_input : prefix_with_input, r);
}

std::string PromptTemplate::model_prompt(const Record& r) const {
  std::string p = prompt(r);
  while (!p.empty() && p.back() == ' ') p.pop_back();
  return p;
}

bool PromptTemplate::prompt_ends_in_space() const {
  auto ends = [](const std::string& s) { return !s.empty() && s.back() == ' '; };
  return ends(prefix_with_input) || ends(prefix_without_input);
}

std::string PromptTemplate::response(const Record& r) const { return r.answer_text + response_suffix; }

std::string_view PromptTemplate::cut_at_stop(std::string_view generated) const {
  if (stop_text.empty()) return generated;
  std::size_t from = 0;
  while (from < generated.size() && std::isspace(static_cast<unsigned char>(generated[from]))) ++from;
  const auto pos = generated.find(stop_text, from);
  return pos == std::string_view::npos ? generated : generated.substr(0, pos);
}

bool PromptTemplate::should_stop(std::string_view generated) const {
  return cut_at_stop(generated).size() != generated.size();
}

const PromptTemplate& prompt_template(const std::string& name) {
  for (const auto& t : templates())
    if (t.name == name) return t;
  throw std::invalid_argument("unknown prompt template '" + name + "' (known: alpaca, compact)");
}

std::vector<std::string> prompt_template_names() {
  std::vector<std::string> names;
  for (const auto& t : templates()) names.push_back(t.name);
  return names;
}

}  // namespace hyplora::data
