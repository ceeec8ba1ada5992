#pragma once
// Named data sets in the shared folder (../shared/data), so the CLI can say `--data gsm8k-test`.
#include <string>
#include <vector>

#include "data/loaders.hpp"

namespace hyplora::data {

enum class SplitRole { train, validation, test };

struct DatasetInfo {
  std::string name;           ///< "gsm8k-test", "mawps-train", "la-svamp", ...
  DataFormat format;
  std::string relative_path;  ///< under the shared data folder
  SplitRole role;
  std::size_t expected_count; ///< records in the shared copy (checked by the tests)
  std::string note;
};

/// Every registered data set, in a fixed order.
const std::vector<DatasetInfo>& dataset_registry();
/// Looks a name up; throws std::invalid_argument listing the known names.
const DatasetInfo& find_dataset(const std::string& name);
/// The shared data folder: $HYPLORA_SHARED_DIR/data, else the configured default, else ../shared/data.
std::string default_data_dir();
/// Loads a registered data set from data_dir (default_data_dir() when empty). Records' ids are
/// prefixed with the data set name ("gsm8k-test/gsm8k-12").
LoadResult load_dataset(const std::string& name, BadRecordPolicy policy = BadRecordPolicy::reject,
                        const std::string& data_dir = "");

/// A data set given on the command line: a registered name ("gsm8k-test") or "<format>:<path>"
/// ("mawps:/data/my.json", formats as format_from_name). Throws std::invalid_argument for an unknown
/// name or format, DataError for file problems. (The built-in task is generated, not loaded: see
/// story_task.hpp.)
LoadResult load_data_spec(const std::string& spec, BadRecordPolicy policy = BadRecordPolicy::reject,
                          const std::string& data_dir = "");

/// What a --data spec ("gsm8k-train", "gsm8k:/data/x.jsonl", "x.jsonl") reads, as one string: the
/// canonical path of the file (a registered name resolved under data_dir / default_data_dir()), so
/// that two specs of the same file compare equal. Reads no file; a path that does not exist is made
/// absolute and normal.
std::string data_source_identity(const std::string& spec, const std::string& data_dir = "");

/// The registered data set of role SplitRole::test that a --data spec reads (its name, or its file as
/// [FORMAT:]PATH: data_source_identity), or nullptr. Reads no file.
const DatasetInfo* registered_test_set(const std::string& spec, const std::string& data_dir = "");

/// Why a registered test set may not be trained or validated on, for an error message: names the
/// option and the set, the registered training and validation splits to use instead, and the
/// override (`override_hint`, e.g. "--allow-test-data").
std::string test_set_refusal(const std::string& option, const std::string& spec, const DatasetInfo& set,
                             const std::string& override_hint);

}  // namespace hyplora::data
