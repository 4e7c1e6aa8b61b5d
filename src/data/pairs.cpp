// Pair vocabularies, the pair shard format and opening a prepared pairs directory (pairs.h).
#include "data/pairs.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <set>
#include <string>

#include "files/atomic_file.h"
#include "files/read_file.h"
#include "files/json_file.h"
#include "data/utf8.h"
#include "slope/attention.h"

namespace slope::data {
namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little,
              "pair shards assume a little-endian host");

namespace {

constexpr size_t kChecksummedHeaderBytes = 40;  // the checksum covers the header up to itself
constexpr uint32_t kMaxId16 = 65536;            // ids are stored as uint16
constexpr uint64_t kMaxLen16 = 65535;

void put16(std::string& out, uint64_t v) {
  const auto x = static_cast<uint16_t>(v);
  out.append(reinterpret_cast<const char*>(&x), sizeof x);
}

template <typename T>
void store(unsigned char* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

template <typename T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Reads records from the payload, throwing "corrupt" when one runs past its end.
class Cursor {
 public:
  Cursor(const std::string& name, const unsigned char* p, size_t n) : name_(name), p_(p), n_(n) {}
  const unsigned char* take(size_t bytes, uint64_t record) {
    if (bytes > n_ - pos_) {
      throw Error(name_ + ": record " + std::to_string(record) +
                  " runs past the end of the payload: the file is corrupt");
    }
    const unsigned char* at = p_ + pos_;
    pos_ += bytes;
    return at;
  }
  uint16_t u16(uint64_t record) { return load<uint16_t>(take(2, record)); }
  size_t left() const { return n_ - pos_; }

 private:
  const std::string& name_;
  const unsigned char* p_;
  size_t n_, pos_ = 0;
};

}  // namespace

PairVocab read_pair_vocab(const fs::path& path) {
  const nlohmann::json j = files::read_json_file(path);
  files::check_json_format(j, "slope-pair-vocab", kPreparedPairsVersion, path);
  PairVocab vocab;
  vocab.tokens = files::json_field<std::vector<std::string>>(j, "tokens", path);
  if (vocab.tokens.empty()) throw Error(path.string() + ": the vocabulary holds no tokens");
  std::set<std::string> seen;
  for (const std::string& t : vocab.tokens) {
    if (t.empty() || !seen.insert(t).second) {
      throw Error(path.string() + ": token \"" + t +
                  "\" is empty or repeated: the file is corrupt");
    }
  }
  return vocab;
}

void write_pair_vocab(const fs::path& path, const PairVocab& vocab) {
  files::write_json_file(path, {{"format", "slope-pair-vocab"},
                         {"version", kPreparedPairsVersion},
                         {"tokens", vocab.tokens}});
}

int32_t PairVocab::id(std::string_view token) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == token) return static_cast<int32_t>(i);
  }
  return -1;
}

const std::string& PairVocab::token(int32_t id) const {
  if (id < 0 || id >= size()) {
    throw Error("id " + std::to_string(id) + " is outside the vocabulary of " +
                std::to_string(size()) + " tokens");
  }
  return tokens[static_cast<size_t>(id)];
}

std::string PairVocab::decode(const std::vector<int32_t>& ids, std::string_view sep) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += sep;
    out += token(ids[i]);
  }
  return out;
}

std::vector<int32_t> encode_word(const PairVocab& src_vocab, std::string_view word) {
  std::vector<int32_t> ids;
  std::string ch;
  for (size_t pos = 0; pos < word.size();) {
    const size_t begin = pos;
    utf8_next(word, pos);
    ch.assign(word.substr(begin, pos - begin));
    if (ch.size() == 1 && ch[0] >= 'A' && ch[0] <= 'Z')
      ch[0] = static_cast<char>(ch[0] - 'A' + 'a');
    const int32_t id = src_vocab.id(ch);
    ids.push_back(id >= 0 ? id : kSrcUnk);
  }
  return ids;
}

void write_pair_shard(const fs::path& path, const std::vector<PairExample>& examples,
                      uint32_t src_vocab_size, uint32_t tgt_vocab_size) {
  const std::string name = path.string();
  if (src_vocab_size == 0 || src_vocab_size > kMaxId16 || tgt_vocab_size <= kEos + 1u ||
      tgt_vocab_size > kMaxId16) {
    throw Error(name + ": vocab sizes " + std::to_string(src_vocab_size) + " (source) and " +
                std::to_string(tgt_vocab_size) +
                " (target) do not fit a pair shard: 1..65536 and 3..65536");
  }
  std::string bytes(kPairShardHeaderBytes, '\0');
  for (size_t e = 0; e < examples.size(); ++e) {
    const PairExample& x = examples[e];
    const std::string where = name + ": word " + std::to_string(e) + " \"" + x.word + "\"";
    if (x.word.empty() || x.word.size() > kMaxLen16 || x.src.empty() || x.src.size() > kMaxLen16 ||
        x.prons.empty() || x.prons.size() > kMaxLen16) {
      throw Error(where + ": the word, its ids and its pronunciations must number 1..65535");
    }
    put16(bytes, x.word.size());
    put16(bytes, x.src.size());
    put16(bytes, x.prons.size());
    bytes += x.word;
    for (const int32_t id : x.src) {
      if (id < 0 || static_cast<uint32_t>(id) >= src_vocab_size) {
        throw Error(where + ": source id " + std::to_string(id) + " is outside [0, " +
                    std::to_string(src_vocab_size) + ")");
      }
      put16(bytes, static_cast<uint64_t>(id));
    }
    for (const std::vector<int32_t>& pron : x.prons) {
      if (pron.empty() || pron.size() > kMaxLen16) {
        throw Error(where + ": a pronunciation must have 1..65535 phonemes");
      }
      put16(bytes, pron.size());
      for (const int32_t id : pron) {
        if (id <= kEos || static_cast<uint32_t>(id) >= tgt_vocab_size) {
          throw Error(where + ": phoneme id " + std::to_string(id) + " is outside [2, " +
                      std::to_string(tgt_vocab_size) + ")");
        }
        put16(bytes, static_cast<uint64_t>(id));
      }
    }
  }
  auto* p = reinterpret_cast<unsigned char*>(bytes.data());
  const uint64_t payload = bytes.size() - kPairShardHeaderBytes;
  std::memcpy(p, kPairShardMagic, sizeof kPairShardMagic);
  store<uint32_t>(p + 8, kPairShardVersion);
  store<uint32_t>(p + 12, src_vocab_size);
  store<uint32_t>(p + 16, tgt_vocab_size);
  store<uint64_t>(p + 24, examples.size());
  store<uint64_t>(p + 32, payload);
  uint64_t h = files::fnv1a64(p, kChecksummedHeaderBytes);
  h = files::fnv1a64(p + kPairShardHeaderBytes, payload, h);
  store<uint64_t>(p + 40, h);
  files::write_file_atomic(path, bytes);
}

PairShard read_pair_shard(const fs::path& path) {
  const std::string name = path.string();
  const std::string bytes = files::read_file(path);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t magic_seen = std::min(bytes.size(), sizeof kPairShardMagic);
  if (bytes.empty() || std::memcmp(p, kPairShardMagic, magic_seen) != 0) {
    throw Error(name + ": not a slope pair shard (it does not start with \"SLOPEPAR\")");
  }
  if (bytes.size() < kPairShardHeaderBytes) {
    throw Error(name + ": pair shard is truncated: expected at least " +
                std::to_string(kPairShardHeaderBytes) + " bytes of header, found " +
                std::to_string(bytes.size()));
  }
  const auto version = load<uint32_t>(p + 8);
  if (version == 0 || version > kPairShardVersion) {
    throw Error(name + ": pair shard format version " + std::to_string(version) +
                ", but this build of slope reads version " + std::to_string(kPairShardVersion) +
                ": use a newer slope, or run `slope prepare --task g2p` again");
  }
  PairShard shard;
  shard.src_vocab_size = load<uint32_t>(p + 12);
  shard.tgt_vocab_size = load<uint32_t>(p + 16);
  const auto count = load<uint64_t>(p + 24);
  const auto payload = load<uint64_t>(p + 32);
  const auto stored_sum = load<uint64_t>(p + 40);
  if (shard.src_vocab_size == 0 || shard.src_vocab_size > kMaxId16 ||
      shard.tgt_vocab_size <= kEos + 1u || shard.tgt_vocab_size > kMaxId16) {
    throw Error(name + ": vocab sizes " + std::to_string(shard.src_vocab_size) + " and " +
                std::to_string(shard.tgt_vocab_size) + " in the header: the file is corrupt");
  }
  const uint64_t have = bytes.size() - kPairShardHeaderBytes;
  if (have < payload) {
    throw Error(name + ": pair shard is truncated: expected " +
                std::to_string(kPairShardHeaderBytes + payload) + " bytes (" +
                std::to_string(count) + " words), found " + std::to_string(bytes.size()));
  }
  if (have > payload) {
    throw Error(name + ": pair shard has " + std::to_string(have - payload) + " bytes after its " +
                std::to_string(count) + " words: the file is corrupt");
  }
  uint64_t sum = files::fnv1a64(p, kChecksummedHeaderBytes);
  sum = files::fnv1a64(p + kPairShardHeaderBytes, payload, sum);
  if (sum != stored_sum) {
    throw Error(name + ": pair shard checksum mismatch (stored " + files::hex64(stored_sum) +
                ", computed " + files::hex64(sum) +
                "): the file is corrupt; run `slope prepare --task g2p --force` to rebuild it");
  }
  // Every record takes at least 6 + 1 + 2 + 2 + 2 bytes: a bound on the count before reserving.
  if (count > payload / 13) {
    throw Error(name + ": " + std::to_string(count) + " words cannot fit in " +
                std::to_string(payload) + " bytes: the file is corrupt");
  }
  Cursor in(name, p + kPairShardHeaderBytes, payload);
  shard.examples.resize(count);
  for (uint64_t e = 0; e < count; ++e) {
    PairExample& x = shard.examples[e];
    const uint16_t word_bytes = in.u16(e), src_len = in.u16(e), prons = in.u16(e);
    if (word_bytes == 0 || src_len == 0 || prons == 0) {
      throw Error(name + ": record " + std::to_string(e) +
                  " has an empty word, source or pronunciation list: the file is corrupt");
    }
    x.word.assign(reinterpret_cast<const char*>(in.take(word_bytes, e)), word_bytes);
    utf8_validate(x.word, name + ": record " + std::to_string(e));
    x.src.resize(src_len);
    for (int32_t& id : x.src) {
      id = in.u16(e);
      if (static_cast<uint32_t>(id) >= shard.src_vocab_size) {
        throw Error(name + ": record " + std::to_string(e) + ": source id " + std::to_string(id) +
                    " is not below the vocab size " + std::to_string(shard.src_vocab_size) +
                    ": the file is corrupt");
      }
    }
    x.prons.resize(prons);
    for (std::vector<int32_t>& pron : x.prons) {
      pron.resize(in.u16(e));
      if (pron.empty()) {
        throw Error(name + ": record " + std::to_string(e) +
                    " has an empty pronunciation: the file is corrupt");
      }
      for (int32_t& id : pron) {
        id = in.u16(e);
        if (id <= kEos || static_cast<uint32_t>(id) >= shard.tgt_vocab_size) {
          throw Error(name + ": record " + std::to_string(e) + ": phoneme id " +
                      std::to_string(id) + " is outside [2, " +
                      std::to_string(shard.tgt_vocab_size) + "): the file is corrupt");
        }
      }
    }
  }
  if (in.left() != 0) {
    throw Error(name + ": " + std::to_string(in.left()) + " bytes after the last of " +
                std::to_string(count) + " words: the file is corrupt");
  }
  return shard;
}

PreparedPairs open_prepared_pairs(const fs::path& dir) {
  const fs::path meta_path = dir / "meta.json";
  std::error_code ec;
  if (!fs::exists(meta_path, ec)) {
    throw Error(dir.string() +
                " is not a prepared pairs directory (no meta.json): run `slope prepare --task "
                "g2p --input data/raw/cmudict.txt --out " +
                dir.string() + "` first");
  }
  const nlohmann::json meta = files::read_json_file(meta_path);
  if (meta.is_object() && meta.contains("format") &&
      files::json_as<std::string>(meta["format"]) == "slope-prepared-corpus")
    throw Error(dir.string() +
                " is a text corpus (for --arch gpt or encoder), not word pairs: prepare the "
                "dictionary with `slope prepare --task g2p --input data/raw/cmudict.txt`");
  files::check_json_format(meta, "slope-prepared-pairs", kPreparedPairsVersion, meta_path);
  const auto task = files::json_field<std::string>(meta, "task", meta_path);
  if (task != "g2p") throw Error(meta_path.string() + ": task \"" + task + "\", expected \"g2p\"");

  PreparedPairs out;
  out.stress = files::json_field<bool>(meta, "stress", meta_path);
  const std::pair<PairVocab*, const char*> vocabs[] = {{&out.src_vocab, "src_vocab"},
                                                       {&out.tgt_vocab, "tgt_vocab"}};
  for (const auto& [vocab, key] : vocabs) {
    const auto part = files::json_field<nlohmann::json>(meta, key, meta_path);
    const fs::path file = files::json_name_in_dir(part, "file", meta_path, dir);
    *vocab = read_pair_vocab(file);
    if (vocab->size() != files::json_field<int32_t>(part, "size", meta_path)) {
      throw Error(file.string() + " holds " + std::to_string(vocab->size()) +
                  " tokens, but meta.json says " + part.at("size").dump() +
                  ": run `slope prepare --task g2p --force` again");
    }
  }
  if (out.src_vocab.size() < 2 || out.src_vocab.tokens[kSrcUnk] != "<unk>") {
    throw Error(dir.string() +
                ": the source vocabulary must start with <unk>: the file is corrupt");
  }
  if (out.tgt_vocab.size() < 3 || out.tgt_vocab.tokens[kBos] != "<bos>" ||
      out.tgt_vocab.tokens[kEos] != "<eos>") {
    throw Error(dir.string() +
                ": the target vocabulary must start with <bos>, <eos>: the file is corrupt");
  }
  const std::pair<std::vector<PairExample>*, const char*> splits[] = {
      {&out.train, "train"}, {&out.val, "val"}, {&out.test, "test"}};
  for (const auto& [examples, key] : splits) {
    const auto part = files::json_field<nlohmann::json>(meta, key, meta_path);
    const fs::path file = files::json_name_in_dir(part, "file", meta_path, dir);
    PairShard shard = read_pair_shard(file);
    const auto words = files::json_field<uint64_t>(part, "words", meta_path);
    const auto prons = files::json_field<uint64_t>(part, "pronunciations", meta_path);
    uint64_t found_prons = 0;
    for (const PairExample& x : shard.examples) found_prons += x.prons.size();
    if (shard.src_vocab_size != static_cast<uint32_t>(out.src_vocab.size()) ||
        shard.tgt_vocab_size != static_cast<uint32_t>(out.tgt_vocab.size()) ||
        shard.examples.size() != words || found_prons != prons) {
      throw Error(file.string() + " does not match " + meta_path.string() +
                  " (vocab sizes, words or pronunciations differ): run `slope prepare --task g2p "
                  "--force` again");
    }
    for (const PairExample& x : shard.examples) {
      if (encode_word(out.src_vocab, x.word) != x.src) {
        throw Error(file.string() + ": the source ids of \"" + x.word +
                    "\" are not its characters: the file is corrupt");
      }
    }
    *examples = std::move(shard.examples);
  }
  if (out.train.empty()) throw Error(dir.string() + ": the training split is empty");
  return out;
}

}  // namespace slope::data
