// GGUF v3 writer and validating reader (see gguf.h).
#include "io/gguf.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <set>

#include "files/atomic_file.h"
#include "files/checked_size.h"
#include "model/param_table.h"  // shape_string
#include "slope/error.h"

namespace slope::io {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little,
              "GGUF is little-endian; slope reads and writes it with plain copies");

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" as a little-endian uint32
constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr char kAlignmentKey[] = "general.alignment";

// Bytes of one element of a scalar metadata type; 0 for STRING and ARRAY.
size_t scalar_bytes(GgufType type) {
  switch (type) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL:
      return 1;
    case GgufType::UINT16:
    case GgufType::INT16:
      return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32:
      return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64:
      return 8;
    case GgufType::STRING:
    case GgufType::ARRAY:
      return 0;
  }
  return 0;
}

bool is_known_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }
bool is_float_type(GgufType t) { return t == GgufType::FLOAT32 || t == GgufType::FLOAT64; }
bool is_integer_type(GgufType t) {
  return scalar_bytes(t) > 0 && !is_float_type(t);  // BOOL included
}
bool is_unsigned_type(GgufType t) {
  return t == GgufType::UINT8 || t == GgufType::UINT16 || t == GgufType::UINT32 ||
         t == GgufType::UINT64 || t == GgufType::BOOL;
}

size_t ggml_type_size(uint32_t type) {
  if (type == static_cast<uint32_t>(GgmlType::F32)) return 4;
  if (type == static_cast<uint32_t>(GgmlType::F16)) return 2;
  return 0;
}

uint64_t align_up(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

// --- writing ---

class ByteSink {
 public:
  explicit ByteSink(files::AtomicFile& file) : file_(file) {}
  void raw(const void* p, size_t n) {
    file_.write(p, n);
    written_ += n;
  }
  template <class T>
  void pod(T v) {
    raw(&v, sizeof v);
  }
  void string(std::string_view s) {
    pod<uint64_t>(s.size());
    raw(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const char zeros[64] = {};
    uint64_t n = align_up(written_, alignment) - written_;
    while (n > 0) {
      const size_t k = std::min<uint64_t>(n, sizeof zeros);
      raw(zeros, k);
      n -= k;
    }
  }
  uint64_t written() const { return written_; }

 private:
  files::AtomicFile& file_;
  uint64_t written_ = 0;
};

void write_scalar(ByteSink& out, GgufType type, const GgufValue& v, size_t i) {
  switch (type) {
    case GgufType::UINT8:
      return out.pod(static_cast<uint8_t>(v.integers[i]));
    case GgufType::INT8:
      return out.pod(static_cast<int8_t>(v.integers[i]));
    case GgufType::BOOL:
      return out.pod(static_cast<uint8_t>(v.integers[i] != 0));
    case GgufType::UINT16:
      return out.pod(static_cast<uint16_t>(v.integers[i]));
    case GgufType::INT16:
      return out.pod(static_cast<int16_t>(v.integers[i]));
    case GgufType::UINT32:
      return out.pod(static_cast<uint32_t>(v.integers[i]));
    case GgufType::INT32:
      return out.pod(static_cast<int32_t>(v.integers[i]));
    case GgufType::UINT64:
      return out.pod(static_cast<uint64_t>(v.integers[i]));
    case GgufType::INT64:
      return out.pod(static_cast<int64_t>(v.integers[i]));
    case GgufType::FLOAT32:
      return out.pod(static_cast<float>(v.floats[i]));
    case GgufType::FLOAT64:
      return out.pod(v.floats[i]);
    case GgufType::STRING:
      return out.string(v.strings[i]);
    case GgufType::ARRAY:
      break;
  }
  throw Error("GGUF: nested arrays are not supported");
}

// Checks that a value built by hand holds as many elements as its type says.
void check_value(const std::string& key, const GgufValue& v) {
  const GgufType t = v.scalar_type();
  if (!is_known_type(static_cast<uint32_t>(t)) || t == GgufType::ARRAY)
    throw Error("GGUF key " + key + ": an array of arrays or an unknown type");
  const size_t n = t == GgufType::STRING ? v.strings.size()
                   : is_float_type(t)    ? v.floats.size()
                                         : v.integers.size();
  if (!v.is_array() && n != 1)
    throw Error("GGUF key " + key + ": a scalar needs exactly one element, has " +
                std::to_string(n));
}

}  // namespace

const char* gguf_type_name(GgufType type) {
  static const char* const names[] = {"UINT8",  "INT8",    "UINT16", "INT16",  "UINT32",
                                      "INT32",  "FLOAT32", "BOOL",   "STRING", "ARRAY",
                                      "UINT64", "INT64",   "FLOAT64"};
  const auto i = static_cast<uint32_t>(type);
  return i < std::size(names) ? names[i] : "unknown";
}

size_t GgufValue::size() const {
  const GgufType t = scalar_type();
  return t == GgufType::STRING ? strings.size()
         : is_float_type(t)    ? floats.size()
                               : integers.size();
}

GgufValue GgufValue::u32(uint32_t v) { return {GgufType::UINT32, GgufType::UINT32, {v}, {}, {}}; }
GgufValue GgufValue::i32(int32_t v) { return {GgufType::INT32, GgufType::INT32, {v}, {}, {}}; }
GgufValue GgufValue::u64(uint64_t v) {
  return {GgufType::UINT64, GgufType::UINT64, {static_cast<int64_t>(v)}, {}, {}};
}
GgufValue GgufValue::f32(float v) { return {GgufType::FLOAT32, GgufType::FLOAT32, {}, {v}, {}}; }
GgufValue GgufValue::boolean(bool v) { return {GgufType::BOOL, GgufType::BOOL, {v}, {}, {}}; }
GgufValue GgufValue::string(std::string v) {
  return {GgufType::STRING, GgufType::STRING, {}, {}, {std::move(v)}};
}
GgufValue GgufValue::strings_array(std::vector<std::string> v) {
  return {GgufType::ARRAY, GgufType::STRING, {}, {}, std::move(v)};
}
GgufValue GgufValue::i32_array(std::span<const int32_t> v) {
  return {GgufType::ARRAY, GgufType::INT32, {v.begin(), v.end()}, {}, {}};
}
GgufValue GgufValue::f32_array(std::span<const float> v) {
  return {GgufType::ARRAY, GgufType::FLOAT32, {}, {v.begin(), v.end()}, {}};
}

// --- binary16 (IEEE 754), bit by bit so that every compiler and ISA gives the same bits ---

uint16_t float_to_half(float x) {
  const uint32_t f = std::bit_cast<uint32_t>(x);
  const uint16_t sign = static_cast<uint16_t>((f >> 16) & 0x8000u);
  const uint32_t abs = f & 0x7fffffffu;
  if (abs >= 0x7f800000u)  // inf or NaN (a quiet NaN keeps a payload bit)
    return sign | 0x7c00u | (abs > 0x7f800000u ? 0x0200u : 0u);
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to beyond 65504: inf
  if (abs < 0x38800000u) {                        // below 2^-14: a subnormal half or zero
    if (abs < 0x33000000u) return sign;           // below 2^-25: rounds to 0
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(abs >> 23);  // 14..24 (+ 13 - 23 bits)
    const uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    const uint32_t r = q + (rem > half || (rem == half && (q & 1u)));
    return sign | static_cast<uint16_t>(r);
  }
  // Normal: rebias the exponent (127 → 15), round the 13 dropped bits to nearest even; a carry
  // into the exponent is the correct rounding up.
  const uint32_t rebased = abs - 0x38000000u;
  const uint32_t q = rebased >> 13, rem = rebased & 0x1fffu;
  return sign | static_cast<uint16_t>(q + (rem > 0x1000u || (rem == 0x1000u && (q & 1u))));
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {  // zero or subnormal: mant · 2^-24, exact in float
    const float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

void write_gguf(const fs::path& path,
                const std::vector<std::pair<std::string, GgufValue>>& metadata,
                std::span<const GgufTensorView> tensors) {
  const std::string where = path.string();
  std::set<std::string, std::less<>> keys, names;
  for (const auto& [key, value] : metadata) {
    if (!keys.insert(key).second) throw Error(where + ": GGUF key " + key + " given twice");
    if (key == kAlignmentKey)
      throw Error(where + ": slope writes GGUF with the default alignment; do not set " + key);
    check_value(key, value);
  }
  // The tensor table first: offsets and byte counts, checked before anything is written.
  std::vector<uint64_t> offsets;
  uint64_t offset = 0;
  for (const GgufTensorView& t : tensors) {
    const std::string what = where + ": tensor " + t.name;
    if (!names.insert(t.name).second) throw Error(what + " given twice");
    if (t.shape.empty() || t.shape.size() > kMaxDims)
      throw Error(what + " has " + std::to_string(t.shape.size()) +
                  " dimensions; GGUF holds 1 to 4");
    const std::optional<int64_t> n = files::shape_numel(t.shape);
    if (!n || *n == 0 || t.data == nullptr)
      throw Error(what + ": shape " + model::shape_string(t.shape) +
                  " is empty, negative or "
                  "too large, or the data pointer is null");
    offset = align_up(offset, kDefaultAlignment);
    offsets.push_back(offset);
    offset += static_cast<uint64_t>(*n) * ggml_type_size(static_cast<uint32_t>(t.type));
  }

  files::AtomicFile file(path);
  ByteSink out(file);
  out.pod(kMagic);
  out.pod(kVersion);
  out.pod<uint64_t>(tensors.size());
  out.pod<uint64_t>(metadata.size());
  for (const auto& [key, v] : metadata) {
    out.string(key);
    out.pod(static_cast<uint32_t>(v.type));
    if (v.is_array()) {
      out.pod(static_cast<uint32_t>(v.element_type));
      out.pod<uint64_t>(v.size());
    }
    for (size_t i = 0; i < v.size(); ++i) write_scalar(out, v.scalar_type(), v, i);
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorView& t = tensors[i];
    out.string(t.name);
    out.pod<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) out.pod<uint64_t>(*d);
    out.pod(static_cast<uint32_t>(t.type));
    out.pod<uint64_t>(offsets[i]);
  }
  out.pad_to(kDefaultAlignment);
  const uint64_t data_start = out.written();
  std::vector<uint16_t> halves;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorView& t = tensors[i];
    out.pad_to(kDefaultAlignment);
    if (out.written() - data_start != offsets[i])
      throw Error(where + ": internal error, tensor " + t.name + " is not at its offset");
    const size_t n = static_cast<size_t>(*files::shape_numel(t.shape));
    if (t.type == GgmlType::F32) {
      out.raw(t.data, n * sizeof(float));
      continue;
    }
    halves.resize(n);
    for (size_t k = 0; k < n; ++k) {
      if (std::isfinite(t.data[k]) && std::fabs(t.data[k]) > 65504.0f)
        throw Error(where + ": tensor " + t.name + " holds " + std::to_string(t.data[k]) +
                    ", beyond F16's range (65504): write it as F32");
      halves[k] = float_to_half(t.data[k]);
    }
    out.raw(halves.data(), n * sizeof(uint16_t));
  }
  file.commit();
}

// --- reading ---

int64_t GgufTensorInfo::numel() const { return *files::shape_numel(shape); }

namespace {

// Sequential reads of the header with every length checked against the bytes left in the file.
class HeaderCursor {
 public:
  HeaderCursor(std::ifstream& in, uint64_t file_size, std::string where)
      : in_(in), left_(file_size), where_(std::move(where)) {}

  void raw(void* p, uint64_t n, const char* what) {
    if (n > left_)
      throw Error(where_ + " is truncated: " + what + " needs " + std::to_string(n) + " bytes, " +
                  std::to_string(left_) + " are left");
    in_.read(static_cast<char*>(p), static_cast<std::streamsize>(n));
    if (!in_) throw Error(where_ + ": read failed in " + what);
    left_ -= n;
  }
  template <class T>
  T pod(const char* what) {
    T v;
    raw(&v, sizeof v, what);
    return v;
  }
  std::string string(const char* what) {
    const uint64_t n = pod<uint64_t>(what);
    if (n > left_)
      throw Error(where_ + ": " + what + " says " + std::to_string(n) + " bytes, but only " +
                  std::to_string(left_) + " are left in the file");
    std::string s(n, '\0');
    raw(s.data(), n, what);
    return s;
  }
  // Refuses a count of elements of at least `min_bytes` each that the file cannot hold (so that
  // a hostile count never allocates).
  void check_count(uint64_t count, uint64_t min_bytes, const std::string& what) const {
    if (min_bytes > 0 && count > left_ / min_bytes)
      throw Error(where_ + ": " + what + " says " + std::to_string(count) +
                  " entries, more than the " + std::to_string(left_) + " bytes left can hold");
  }
  uint64_t left() const { return left_; }

 private:
  std::ifstream& in_;
  uint64_t left_;
  std::string where_;
};

void read_scalar(HeaderCursor& in, GgufType type, GgufValue& v) {
  switch (type) {
    case GgufType::UINT8:
      return v.integers.push_back(in.pod<uint8_t>("a UINT8"));
    case GgufType::INT8:
      return v.integers.push_back(in.pod<int8_t>("an INT8"));
    case GgufType::BOOL:
      return v.integers.push_back(in.pod<uint8_t>("a BOOL") != 0);
    case GgufType::UINT16:
      return v.integers.push_back(in.pod<uint16_t>("a UINT16"));
    case GgufType::INT16:
      return v.integers.push_back(in.pod<int16_t>("an INT16"));
    case GgufType::UINT32:
      return v.integers.push_back(in.pod<uint32_t>("a UINT32"));
    case GgufType::INT32:
      return v.integers.push_back(in.pod<int32_t>("an INT32"));
    case GgufType::UINT64:
      return v.integers.push_back(static_cast<int64_t>(in.pod<uint64_t>("a UINT64")));
    case GgufType::INT64:
      return v.integers.push_back(in.pod<int64_t>("an INT64"));
    case GgufType::FLOAT32:
      return v.floats.push_back(in.pod<float>("a FLOAT32"));
    case GgufType::FLOAT64:
      return v.floats.push_back(in.pod<double>("a FLOAT64"));
    case GgufType::STRING:
      return v.strings.push_back(in.string("a string"));
    case GgufType::ARRAY:
      break;
  }
}

}  // namespace

GgufReader::GgufReader(const fs::path& path) : path_(path) {
  const std::string where = path.string();
  std::error_code ec;
  const uint64_t file_size = fs::file_size(path, ec);
  if (ec) throw Error(where + ": cannot read (" + ec.message() + ")");
  in_.open(path, std::ios::binary);
  if (!in_) throw Error(where + ": cannot open");
  HeaderCursor in(in_, file_size, where);

  if (in.pod<uint32_t>("the magic number") != kMagic)
    throw Error(where + " is not a GGUF file (its first 4 bytes are not \"GGUF\")");
  version_ = in.pod<uint32_t>("the version");
  if (version_ != 2 && version_ != 3)
    throw Error(where + " is GGUF version " + std::to_string(version_) +
                "; slope reads versions 2 and 3 (convert with llama.cpp's tools)");
  const uint64_t n_tensors = in.pod<uint64_t>("the tensor count");
  const uint64_t n_kv = in.pod<uint64_t>("the metadata count");
  // Smallest metadata entry: key length (8) + type (4) + a one-byte value.
  in.check_count(n_kv, 13, "the metadata count");
  metadata_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = in.string("a metadata key");
    const std::string what = where + ": key " + key;
    if (key_index_.count(key)) throw Error(what + " appears twice");
    GgufValue v;
    const uint32_t type = in.pod<uint32_t>("a value type");
    if (!is_known_type(type))
      throw Error(what + " has value type " + std::to_string(type) +
                  ", which GGUF does not define");
    v.type = static_cast<GgufType>(type);
    v.element_type = v.type;
    uint64_t count = 1;
    if (v.is_array()) {
      const uint32_t et = in.pod<uint32_t>("an array's element type");
      if (!is_known_type(et) || et == static_cast<uint32_t>(GgufType::ARRAY))
        throw Error(what + " is an array of type " + std::to_string(et) +
                    ": slope reads arrays of scalars and strings");
      v.element_type = static_cast<GgufType>(et);
      count = in.pod<uint64_t>("an array's length");
      const size_t bytes = scalar_bytes(v.element_type);
      in.check_count(count, bytes > 0 ? bytes : 8, "the array of key " + key);
    }
    for (uint64_t k = 0; k < count; ++k) read_scalar(in, v.scalar_type(), v);
    key_index_.emplace(key, metadata_.size());
    metadata_.emplace_back(std::move(key), std::move(v));
  }

  uint64_t alignment = kDefaultAlignment;
  if (find(kAlignmentKey)) {
    alignment = get_uint(kAlignmentKey);
    if (alignment == 0 || !std::has_single_bit(alignment) || alignment > (1u << 20))
      throw Error(where + ": general.alignment " + std::to_string(alignment) +
                  " is not a power of two up to 2^20");
  }

  // Smallest tensor entry: name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8).
  in.check_count(n_tensors, 32, "the tensor count");
  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = in.string("a tensor name");
    const std::string what = where + ": tensor " + t.name;
    if (tensor_index_.count(t.name)) throw Error(what + " appears twice");
    const uint32_t n_dims = in.pod<uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      throw Error(what + " has " + std::to_string(n_dims) + " dimensions; GGUF holds 1 to 4");
    t.shape.resize(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = in.pod<uint64_t>("a tensor dimension");
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw Error(what + " has a dimension of " + std::to_string(ne));
      t.shape[n_dims - 1 - d] = static_cast<int64_t>(ne);
    }
    t.type = in.pod<uint32_t>("a tensor type");
    t.offset = in.pod<uint64_t>("a tensor offset");
    if (t.offset % alignment != 0)
      throw Error(what + " starts at offset " + std::to_string(t.offset) +
                  ", not a multiple of the alignment " + std::to_string(alignment));
    const std::optional<int64_t> n = files::shape_numel(t.shape);
    if (!n) throw Error(what + ": shape " + model::shape_string(t.shape) + " is too large");
    const std::optional<uint64_t> bytes =
        files::mul_fits<uint64_t>(static_cast<uint64_t>(*n), ggml_type_size(t.type));
    if (!bytes) throw Error(what + ": shape " + model::shape_string(t.shape) + " is too large");
    t.bytes = *bytes;
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }
  data_start_ = align_up(file_size - in.left(), alignment);
  for (const GgufTensorInfo& t : tensors_) {
    const std::optional<uint64_t> end = files::add_fits(data_start_, t.offset);
    const std::optional<uint64_t> last = end ? files::add_fits(*end, t.bytes) : std::nullopt;
    if (!last || *last > file_size)
      throw Error(where + " is truncated: tensor " + t.name + " ends past the end of the file");
  }
}

const GgufValue* GgufReader::find(std::string_view key) const {
  const auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
}

namespace {
const GgufValue& need(const GgufReader& r, std::string_view key) {
  const GgufValue* v = r.find(key);
  if (!v)
    throw Error(r.path().string() + " has no key " + std::string(key) +
                " (is it a file of the expected architecture?)");
  return *v;
}
Error wrong_type(const GgufReader& r, std::string_view key, const GgufValue& v, const char* want) {
  std::string got = gguf_type_name(v.type);
  if (v.is_array()) got += std::string(" of ") + gguf_type_name(v.element_type);
  return Error(r.path().string() + ": key " + std::string(key) + " holds " + got + ", expected " +
               want);
}
}  // namespace

uint64_t GgufReader::get_uint(std::string_view key) const {
  const GgufValue& v = need(*this, key);
  if (v.is_array() || !is_integer_type(v.type) || (!is_unsigned_type(v.type) && v.integers[0] < 0))
    throw wrong_type(*this, key, v, "a non-negative integer");
  return static_cast<uint64_t>(v.integers[0]);
}

double GgufReader::get_float(std::string_view key) const {
  const GgufValue& v = need(*this, key);
  if (v.is_array() || !is_float_type(v.type)) throw wrong_type(*this, key, v, "FLOAT32");
  return v.floats[0];
}

const std::string& GgufReader::get_string(std::string_view key) const {
  const GgufValue& v = need(*this, key);
  if (v.type != GgufType::STRING) throw wrong_type(*this, key, v, "STRING");
  return v.strings[0];
}

const std::vector<std::string>& GgufReader::get_strings(std::string_view key) const {
  const GgufValue& v = need(*this, key);
  if (!v.is_array() || v.element_type != GgufType::STRING)
    throw wrong_type(*this, key, v, "ARRAY of STRING");
  return v.strings;
}

std::vector<int64_t> GgufReader::get_ints(std::string_view key) const {
  const GgufValue& v = need(*this, key);
  if (!v.is_array() || !is_integer_type(v.element_type))
    throw wrong_type(*this, key, v, "ARRAY of integers");
  return v.integers;
}

const GgufTensorInfo* GgufReader::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::vector<float> GgufReader::read_f32(std::string_view name,
                                        const std::vector<int64_t>& shape) const {
  const GgufTensorInfo* t = find_tensor(name);
  const std::string what = path_.string() + ": tensor " + std::string(name);
  if (!t) throw Error(path_.string() + " has no tensor " + std::string(name));
  if (t->shape != shape)
    throw Error(what + " has shape " + model::shape_string(t->shape) + ", expected " +
                model::shape_string(shape));
  if (ggml_type_size(t->type) == 0)
    throw Error(what + " has ggml type " + std::to_string(t->type) +
                ": slope reads F32 (0) and F16 (1) only (dequantise with llama.cpp first)");
  const size_t n = static_cast<size_t>(t->numel());
  std::vector<float> out(n);
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(data_start_ + t->offset));
  if (t->type == static_cast<uint32_t>(GgmlType::F32)) {
    in_.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n * 4));
  } else {
    std::vector<uint16_t> halves(n);
    in_.read(reinterpret_cast<char*>(halves.data()), static_cast<std::streamsize>(n * 2));
    for (size_t i = 0; i < n; ++i) out[i] = half_to_float(halves[i]);
  }
  if (!in_) throw Error(what + ": read failed");
  return out;
}

}  // namespace slope::io
