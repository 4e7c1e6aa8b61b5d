// safetensors (https://github.com/huggingface/safetensors), the format PyTorch users load:
//
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   JSON: {"__metadata__": {str: str}?, NAME: {"dtype": "F32", "shape": [..],
//             "data_offsets": [begin, end]}, ...}, padded with spaces to a multiple of 8
//   the rest  the tensors' bytes, row-major little-endian, at [begin, end) from here; no gaps,
//             no overlaps, nothing after the last one
//
// The writer is atomic (files/atomic_file.h). The reader checks everything above before any
// tensor is read and says what is wrong with a file ("model.safetensors is truncated: header
// says 1234 bytes of data, file has 1000").
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

enum class Dtype { F32, F64, I32 };

const char* dtype_name(Dtype dtype);  // "F32", "F64", "I32"
size_t dtype_size(Dtype dtype);       // bytes per element

// A tensor to write: numel(shape) elements of dtype at data (not owned).
struct TensorView {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;  // () is a scalar of one element
  const void* data = nullptr;
};

using Metadata = std::map<std::string, std::string>;

// Writes the tensors in the given order, atomically. Throws slope::Error for a repeated or
// reserved name ("__metadata__"), a negative dimension, a null pointer, or a failed write
// (the old file stays then).
void write_safetensors(const std::filesystem::path& path, std::span<const TensorView> tensors,
                       const Metadata& metadata = {});

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets in the data section
  int64_t numel() const;
};

class SafetensorsReader {
 public:
  // Opens and validates the file; throws slope::Error naming it and what is wrong.
  explicit SafetensorsReader(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
  const Metadata& metadata() const { return metadata_; }
  const TensorInfo* find(std::string_view name) const;  // null when absent
  const TensorInfo& at(std::string_view name) const;    // throws naming the file and tensor

  // Reads a tensor into out (numel(shape) elements), checking its shape. Floating types
  // convert (F32 ↔ F64, F64 → float rounds); I32 reads into int32_t only.
  template <class T>
  void read(std::string_view name, const std::vector<int64_t>& shape, T* out) const;
  // The whole tensor, whatever its shape.
  template <class T>
  std::vector<T> read(std::string_view name) const;

 private:
  std::filesystem::path path_;
  mutable std::ifstream in_;
  uint64_t data_start_ = 0;  // 8 + N
  std::vector<TensorInfo> tensors_;
  Metadata metadata_;
};

}  // namespace slope::io
