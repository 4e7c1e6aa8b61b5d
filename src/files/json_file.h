// JSON files (tokenizer.json, meta.json, config.json, train_state.json): read with errors that
// name the file and the field, written atomically.
#pragma once

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace slope::files {

// Parses a JSON file. Throws slope::Error naming the file when it is missing or malformed.
nlohmann::json read_json_file(const std::filesystem::path& path);

// Writes `j` pretty-printed (2 spaces, trailing newline) with write_file_atomic.
// Keys keep their insertion order ("format" and "version" first).
void write_json_file(const std::filesystem::path& path, const nlohmann::ordered_json& j);

// A JSON value as T, or nullopt when it is of another type or out of T's range. Every reader of
// a JSON file converts through this (or json_field): nlohmann's get<int>() casts 1e300 or 2^40
// to an int with undefined or wrapped results, and a field read from a file must do neither.
// T: bool, std::string, a floating type, an integer type (an integral JSON number within T's
// range; 3.0 is not an integer), nlohmann::json, or std::vector of one of these.
template <typename T>
std::optional<T> json_as(const nlohmann::json& v) {
  if constexpr (std::is_same_v<T, nlohmann::json>) {
    return v;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) return std::nullopt;
    return v.get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return std::nullopt;
    return v.get<std::string>();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) return std::nullopt;
    const double x = v.get<double>();  // exact for floats; integers round to nearest
    if constexpr (sizeof(T) < sizeof(double)) {
      if (std::isfinite(x) && std::abs(x) > static_cast<double>(std::numeric_limits<T>::max()))
        return std::nullopt;
    }
    return static_cast<T>(x);
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_number_unsigned()) {
      const auto x = v.get<uint64_t>();
      if (x > static_cast<uint64_t>(std::numeric_limits<T>::max())) return std::nullopt;
      return static_cast<T>(x);
    }
    if (v.is_number_integer()) {  // negative: nlohmann keeps non-negative ones unsigned
      const auto x = v.get<int64_t>();
      if constexpr (std::is_unsigned_v<T>) {
        if (x < 0) return std::nullopt;
        if (static_cast<uint64_t>(x) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
          return std::nullopt;
      } else {
        if (x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            x > static_cast<int64_t>(std::numeric_limits<T>::max()))
          return std::nullopt;
      }
      return static_cast<T>(x);
    }
    return std::nullopt;
  } else {
    static_assert(std::is_same_v<T, std::vector<typename T::value_type>>,
                  "json_as: a scalar type or a std::vector of one");
    if (!v.is_array()) return std::nullopt;
    T out;
    out.reserve(v.size());
    for (const nlohmann::json& e : v) {
      std::optional<typename T::value_type> x = json_as<typename T::value_type>(e);
      if (!x) return std::nullopt;
      out.push_back(std::move(*x));
    }
    return out;
  }
}

// j[key] as T. Throws slope::Error naming the file and the field when it is absent or of
// another type ("data/x/meta.json: field \"vocab_size\" is missing").
template <typename T>
T json_field(const nlohmann::json& j, const std::string& key, const std::filesystem::path& file);

// dir / j[key], where j[key] names a file or folder inside dir (meta.json's "file": "train.bin",
// tokenizer.json's "model"). Throws slope::Error naming `file` and the field unless it is a
// plain name: not empty, no '/', not "." or "..", no NUL. A data file never points outside its
// directory (at /dev/zero, a FIFO, another run's files).
std::filesystem::path json_name_in_dir(const nlohmann::json& j, const std::string& key,
                                       const std::filesystem::path& file,
                                       const std::filesystem::path& dir);

// Checks the "format" and "version" fields every data-layer JSON file carries.
void check_json_format(const nlohmann::json& j, const std::string& format, int max_version,
                       const std::filesystem::path& file);

}  // namespace slope::files
