#pragma once
// The built-in task: seeded story-style arithmetic word problems in the vocabulary of children's
// stories (what the TinyStories models know), with worked answers and disjoint splits.
//
//   depth 2: "Lily had 3 apples. She found 2. She ate 1. How many apples now?"
//            -> "3+2 is 5. 5-1 is 4. The answer is 4."
// The wording is short and uses words the stories260K tokenizer (512 pieces) knows: "=" is not a
// piece of that vocabulary (a rarely trained byte token), so steps read "3+2 is 5.".
//
// Depth = number of operations (+, -, and x by 2 or 3); every intermediate value stays in 0..99.
// The split of a problem is decided by a hash of its arithmetic (the worked answer, which holds the
// start value, every operation and operand), not by the seed: train / validation / test never share
// an arithmetic chain, whatever the seeds, so the test measures generalisation beyond names and
// objects.
#include <cstdint>
#include <string>
#include <vector>

#include "data/record.hpp"
#include "data/registry.hpp"

namespace hyplora::data {

/// Deepest problem the task makes (every --depth-max and the sweep grid's task.depth_max is checked
/// against it before any work): each operation adds about 15 tokens, so depth 100 is ~1500 tokens,
/// beyond the context of every model the trainer reads (stories260K: 512) and any sensible --cutoff.
/// Deeper values only cost time: tokenizing such texts took minutes (depth 5000) before the cutoff
/// dropped every problem.
inline constexpr int kMaxStoryDepth = 100;

struct StoryTaskConfig {
  std::uint64_t seed = 1;
  int min_depth = 1;
  int max_depth = 6;
  int max_value = 99;                  ///< bound on every intermediate value and the answer
  double validation_fraction = 0.1;    ///< share of the arithmetic chains reserved for validation
  double test_fraction = 0.1;          ///< share reserved for test (the rest is train)
};

/// Which split an arithmetic chain (a worked answer) belongs to, from its content hash.
SplitRole story_split_of(const std::string& worked_answer, const StoryTaskConfig& config);

/// `count` distinct problems of `split`, depths cycling min_depth..max_depth (balanced), ids
/// "builtin-<split>-<i>", source "builtin:<split>", Record::depth set. Deterministic for
/// (config, split, count) on every machine. Throws std::invalid_argument on a bad config
/// (depth < 1, min > max, max > kMaxStoryDepth, fractions outside (0,1), max_value < 10) and std::runtime_error when the
/// split cannot hold `count` distinct problems.
std::vector<Record> generate_story_problems(const StoryTaskConfig& config, SplitRole split, std::size_t count);

const char* split_name(SplitRole split);  ///< "train", "validation", "test"

}  // namespace hyplora::data
