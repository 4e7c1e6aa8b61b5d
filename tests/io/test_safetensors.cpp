// safetensors: round trip, the byte layout, and every kind of damaged file; atomic writes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/temp_files.h"
#include "files/atomic_file.h"
#include "io/safetensors.h"
#include "slope/attention.h"

namespace slope::io {
namespace {

namespace fs = std::filesystem;
using testing::read_bytes;
using testing::TempDir;
using testing::write_text;

struct Sample {
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -7.0f};
  std::vector<double> b = {0.1, -0.2};
  std::vector<int32_t> c = {-1, 2, 2147483647};
  float scalar = 42.0f;
  std::vector<TensorView> views() const {
    return {{"a", Dtype::F32, {2, 3}, a.data()},
            {"b.weight", Dtype::F64, {2}, b.data()},
            {"c", Dtype::I32, {3, 1}, c.data()},
            {"s", Dtype::F32, {}, &scalar}};
  }
};

// The bytes of a file with a given header and data section.
std::string file_bytes(const std::string& header, size_t data_bytes) {
  const uint64_t n = header.size();
  std::string s(reinterpret_cast<const char*>(&n), 8);
  return s + header + std::string(data_bytes, '\0');
}

TEST(Safetensors, RoundTrip) {
  TempDir dir;
  const fs::path path = dir / "x.safetensors";
  const Sample s;
  write_safetensors(path, s.views(), {{"format", "pt"}});
  const SafetensorsReader r(path);
  ASSERT_EQ(r.tensors().size(), 4u);
  EXPECT_EQ(r.metadata().at("format"), "pt");
  EXPECT_EQ(r.tensors()[0].name, "a");  // file order = write order
  EXPECT_EQ(r.read<float>("a"), s.a);
  EXPECT_EQ(r.read<double>("b.weight"), s.b);
  EXPECT_EQ(r.read<int32_t>("c"), s.c);
  EXPECT_EQ(r.read<float>("s"), std::vector<float>{42.0f});
  EXPECT_EQ(r.at("s").shape, std::vector<int64_t>{});
  // Floating types convert; shapes are checked.
  std::vector<double> a64(6);
  r.read<double>("a", {2, 3}, a64.data());
  EXPECT_EQ(a64[4], static_cast<double>(1e-30f));
  std::vector<float> wrong(6);
  EXPECT_ERROR_CONTAINS(r.read<float>("a", {3, 2}, wrong.data()),
                        "has shape (2, 3), expected (3, 2)");
  EXPECT_ERROR_CONTAINS(r.read<float>("c"), "dtype I32");
  EXPECT_ERROR_CONTAINS(r.at("missing"), "has no tensor missing");
}

TEST(Safetensors, ByteLayout) {
  TempDir dir;
  const fs::path path = dir / "x.safetensors";
  const std::vector<float> a = {1.0f, 2.0f};
  write_safetensors(path, std::vector<TensorView>{{"a", Dtype::F32, {2}, a.data()}});
  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u) << "tensors start 8-byte aligned";
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.substr(0, header.find_last_not_of(' ') + 1),
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})");
  ASSERT_EQ(bytes.size(), 8 + n + 8);
  float back[2];
  std::memcpy(back, bytes.data() + 8 + n, 8);
  EXPECT_EQ(back[1], 2.0f);
}

TEST(Safetensors, WriterRejectsBadTensors) {
  TempDir dir;
  const float x = 1.0f;
  EXPECT_ERROR_CONTAINS(
      write_safetensors(
          dir / "x", std::vector<TensorView>{{"a", Dtype::F32, {}, &x}, {"a", Dtype::F32, {}, &x}}),
      "repeated");
  EXPECT_ERROR_CONTAINS(
      write_safetensors(dir / "x", std::vector<TensorView>{{"a", Dtype::F32, {1}, nullptr}}),
      "no data");
  EXPECT_FALSE(fs::exists(dir / "x"));
}

TEST(Safetensors, TruncatedFile) {
  TempDir dir;
  const fs::path path = dir / "model.safetensors";
  const std::vector<float> a(300, 1.0f);
  write_safetensors(path, std::vector<TensorView>{{"a", Dtype::F32, {300}, a.data()}});
  const uintmax_t size = fs::file_size(path);
  fs::resize_file(path, size - 200);
  EXPECT_ERROR_CONTAINS(SafetensorsReader{path},
                        "model.safetensors is truncated: header says 1200 bytes of data, file "
                        "has 1000");
  fs::resize_file(path, 20);  // inside the header
  EXPECT_ERROR_CONTAINS(SafetensorsReader{path}, "truncated or not a safetensors file");
  fs::resize_file(path, 5);
  EXPECT_ERROR_CONTAINS(SafetensorsReader{path}, "fewer than the 8-byte header length");
  EXPECT_ERROR_CONTAINS(SafetensorsReader{dir / "absent.safetensors"}, "no such file");
}

TEST(Safetensors, CorruptHeaders) {
  TempDir dir;
  const fs::path path = dir / "bad.safetensors";
  auto expect = [&](const std::string& header, size_t data, const std::string& needle) {
    write_text(path, file_bytes(header, data));
    EXPECT_ERROR_CONTAINS(SafetensorsReader{path}, needle);
  };
  expect(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8])", 8, "not JSON");
  expect("[1, 2]", 0, "not a JSON object");
  expect(R"({"a": {"dtype": "F32", "shape": [2]}})", 8, "needs a dtype, a shape and two");
  expect(R"({"a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}})", 4,
         "dtype BF16, which slope does not read");
  expect(R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8,
         "not a list of sizes");
  expect(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8,
         "shape (3,) of F32 is 12 bytes, its data_offsets are [0, 8)");
  expect(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", 16,
         "overlap or leave a gap");
  expect(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
         12, "overlap or leave a gap");
  expect(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 12,
         "4 bytes after its last tensor");
  expect(R"({"__metadata__": {"format": 1}})", 0, "is not a string");
  // A length prefix from another format: absurdly large.
  write_text(path, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "xxxx");
  EXPECT_ERROR_CONTAINS(SafetensorsReader{path}, "not a safetensors file");
}

// Issue 17 (and fuzz/fuzz_safetensors.cpp): every size in a header is a product or a sum of
// numbers from the file. None may overflow (the shape product did: UBSan aborted on a shape of
// (2^32, 2^32), a release build wrapped it to 0 bytes); each is an error naming the tensor.
TEST(Safetensors, SizesThatOverflowAreErrors) {
  TempDir dir;
  const fs::path path = dir / "bad.safetensors";
  auto expect = [&](const std::string& header, size_t data, const std::string& needle) {
    write_text(path, file_bytes(header, data));
    EXPECT_ERROR_CONTAINS(SafetensorsReader{path}, needle);
  };
  expect(R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", 0,
         "tensor a has shape (4294967296, 4294967296), more bytes of F32 than 64 bits count");
  // 2^62 elements fit int64_t, their bytes do not fit uint64_t.
  expect(R"({"a": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 0]}})", 0,
         "more bytes of F32 than 64 bits count");
  expect(R"({"a": {"dtype": "F64", "shape": [18446744073709551615], "data_offsets": [0, 8]}})", 8,
         "tensor a has a shape that is not a list of sizes");
  expect(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551615, 3]}})", 4,
         "its data_offsets are [18446744073709551615, 3)");
  // A number beyond double: nlohmann's out_of_range, which escaped the reader (parse_error only).
  expect(R"({"a": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 4]}})", 4,
         "has a corrupt header (not JSON");
  // The writer refuses an empty name; the reader refuses what the writer cannot write.
  expect(R"({"": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 4,
         "a tensor with an empty name");
  const std::vector<TensorView> huge = {
      {"a", Dtype::F32, {int64_t{1} << 40, int64_t{1} << 40}, nullptr}};
  EXPECT_ERROR_CONTAINS(write_safetensors(dir / "w.safetensors", huge), "is too large");
}

std::vector<fs::path> entries(const fs::path& dir) {
  std::vector<fs::path> v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename());
  return v;
}

TEST(AtomicFile, UncommittedLeavesTheOldFile) {
  TempDir dir;
  const fs::path path = dir / "model.safetensors";
  write_text(path, "old contents");
  {
    files::AtomicFile f(path);
    f.write("new, half written");
    EXPECT_TRUE(fs::exists(f.temp_path()));
    // An exception here (bad tensor, full disk) destroys f without commit().
  }
  EXPECT_EQ(read_bytes(path), "old contents");
  EXPECT_EQ(entries(dir.path()), std::vector<fs::path>{"model.safetensors"})
      << "the temporary file is removed";
  files::AtomicFile f(path);
  f.write("new");
  f.commit();
  EXPECT_EQ(read_bytes(path), "new");
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::others_read, fs::perms::others_read);
  EXPECT_THROW(f.commit(), Error);
}

// A write that really fails half way (the file-size limit: EFBIG, as a full disk gives ENOSPC)
// throws, keeps the old checkpoint and leaves no temporary file behind.
TEST(AtomicFile, FailedWriteLeavesTheOldFile) {
  TempDir dir;
  const fs::path path = dir / "model.safetensors";
  write_text(path, "old contents");
  const std::vector<float> big(100000, 1.0f);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of the signal
  rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    write_safetensors(path, std::vector<TensorView>{{"w", Dtype::F32, {100000}, big.data()}});
  } catch (const Error& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, old_handler);
  EXPECT_NE(message.find("cannot write"), std::string::npos) << message;
  EXPECT_EQ(read_bytes(path), "old contents");
  EXPECT_EQ(entries(dir.path()), std::vector<fs::path>{"model.safetensors"});
  EXPECT_ERROR_CONTAINS(files::AtomicFile{dir / "no-such-dir" / "x"}, "cannot create a temporary file");
}

}  // namespace
}  // namespace slope::io
