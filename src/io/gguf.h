// GGUF, the file format of ggml and llama.cpp (ggml's docs/gguf.md, version 3), little-endian:
//
//   uint32 magic "GGUF" · uint32 version (3) · uint64 tensor_count · uint64 metadata_kv_count
//   metadata_kv_count × { string key · uint32 value_type · value }
//   tensor_count × { string name · uint32 n_dims · uint64 ne[n_dims] · uint32 ggml_type ·
//                    uint64 offset }
//   padding to `general.alignment` (default 32) · the tensors' data, each at its offset from
//   here, each offset a multiple of the alignment
//
// A string is uint64 length + UTF-8 bytes (no terminator); an array value is uint32 element
// type + uint64 count + the elements. ne[] is ggml's order, innermost first: a PyTorch weight of
// shape (out, in) is stored with ne = [in, out]. This header speaks PyTorch's row-major order
// (`shape`) and reverses it at the file boundary, as the gguf Python package does.
//
// The writer is atomic (files/atomic_file.h). The reader checks every count, length, type and
// offset against the file before anything is read, and names the file and what is wrong.
// slope writes and reads F32 and F16 tensors; other ggml types (quantised ones) are listed by
// the reader but refused when read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace slope::io {

// The metadata value types of GGUF (gguf_type in ggml).
enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
const char* gguf_type_name(GgufType type);  // "UINT32", ...

// The tensor types slope writes and reads (ggml_type); any other type number is listed by the
// reader under its number and refused when a tensor of it is read.
enum class GgmlType : uint32_t { F32 = 0, F16 = 1 };

// One metadata value: a scalar (one element) or an array of scalars or strings. Integers and
// bools are kept as int64_t (UINT64 as its bit pattern), floats as double, strings as strings;
// `type` says what the file holds. Nested arrays are not supported (no GGUF key of llama.cpp's
// uses them).
struct GgufValue {
  GgufType type = GgufType::UINT32;
  GgufType element_type = GgufType::UINT32;  // ARRAY: the elements' type
  std::vector<int64_t> integers;             // integer and BOOL types
  std::vector<double> floats;                // FLOAT32, FLOAT64
  std::vector<std::string> strings;          // STRING

  bool is_array() const { return type == GgufType::ARRAY; }
  GgufType scalar_type() const { return is_array() ? element_type : type; }
  size_t size() const;  // elements (1 for a scalar)

  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue f32(float v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue strings_array(std::vector<std::string> v);
  static GgufValue i32_array(std::span<const int32_t> v);
  static GgufValue f32_array(std::span<const float> v);
};

// A tensor to write: `shape` in PyTorch's row-major order, float32 data (not owned) stored as
// `type`; F16 rounds to nearest even and refuses a value beyond F16's range (±65504).
struct GgufTensorView {
  std::string name;
  std::vector<int64_t> shape;  // row-major, 1 to 4 dimensions
  GgmlType type = GgmlType::F32;
  const float* data = nullptr;
};

// Writes the metadata (in the given order; keys unique) and the tensors (names unique) as a
// GGUF v3 file with alignment 32, atomically. Throws slope::Error naming the key or tensor that
// is wrong; the old file stays then.
void write_gguf(const std::filesystem::path& path,
                const std::vector<std::pair<std::string, GgufValue>>& metadata,
                std::span<const GgufTensorView> tensors);

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // row-major (ne reversed)
  uint32_t type = 0;           // ggml_type number
  uint64_t offset = 0;         // from the start of the data section
  uint64_t bytes = 0;          // 0 for a type slope does not read
  int64_t numel() const;
};

class GgufReader {
 public:
  // Opens and validates the header, metadata and tensor table; throws slope::Error naming the
  // file and what is wrong.
  explicit GgufReader(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  uint32_t version() const { return version_; }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  const GgufValue* find(std::string_view key) const;  // null when absent
  // Typed reads of a key; each throws slope::Error naming the file and the key when it is
  // absent or holds another type (any integer type converts when its value fits).
  uint64_t get_uint(std::string_view key) const;
  double get_float(std::string_view key) const;  // FLOAT32 or FLOAT64
  const std::string& get_string(std::string_view key) const;
  const std::vector<std::string>& get_strings(std::string_view key) const;  // array of STRING
  std::vector<int64_t> get_ints(std::string_view key) const;                // array of integers

  const GgufTensorInfo* find_tensor(std::string_view name) const;  // null when absent
  // Reads an F32 or F16 tensor as float32, checking its row-major shape. Throws naming the
  // file and tensor for another shape, another type, or a failed read.
  std::vector<float> read_f32(std::string_view name, const std::vector<int64_t>& shape) const;

 private:
  std::filesystem::path path_;
  mutable std::ifstream in_;
  uint32_t version_ = 0;
  uint64_t data_start_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> key_index_, tensor_index_;
};

// IEEE binary16 conversions (round to nearest even; NaN stays NaN, overflow becomes ±inf).
uint16_t float_to_half(float x);
float half_to_float(uint16_t h);

}  // namespace slope::io
