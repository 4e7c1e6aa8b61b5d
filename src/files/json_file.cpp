#include "files/json_file.h"

#include <cstdint>
#include <vector>

#include "files/atomic_file.h"
#include "files/read_file.h"
#include "slope/error.h"

namespace slope::files {
namespace fs = std::filesystem;

nlohmann::json read_json_file(const fs::path& path) {
  const std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e400)
    throw Error(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

void write_json_file(const fs::path& path, const nlohmann::ordered_json& j) {
  write_file_atomic(path, j.dump(2) + "\n");
}

template <typename T>
T json_field(const nlohmann::json& j, const std::string& key, const fs::path& file) {
  if (!j.is_object() || !j.contains(key)) {
    throw Error(file.string() + ": field \"" + key + "\" is missing");
  }
  std::optional<T> v = json_as<T>(j.at(key));
  if (!v) {
    throw Error(file.string() + ": field \"" + key + "\" has the wrong type or is out of range (" +
                j.at(key).dump() + ")");
  }
  return std::move(*v);
}

template std::string json_field<std::string>(const nlohmann::json&, const std::string&,
                                             const fs::path&);
template int json_field<int>(const nlohmann::json&, const std::string&, const fs::path&);
template uint32_t json_field<uint32_t>(const nlohmann::json&, const std::string&, const fs::path&);
template int64_t json_field<int64_t>(const nlohmann::json&, const std::string&, const fs::path&);
template uint64_t json_field<uint64_t>(const nlohmann::json&, const std::string&, const fs::path&);
template double json_field<double>(const nlohmann::json&, const std::string&, const fs::path&);
template nlohmann::json json_field<nlohmann::json>(const nlohmann::json&, const std::string&,
                                                   const fs::path&);
template bool json_field<bool>(const nlohmann::json&, const std::string&, const fs::path&);
template std::vector<std::string> json_field<std::vector<std::string>>(const nlohmann::json&,
                                                                       const std::string&,
                                                                       const fs::path&);
template std::vector<uint32_t> json_field<std::vector<uint32_t>>(const nlohmann::json&,
                                                                 const std::string&,
                                                                 const fs::path&);

fs::path json_name_in_dir(const nlohmann::json& j, const std::string& key, const fs::path& file,
                          const fs::path& dir) {
  const auto name = json_field<std::string>(j, key, file);
  if (!is_plain_file_name(name)) {
    throw Error(file.string() + ": field \"" + key + "\" is \"" + name +
                "\", which is not a file name inside " + dir.string() +
                ": the file is corrupt or was edited by hand");
  }
  return dir / name;
}

void check_json_format(const nlohmann::json& j, const std::string& format, int max_version,
                       const fs::path& file) {
  const auto found = json_field<std::string>(j, "format", file);
  if (found != format) {
    throw Error(file.string() + ": format \"" + found + "\", expected \"" + format + "\"");
  }
  const int version = json_field<int>(j, "version", file);
  if (version < 1 || version > max_version) {
    throw Error(file.string() + ": " + format + " version " + std::to_string(version) +
                ", but this build of slope reads versions up to " + std::to_string(max_version) +
                ": use a newer slope, or run `slope prepare` again");
  }
}

}  // namespace slope::files
