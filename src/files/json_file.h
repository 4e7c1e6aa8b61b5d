// JSON files (tokenizer.json, meta.json, config.json, train_state.json): read with errors that
// name the file and the field, written atomically.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace slope::files {

// Parses a JSON file. Throws slope::Error naming the file when it is missing or malformed.
nlohmann::json read_json_file(const std::filesystem::path& path);

// Writes `j` pretty-printed (2 spaces, trailing newline) with write_file_atomic.
// Keys keep their insertion order ("format" and "version" first).
void write_json_file(const std::filesystem::path& path, const nlohmann::ordered_json& j);

// j[key] as T. Throws slope::Error naming the file and the field when it is absent or of
// another type ("data/x/meta.json: field \"vocab_size\" is missing").
template <typename T>
T json_field(const nlohmann::json& j, const std::string& key, const std::filesystem::path& file);

// Checks the "format" and "version" fields every data-layer JSON file carries.
void check_json_format(const nlohmann::json& j, const std::string& format, int max_version,
                       const std::filesystem::path& file);

}  // namespace slope::files
