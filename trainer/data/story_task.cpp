#include "data/story_task.hpp"

#include <stdexcept>
#include <unordered_set>

#include "data/rng.hpp"

namespace hyplora::data {

namespace {

struct Character {
  const char* name;
  const char* subject;  // "She"
  const char* object;   // "her"
};
// Names and objects of children's stories; short ones (few tokens of the 512-piece vocabulary) on purpose.
constexpr Character characters[] = {{"Lily", "She", "her"}, {"Tim", "He", "him"}, {"Tom", "He", "him"},
                                    {"Ben", "He", "him"},   {"Sam", "He", "him"}, {"Sue", "She", "her"},
                                    {"Anna", "She", "her"}};
struct Thing {
  const char* plural;
  bool food;
};
constexpr Thing things[] = {{"apples", true}, {"cookies", true}, {"cakes", true}, {"eggs", true},
                            {"balls", false}, {"toys", false},   {"stars", false}, {"flowers", false},
                            {"shells", false}, {"cars", false},  {"hats", false}};
constexpr const char* givers[] = {"Mom", "Dad"};

template <class T, std::size_t N>
const T& pick(Rng& rng, const T (&items)[N]) { return items[rng.index(N)]; }

std::string to_s(long v) { return std::to_string(v); }

struct Problem {
  std::string question, worked;
  long answer = 0;
};

Problem make_problem(Rng& rng, int depth, int max_value) {
  const Character& hero = pick(rng, characters);
  const Character* friend_ = &pick(rng, characters);
  while (friend_->name == hero.name) friend_ = &pick(rng, characters);
  const Thing& thing = pick(rng, things);
  const std::string He = hero.subject;

  long value = rng.uniform_int(2, 20);
  Problem p;
  p.question = std::string(hero.name) + " had " + to_s(value) + " " + thing.plural + ".";
  for (int step = 0; step < depth; ++step) {
    // feasible operations: + needs room, - needs something to take, x needs a small value
    const bool can_add = value + 1 <= max_value;
    const bool can_sub = value >= 1;
    const bool can_mul = value >= 1 && value * 2 <= max_value && value <= 20;
    long weight_add = can_add ? 4 : 0, weight_sub = can_sub ? 4 : 0, weight_mul = can_mul ? 2 : 0;
    long r = rng.uniform_int(0, weight_add + weight_sub + weight_mul - 1);
    std::string sentence, equation;
    long next = value;
    if (r < weight_add) {
      const long b = rng.uniform_int(1, std::min<long>(10, max_value - value));
      next = value + b;
      switch (rng.uniform_int(0, 4)) {
        case 0: sentence = He + " found " + to_s(b) + "."; break;
        case 1: sentence = std::string(friend_->name) + " gave " + hero.object + " " + to_s(b) + "."; break;
        case 2: sentence = He + " bought " + to_s(b) + "."; break;
        case 3: sentence = He + " got " + to_s(b) + " more."; break;
        default: sentence = std::string(pick(rng, givers)) + " gave " + hero.object + " " + to_s(b) + "."; break;
      }
      equation = to_s(value) + "+" + to_s(b) + " is " + to_s(next) + ".";
    } else if (r < weight_add + weight_sub) {
      const long b = rng.uniform_int(1, std::min<long>(10, value));
      next = value - b;
      switch (rng.uniform_int(0, 2)) {
        case 0: sentence = He + " lost " + to_s(b) + "."; break;
        case 1: sentence = thing.food ? He + " ate " + to_s(b) + "." : He + " lost " + to_s(b) + "."; break;
        default: sentence = He + " gave " + to_s(b) + " to " + friend_->name + "."; break;
      }
      equation = to_s(value) + "-" + to_s(b) + " is " + to_s(next) + ".";
    } else {
      const long k = (value * 3 <= max_value && rng.uniform_int(0, 1) == 1) ? 3 : 2;
      next = value * k;
      sentence = He + " had " + to_s(k) + " times as many.";
      equation = to_s(value) + "x" + to_s(k) + " is " + to_s(next) + ".";
    }
    p.question += " " + sentence;
    p.worked += (p.worked.empty() ? "" : " ") + equation;
    value = next;
  }
  p.question += std::string(" How many ") + thing.plural + " now?";
  p.worked += " The answer is " + to_s(value) + ".";
  p.answer = value;
  return p;
}

void check_config(const StoryTaskConfig& c) {
  if (c.min_depth < 1 || c.max_depth < c.min_depth || c.max_depth > kMaxStoryDepth)
    throw std::invalid_argument("built-in task: depths must satisfy 1 <= min_depth <= max_depth <= " +
                                std::to_string(kMaxStoryDepth) + " (got " +
                                std::to_string(c.min_depth) + ".." + std::to_string(c.max_depth) + ")");
  if (c.max_value < 10 || c.max_value > 1000000)
    throw std::invalid_argument("built-in task: max_value must be in 10..1000000 (got " + std::to_string(c.max_value) + ")");
  if (!(c.validation_fraction > 0 && c.test_fraction > 0 && c.validation_fraction + c.test_fraction < 1))
    throw std::invalid_argument("built-in task: validation and test fractions must be > 0 with a sum < 1");
}

}  // namespace

const char* split_name(SplitRole s) {
  switch (s) {
    case SplitRole::train: return "train";
    case SplitRole::validation: return "validation";
    case SplitRole::test: return "test";
  }
  return "?";
}

SplitRole story_split_of(const std::string& worked, const StoryTaskConfig& c) {
  // uniform in [0,1) from the top 53 bits of the content hash
  const double u = static_cast<double>(content_hash(worked) >> 11) * 0x1.0p-53;
  if (u < c.test_fraction) return SplitRole::test;
  if (u < c.test_fraction + c.validation_fraction) return SplitRole::validation;
  return SplitRole::train;
}

std::vector<Record> generate_story_problems(const StoryTaskConfig& config, SplitRole split, std::size_t count) {
  check_config(config);
  std::uint64_t stream = config.seed ^ (0x5DEECE66DULL * (static_cast<std::uint64_t>(split) + 1));
  Rng rng(splitmix64(stream));
  const int depths = config.max_depth - config.min_depth + 1;
  std::vector<Record> out;
  out.reserve(count);
  std::unordered_set<std::string> seen;
  const std::size_t max_attempts = 2000;  // per problem; a split too small to hold `count` ends here
  for (std::size_t i = 0; i < count; ++i) {
    const int depth = config.min_depth + static_cast<int>(i % static_cast<std::size_t>(depths));
    std::size_t attempts = 0;
    while (true) {
      if (++attempts > max_attempts)
        throw std::runtime_error("built-in task: cannot find " + std::to_string(count) + " distinct " + split_name(split) +
                                 " problems of depth " + std::to_string(depth) + " (found " + std::to_string(i) + ")");
      Problem p = make_problem(rng, depth, config.max_value);
      if (story_split_of(p.worked, config) != split) continue;
      if (!seen.insert(p.question).second) continue;
      Record r;
      r.id = std::string("builtin-") + split_name(split) + "-" + std::to_string(i);
      r.question = std::move(p.question);
      r.answer_text = std::move(p.worked);
      r.answer = static_cast<double>(p.answer);
      r.depth = depth;
      r.source = std::string("builtin:") + split_name(split);
      r.line = i + 1;
      out.push_back(std::move(r));
      break;
    }
  }
  return out;
}

}  // namespace hyplora::data
