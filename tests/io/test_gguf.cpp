// GGUF: round trip of every metadata type and of F32/F16 tensors, the byte layout llama.cpp
// expects, binary16 rounding against hand-derived bit patterns, and damaged files (each one
// clear error, never a read out of bounds). tests/python/test_mpt_export.py reads the files
// with the gguf package and llama.cpp themselves.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/temp_files.h"
#include "io/gguf.h"

namespace slope::io {
namespace {

using testing::read_bytes;
using testing::TempDir;
using testing::write_text;

using Metadata = std::vector<std::pair<std::string, GgufValue>>;

struct Sample {
  std::vector<float> w = {1.0f, -2.5f, 0.125f, 3.0f, 65504.0f, -1e-3f};  // (2, 3)
  std::vector<float> n = {0.5f, 1.5f, -0.25f};                           // (3)
  Metadata metadata() const {
    return {{"general.architecture", GgufValue::string("mpt")},
            {"a.u32", GgufValue::u32(4000000000u)},
            {"a.i32", GgufValue::i32(-7)},
            {"a.u64", GgufValue::u64(uint64_t{1} << 40)},
            {"a.f32", GgufValue::f32(0.1f)},
            {"a.bool", GgufValue::boolean(true)},
            {"a.strings", GgufValue::strings_array({"<unk>", "\u2581", "", "日本"})},
            {"a.ints", GgufValue::i32_array(std::vector<int32_t>{2, 1, -1})},
            {"a.floats", GgufValue::f32_array(std::vector<float>{0.0f, -1.5f})}};
  }
  std::vector<GgufTensorView> tensors(GgmlType type) const {
    return {{"w.weight", {2, 3}, type, w.data()}, {"n.weight", {3}, GgmlType::F32, n.data()}};
  }
};

TEST(Gguf, RoundTripsMetadataAndF32Tensors) {
  TempDir dir;
  const Sample s;
  write_gguf(dir / "m.gguf", s.metadata(), s.tensors(GgmlType::F32));
  const GgufReader r(dir / "m.gguf");
  EXPECT_EQ(r.version(), 3u);
  EXPECT_EQ(r.get_string("general.architecture"), "mpt");
  EXPECT_EQ(r.get_uint("a.u32"), 4000000000u);
  EXPECT_EQ(r.get_uint("a.u64"), uint64_t{1} << 40);
  EXPECT_EQ(r.find("a.i32")->integers[0], -7);
  EXPECT_FLOAT_EQ(static_cast<float>(r.get_float("a.f32")), 0.1f);
  EXPECT_EQ(r.find("a.bool")->type, GgufType::BOOL);
  EXPECT_EQ(r.get_strings("a.strings"), (std::vector<std::string>{"<unk>", "\u2581", "", "日本"}));
  EXPECT_EQ(r.get_ints("a.ints"), (std::vector<int64_t>{2, 1, -1}));
  EXPECT_EQ(r.find("a.floats")->floats, (std::vector<double>{0.0, -1.5}));
  ASSERT_EQ(r.tensors().size(), 2u);
  EXPECT_EQ(r.tensors()[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.tensors()[0].offset % 32, 0u);
  EXPECT_EQ(r.tensors()[1].offset % 32, 0u);
  EXPECT_EQ(r.read_f32("w.weight", {2, 3}), s.w);  // bit for bit
  EXPECT_EQ(r.read_f32("n.weight", {3}), s.n);
  EXPECT_EQ(r.find("missing"), nullptr);
  EXPECT_ERROR_CONTAINS(r.get_uint("missing"), "has no key missing");
  EXPECT_ERROR_CONTAINS(r.get_uint("a.i32"), "expected a non-negative integer");
  EXPECT_ERROR_CONTAINS(r.get_string("a.u32"), "holds UINT32, expected STRING");
  EXPECT_ERROR_CONTAINS(r.read_f32("w.weight", {3, 2}), "has shape (2, 3), expected (3, 2)");
}

// The first bytes as ggml's gguf.md lays them out, and ne[] innermost first.
TEST(Gguf, ByteLayout) {
  TempDir dir;
  const std::vector<float> w(6, 1.0f);
  write_gguf(dir / "m.gguf", {{"k", GgufValue::u32(5)}},
             std::vector<GgufTensorView>{{"t", {2, 3}, GgmlType::F32, w.data()}});
  const std::string b = read_bytes(dir / "m.gguf");
  EXPECT_EQ(b.substr(0, 4), "GGUF");
  uint32_t version;
  uint64_t n_tensors, n_kv;
  std::memcpy(&version, b.data() + 4, 4);
  std::memcpy(&n_tensors, b.data() + 8, 8);
  std::memcpy(&n_kv, b.data() + 16, 8);
  EXPECT_EQ(version, 3u);
  EXPECT_EQ(n_tensors, 1u);
  EXPECT_EQ(n_kv, 1u);
  // key "k": length 1, 'k', type UINT32 (4), value 5; then tensor "t": 2 dims, ne = [3, 2].
  size_t p = 24;
  uint64_t len;
  std::memcpy(&len, b.data() + p, 8);
  EXPECT_EQ(len, 1u);
  EXPECT_EQ(b[p + 8], 'k');
  uint32_t type, value;
  std::memcpy(&type, b.data() + p + 9, 4);
  std::memcpy(&value, b.data() + p + 13, 4);
  EXPECT_EQ(type, 4u);
  EXPECT_EQ(value, 5u);
  p += 17 + 8 + 1;  // tensor name length and "t"
  uint32_t n_dims;
  uint64_t ne[2];
  std::memcpy(&n_dims, b.data() + p, 4);
  std::memcpy(ne, b.data() + p + 4, 16);
  EXPECT_EQ(n_dims, 2u);
  EXPECT_EQ(ne[0], 3u);
  EXPECT_EQ(ne[1], 2u);
  // The data section starts at the next multiple of 32 and holds the 6 floats.
  EXPECT_EQ(b.size() % 32, 24u);  // 32-aligned start + 24 bytes of data
}

// binary16 bit patterns derived by hand (sign | exponent+15 | 10 mantissa bits).
TEST(Gguf, HalfRoundsToNearestEven) {
  EXPECT_EQ(float_to_half(0.0f), 0x0000);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);  // the largest half
  EXPECT_EQ(float_to_half(65519.99f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // the tie above 65504 rounds to even: inf
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);  // the tie at half of it: even (0)
  EXPECT_EQ(float_to_half(std::ldexp(1.5f, -25)), 0x0001);  // above the tie: up
  EXPECT_EQ(float_to_half(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 units: tie to even (2)
  // 1 + 2^-11 is the tie between 1 and 1 + 2^-10: even (1); 1 + 3·2^-11 ties up to 1 + 2^-9.
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(float_to_half(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
  // Every half survives half → float → half, and half → float is exact.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_half(f), h) << h;
  }
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(half_to_float(0x7bff), 65504.0f);
}

TEST(Gguf, F16TensorsAndTheirRange) {
  TempDir dir;
  const Sample s;
  write_gguf(dir / "m.gguf", s.metadata(), s.tensors(GgmlType::F16));
  const GgufReader r(dir / "m.gguf");
  EXPECT_EQ(r.tensors()[0].type, static_cast<uint32_t>(GgmlType::F16));
  const std::vector<float> w = r.read_f32("w.weight", {2, 3});
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(w[i], half_to_float(float_to_half(s.w[i])));
  std::vector<float> big = {1.0f, 70000.0f};
  EXPECT_ERROR_CONTAINS(
      write_gguf(dir / "big.gguf", {},
                 std::vector<GgufTensorView>{{"b", {2}, GgmlType::F16, big.data()}}),
      "beyond F16's range");
  EXPECT_FALSE(std::filesystem::exists(dir / "big.gguf"));
}

TEST(Gguf, WriterRefusesBadInput) {
  TempDir dir;
  const std::vector<float> w(4, 0.0f);
  EXPECT_ERROR_CONTAINS(
      write_gguf(dir / "a.gguf", {{"k", GgufValue::u32(1)}, {"k", GgufValue::u32(2)}}, {}),
      "given twice");
  EXPECT_ERROR_CONTAINS(
      write_gguf(dir / "a.gguf", {},
                 std::vector<GgufTensorView>{{"t", {1, 1, 1, 1, 4}, GgmlType::F32, w.data()}}),
      "GGUF holds 1 to 4");
  EXPECT_ERROR_CONTAINS(write_gguf(dir / "a.gguf", {},
                                   std::vector<GgufTensorView>{{"t", {4}, GgmlType::F32, nullptr}}),
                        "null");
  EXPECT_FALSE(std::filesystem::exists(dir / "a.gguf"));
}

// Every prefix of a valid file is refused with an error (never a crash or a read past the end).
TEST(Gguf, EveryTruncationIsAnError) {
  TempDir dir;
  const Sample s;
  write_gguf(dir / "m.gguf", s.metadata(), s.tensors(GgmlType::F32));
  const std::string bytes = read_bytes(dir / "m.gguf");
  for (size_t n = 0; n < bytes.size(); ++n) {
    write_text(dir / "t.gguf", bytes.substr(0, n));
    EXPECT_THROW(GgufReader(dir / "t.gguf"), Error) << n << " bytes";
  }
}

TEST(Gguf, DamagedHeadersAreClearErrors) {
  TempDir dir;
  const Sample s;
  write_gguf(dir / "m.gguf", s.metadata(), s.tensors(GgmlType::F32));
  const std::string good = read_bytes(dir / "m.gguf");
  auto damaged = [&](size_t at, const void* p, size_t n) {
    std::string b = good;
    std::memcpy(b.data() + at, p, n);
    write_text(dir / "d.gguf", b);
    return dir / "d.gguf";
  };
  EXPECT_ERROR_CONTAINS(GgufReader(damaged(0, "GGML", 4)), "not a GGUF file");
  const uint32_t v1 = 1;
  EXPECT_ERROR_CONTAINS(GgufReader(damaged(4, &v1, 4)), "version 1");
  const uint64_t huge = uint64_t{1} << 62;
  EXPECT_ERROR_CONTAINS(GgufReader(damaged(8, &huge, 8)), "the tensor count");
  EXPECT_ERROR_CONTAINS(GgufReader(damaged(16, &huge, 8)), "the metadata count");
  EXPECT_ERROR_CONTAINS(GgufReader(damaged(24, &huge, 8)), "only");  // the first key's length
  const uint32_t bad_type = 77;
  EXPECT_ERROR_CONTAINS(GgufReader(damaged(24 + 8 + 20, &bad_type, 4)), "value type 77");
}

}  // namespace
}  // namespace slope::io
