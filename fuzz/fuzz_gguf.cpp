// GGUF (io/gguf.h): a file `slope import --from gguf` reads, from anywhere.
//
// Input: a whole file. Invariant: a file the reader accepts has every F32/F16 tensor readable
// (or refused with slope::Error), and written again with write_gguf (its metadata and those
// tensors) reads back with the same keys, values, names, shapes and floats (F16 widened).
#include <cmath>
#include <cstring>
#include <vector>

#include "fuzz_common.h"
#include "io/gguf.h"
#include "slope/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using slope::io::GgmlType;
  const auto in = slope::fuzz::write_scratch("in.gguf", slope::fuzz::as_text(data, size));
  std::vector<std::pair<std::string, slope::io::GgufValue>> metadata;
  std::vector<slope::io::GgufTensorInfo> infos;
  std::vector<std::vector<float>> values;
  try {
    const slope::io::GgufReader reader(in);
    for (const auto& kv : reader.metadata())
      if (kv.first != "general.alignment") metadata.push_back(kv);
    for (const auto& t : reader.tensors()) {
      if (t.type > 1 || t.numel() == 0 || t.numel() > (1 << 20)) continue;
      infos.push_back(t);
      values.push_back(reader.read_f32(t.name, t.shape));
    }
  } catch (const slope::Error&) {
    return 0;  // refused with a clear error: fine
  }
  std::vector<slope::io::GgufTensorView> views;
  for (size_t i = 0; i < infos.size(); ++i)
    views.push_back({infos[i].name, infos[i].shape, GgmlType::F32, values[i].data()});
  const auto out = slope::fuzz::write_scratch("out.gguf", "");
  slope::io::write_gguf(out, metadata, views);  // what was read writes again
  const slope::io::GgufReader again(out);
  FUZZ_CHECK(again.metadata().size() == metadata.size(), "metadata count");
  for (size_t i = 0; i < metadata.size(); ++i) {
    const auto& [key, v] = metadata[i];
    const auto& [key2, v2] = again.metadata()[i];
    FUZZ_CHECK(key == key2 && v.type == v2.type && v.scalar_type() == v2.scalar_type(), key);
    FUZZ_CHECK(v.integers == v2.integers && v.strings == v2.strings, key);
    FUZZ_CHECK(v.floats.size() == v2.floats.size(), key);
    for (size_t k = 0; k < v.floats.size(); ++k) {
      // FLOAT32 values went through float once already; NaN compares by being NaN.
      FUZZ_CHECK((std::isnan(v.floats[k]) && std::isnan(v2.floats[k])) ||
                     v.floats[k] == v2.floats[k],
                 key);
    }
  }
  for (size_t i = 0; i < infos.size(); ++i) {
    const std::vector<float> back = again.read_f32(infos[i].name, infos[i].shape);
    FUZZ_CHECK(std::memcmp(back.data(), values[i].data(), back.size() * sizeof(float)) == 0,
               infos[i].name);
  }
  return 0;
}
