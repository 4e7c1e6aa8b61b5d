// safetensors writer and validating reader (see safetensors.h).
#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <type_traits>

#include "files/atomic_file.h"
#include "files/checked_size.h"
#include "model/param_table.h"  // shape_string
#include "slope/error.h"    // slope::Error

namespace slope::io {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little,
              "safetensors is little-endian; slope reads and writes it with plain copies");

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit
constexpr size_t kHeaderAlign = 8;                 // tensors start 8-byte aligned
constexpr char kMetadataKey[] = "__metadata__";

// Bytes of a tensor of `shape` and `dtype`, or nullopt when a dimension is negative or the
// element count or the byte count does not fit 64 bits (a hostile header's "shape": [2^40, 2^40]).
std::optional<uint64_t> tensor_bytes(const std::vector<int64_t>& shape, Dtype dtype) {
  const std::optional<int64_t> n = files::shape_numel(shape);
  if (!n) return std::nullopt;
  return files::mul_fits<uint64_t>(static_cast<uint64_t>(*n), dtype_size(dtype));
}

Dtype parse_dtype(const std::string& name, const std::string& where) {
  for (Dtype d : {Dtype::F32, Dtype::F64, Dtype::I32})
    if (name == dtype_name(d)) return d;
  throw Error(where + " has dtype " + name +
              ", which slope does not read: convert the checkpoint to F32 (for example "
              "{k: v.float() for k, v in state_dict.items()})");
}

}  // namespace

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::F32:
      return "F32";
    case Dtype::F64:
      return "F64";
    case Dtype::I32:
      return "I32";
  }
  return "?";
}

size_t dtype_size(Dtype dtype) { return dtype == Dtype::F64 ? 8 : 4; }

int64_t TensorInfo::numel() const {
  // A TensorInfo comes from a validated header (its byte count fits) or from a caller.
  const std::optional<int64_t> n = files::shape_numel(shape);
  if (!n)
    throw Error("tensor " + name + ": shape " + model::shape_string(shape) +
                " has a negative dimension or more elements than 64 bits count");
  return *n;
}

void write_safetensors(const fs::path& path, std::span<const TensorView> tensors,
                       const Metadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const TensorView& t : tensors) {
    const std::string where = path.string() + ": tensor " + t.name;
    if (t.name == kMetadataKey || t.name.empty() || !names.insert(t.name).second)
      throw Error(where + ": the name is empty, reserved or repeated");
    for (int64_t d : t.shape)
      if (d < 0) throw Error(where + " has a negative dimension " + model::shape_string(t.shape));
    const std::optional<uint64_t> tb = tensor_bytes(t.shape, t.dtype);
    if (!tb) throw Error(where + ": shape " + model::shape_string(t.shape) + " is too large");
    const uint64_t bytes = *tb;
    if (!files::add_fits(offset, bytes))
      throw Error(where + ": the tensors together are more than 2^64 bytes");
    if (bytes > 0 && !t.data) throw Error(where + " has no data");
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  json.append((kHeaderAlign - (8 + json.size()) % kHeaderAlign) % kHeaderAlign, ' ');
  const uint64_t n = json.size();  // little-endian on this host (static_assert above)

  files::AtomicFile file(path);
  file.write(&n, sizeof n);
  file.write(json);
  for (const TensorView& t : tensors)
    file.write(t.data, static_cast<size_t>(*tensor_bytes(t.shape, t.dtype)));
  file.commit();
}

SafetensorsReader::SafetensorsReader(const fs::path& path) : path_(path) {
  const std::string name = path.string();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error(name + ": no such file");
  const uint64_t file_size = fs::file_size(path, ec);
  if (ec) throw Error(name + ": cannot read its size: " + ec.message());
  in_.open(path, std::ios::binary);
  if (!in_) throw Error(name + ": cannot open: " + std::strerror(errno));
  uint64_t n = 0;
  if (file_size < sizeof n || !in_.read(reinterpret_cast<char*>(&n), sizeof n))
    throw Error(name + " is not a safetensors file: it has " + std::to_string(file_size) +
                " bytes, fewer than the 8-byte header length");
  if (n > kMaxHeaderBytes || n > file_size - sizeof n)
    throw Error(name + " is truncated or not a safetensors file: its first 8 bytes announce a " +
                std::to_string(n) + "-byte header, but the file has " +
                std::to_string(file_size - sizeof n) + " bytes after them");
  std::string text(static_cast<size_t>(n), '\0');
  if (!in_.read(text.data(), static_cast<std::streamsize>(n)))
    throw Error(name + ": cannot read the header");
  data_start_ = sizeof n + n;
  const uint64_t data_size = file_size - data_start_;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e400)
    throw Error(name + " has a corrupt header (not JSON: " + e.what() +
                "): the file is damaged or not a safetensors file");
  }
  if (!header.is_object()) throw Error(name + " has a corrupt header: not a JSON object");

  for (const auto& [key, value] : header.items()) {
    const std::string where = name + ": tensor " + key;
    if (key == kMetadataKey) {
      if (!value.is_object()) throw Error(name + ": __metadata__ is not an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) throw Error(name + ": __metadata__ value " + k + " is not a string");
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    if (!value.is_object() || !value.contains("dtype") || !value["dtype"].is_string() ||
        !value.contains("shape") || !value["shape"].is_array() || !value.contains("data_offsets") ||
        !value["data_offsets"].is_array() || value["data_offsets"].size() != 2)
      throw Error(where +
                  " has a corrupt header entry: it needs a dtype, a shape and two "
                  "data_offsets");
    if (key.empty()) throw Error(name + " has a tensor with an empty name: the header is corrupt");
    TensorInfo t;
    t.name = key;
    t.dtype = parse_dtype(value["dtype"].get<std::string>(), where);
    for (const auto& d : value["shape"]) {
      // Unsigned JSON numbers reach 2^64 - 1: above int64_t's range is as corrupt as negative.
      if (!d.is_number_unsigned() ||
          d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw Error(where + " has a shape that is not a list of sizes");
      t.shape.push_back(d.get<int64_t>());
    }
    for (const auto& o : value["data_offsets"])
      if (!o.is_number_unsigned()) throw Error(where + " has data_offsets that are not sizes");
    t.begin = value["data_offsets"][0].get<uint64_t>();
    t.end = value["data_offsets"][1].get<uint64_t>();
    const std::optional<uint64_t> tb = tensor_bytes(t.shape, t.dtype);
    if (!tb)
      throw Error(where + " has shape " + model::shape_string(t.shape) + ", more bytes of " +
                  dtype_name(t.dtype) + " than 64 bits count: the header is corrupt");
    const uint64_t bytes = *tb;
    if (t.end < t.begin || t.end - t.begin != bytes)
      throw Error(where + " is inconsistent: shape " + model::shape_string(t.shape) + " of " +
                  dtype_name(t.dtype) + " is " + std::to_string(bytes) +
                  " bytes, its data_offsets are [" + std::to_string(t.begin) + ", " +
                  std::to_string(t.end) + ")");
    tensors_.push_back(std::move(t));
  }

  // The data section is exactly the tensors, back to back.
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
  uint64_t covered = 0;
  for (const TensorInfo* t : by_offset) {
    if (t->begin != covered)
      throw Error(name + ": tensor " + t->name + " starts at byte " + std::to_string(t->begin) +
                  " of the data, expected " + std::to_string(covered) +
                  " (tensors overlap or leave a gap): the header is corrupt");
    covered = t->end;
  }
  if (covered > data_size)
    throw Error(name + " is truncated: header says " + std::to_string(covered) +
                " bytes of data, file has " + std::to_string(data_size));
  if (covered < data_size)
    throw Error(name + " has " + std::to_string(data_size - covered) +
                " bytes after its last tensor: the file is corrupt or was appended to");
}

const TensorInfo* SafetensorsReader::find(std::string_view name) const {
  for (const TensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const TensorInfo& SafetensorsReader::at(std::string_view name) const {
  if (const TensorInfo* t = find(name)) return *t;
  throw Error(path_.string() + " has no tensor " + std::string(name));
}

template <class T>
void SafetensorsReader::read(std::string_view name, const std::vector<int64_t>& shape,
                             T* out) const {
  const TensorInfo& t = at(name);
  const std::string where = path_.string() + ": tensor " + t.name;
  if (t.shape != shape)
    throw Error(where + " has shape " + model::shape_string(t.shape) + ", expected " +
                model::shape_string(shape));
  constexpr bool kFloating = std::is_floating_point_v<T>;
  const bool ok =
      kFloating ? t.dtype != Dtype::I32 : (std::is_same_v<T, int32_t> && t.dtype == Dtype::I32);
  if (!ok) throw Error(where + " has dtype " + dtype_name(t.dtype) + ", which cannot be read here");
  const size_t n = static_cast<size_t>(t.numel());
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(data_start_ + t.begin));
  auto read_bytes = [&](void* dst, size_t bytes) {
    if (!in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(bytes)))
      throw Error(where + ": read failed (was the file changed while it was read?)");
  };
  if (dtype_size(t.dtype) == sizeof(T) && (kFloating == (t.dtype != Dtype::I32))) {
    read_bytes(out, n * sizeof(T));
  } else if (t.dtype == Dtype::F32) {
    std::vector<float> tmp(n);
    read_bytes(tmp.data(), n * sizeof(float));
    std::copy(tmp.begin(), tmp.end(), out);
  } else {
    std::vector<double> tmp(n);
    read_bytes(tmp.data(), n * sizeof(double));
    std::transform(tmp.begin(), tmp.end(), out, [](double x) { return static_cast<T>(x); });
  }
}

template <class T>
std::vector<T> SafetensorsReader::read(std::string_view name) const {
  const TensorInfo& t = at(name);
  std::vector<T> out(static_cast<size_t>(t.numel()));
  read(name, t.shape, out.data());
  return out;
}

template void SafetensorsReader::read<float>(std::string_view, const std::vector<int64_t>&,
                                             float*) const;
template void SafetensorsReader::read<double>(std::string_view, const std::vector<int64_t>&,
                                              double*) const;
template void SafetensorsReader::read<int32_t>(std::string_view, const std::vector<int64_t>&,
                                               int32_t*) const;
template std::vector<float> SafetensorsReader::read<float>(std::string_view) const;
template std::vector<double> SafetensorsReader::read<double>(std::string_view) const;
template std::vector<int32_t> SafetensorsReader::read<int32_t>(std::string_view) const;

}  // namespace slope::io
