// safetensors (io/safetensors.h): model.safetensors and optimizer.safetensors of a checkpoint.
//
// Input: a whole file. Invariant: a file the reader accepts, read tensor by tensor and written
// again with write_safetensors, reads back with the same names, dtypes, shapes, bytes and
// metadata.
#include <cstring>
#include <vector>

#include "fuzz_common.h"
#include "io/safetensors.h"
#include "slope/error.h"

namespace {

using slope::io::Dtype;

struct Loaded {
  slope::io::TensorInfo info;
  std::vector<unsigned char> bytes;  // the tensor's data, in its dtype
};

std::vector<unsigned char> read_bytes(const slope::io::SafetensorsReader& r,
                                      const slope::io::TensorInfo& t) {
  std::vector<unsigned char> out;
  auto copy = [&](const auto& v) {
    out.resize(v.size() * sizeof(v[0]));
    if (!out.empty()) std::memcpy(out.data(), v.data(), out.size());
  };
  switch (t.dtype) {
    case Dtype::F32:
      copy(r.read<float>(t.name));
      break;
    case Dtype::F64:
      copy(r.read<double>(t.name));
      break;
    case Dtype::I32:
      copy(r.read<int32_t>(t.name));
      break;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto in = slope::fuzz::write_scratch("in.safetensors", slope::fuzz::as_text(data, size));
  std::vector<Loaded> tensors;
  slope::io::Metadata metadata;
  try {
    const slope::io::SafetensorsReader reader(in);
    metadata = reader.metadata();
    for (const slope::io::TensorInfo& t : reader.tensors())
      tensors.push_back({t, read_bytes(reader, t)});
  } catch (const slope::Error&) {
    return 0;  // rejected with a message: what a bad file should get
  }

  for (const Loaded& t : tensors)
    FUZZ_CHECK(t.bytes.size() == t.info.end - t.info.begin, t.info.name);
  std::vector<slope::io::TensorView> views;
  for (const Loaded& t : tensors)
    views.push_back({t.info.name, t.info.dtype, t.info.shape, t.bytes.data()});
  const auto out = slope::fuzz::scratch_dir() / "out.safetensors";
  slope::io::write_safetensors(out, views, metadata);  // must not throw on what was read
  const slope::io::SafetensorsReader back(out);
  FUZZ_CHECK(back.tensors().size() == tensors.size(), "tensor count");
  FUZZ_CHECK(back.metadata() == metadata, "metadata");
  for (const Loaded& t : tensors) {
    const slope::io::TensorInfo* b = back.find(t.info.name);
    FUZZ_CHECK(b != nullptr, t.info.name);
    FUZZ_CHECK(b->dtype == t.info.dtype && b->shape == t.info.shape, t.info.name);
    FUZZ_CHECK(read_bytes(back, *b) == t.bytes, t.info.name);
  }
  return 0;
}
