// Training a byte-level BPE (ByteLevelBpeTokenizer::train, see byte_bpe_tokenizer.h).
//
// The text is cut as encoding cuts it (special tokens out, then GPT-2's pre-tokenizer) and each
// distinct piece becomes a word of byte tokens with its count. Then, merges times: take the
// adjacent pair with the highest count over all words (ties: the smaller (left, right) ids),
// give it the next id, and rewrite the words that hold it. Pair counts live in a hash map and a
// max-heap with lazy deletion (an entry whose count is stale is skipped when it surfaces); each
// pair lists the words it occurs in, so a merge touches only those words: the cost of a merge is
// the length of the words it changes, not of the corpus (Sennrich et al.'s loop, as Hugging
// Face's BpeTrainer runs it).
//
// Vocabulary layout, as GPT-2's: ids 0..255 the byte tokens in byte_order(), then one id per
// merge in merge order, then the special tokens (GPT-2's <|endoftext|> is its last id, 50256).
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "data/byte_bpe_tokenizer.h"
#include "data/byte_unicode.h"
#include "data/gpt2_pretokenizer.h"
#include "data/utf8.h"
#include "slope/error.h"

namespace slope::data {
namespace {

uint64_t pair_key(uint32_t left, uint32_t right) { return uint64_t{left} << 32 | right; }

struct Word {
  std::vector<uint32_t> sym;  // (n,) current tokens
  int64_t count;              // occurrences of the piece in the text
};

struct HeapEntry {
  int64_t count;
  uint64_t key;                               // (left << 32 | right): smaller key wins a tie
  bool operator<(const HeapEntry& o) const {  // std::priority_queue pops the largest
    return count != o.count ? count < o.count : key > o.key;
  }
};

// The distinct pre-tokenizer pieces of `text`, special tokens cut out, with their counts.
std::unordered_map<std::string_view, int64_t> count_pieces(
    std::string_view text, const std::vector<std::string>& specials) {
  const Gpt2PreTokenizer pre;
  std::unordered_map<std::string_view, int64_t> counts;
  std::vector<std::string_view> pieces;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t at = text.size(), len = 0;
    for (const std::string& s : specials) {
      const size_t p = text.find(s, pos);
      if (p < at || (p == at && p != text.size() && s.size() > len)) at = p, len = s.size();
    }
    pieces.clear();
    pre.split(text.substr(pos, at - pos), pieces);
    for (std::string_view p : pieces) ++counts[p];
    if (at == text.size()) break;
    pos = at + len;
  }
  return counts;
}

}  // namespace

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::train(std::string_view text,
                                                   const ByteBpeTrainOptions& o) {
  const uint64_t n_special = o.special_tokens.size();
  if (o.vocab_size < 256 + n_special + 1)
    throw Error("--vocab-size " + std::to_string(o.vocab_size) +
                " is too small for byte-level BPE: it needs at least " +
                std::to_string(256 + n_special + 1) + " (256 byte tokens, " +
                std::to_string(n_special) + " special, one merge)");
  std::unordered_set<std::string> distinct;
  for (const std::string& s : o.special_tokens)
    if (s.empty() || !distinct.insert(s).second)
      throw Error("byte-level BPE: special tokens must be distinct and not empty");
  utf8_validate(text, "byte-level BPE training text");
  const uint64_t n_merges = o.vocab_size - 256 - n_special;

  std::vector<std::string> tokens(256);  // (V,) vocabulary text, grown by each merge
  std::vector<uint32_t> byte_id(256);    // byte → id
  const auto& order = byte_order();
  for (uint32_t id = 0; id < 256; ++id) {
    utf8_append(tokens[id], byte_to_unicode()[order[id]]);
    byte_id[order[id]] = id;
  }

  std::vector<Word> words;
  for (const auto& [piece, count] : count_pieces(text, o.special_tokens)) {
    Word w{std::vector<uint32_t>(piece.size()), count};
    for (size_t i = 0; i < piece.size(); ++i) w.sym[i] = byte_id[static_cast<uint8_t>(piece[i])];
    if (w.sym.size() > 1) words.push_back(std::move(w));
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<uint32_t>> pair_words;  // may repeat a word
  for (uint32_t w = 0; w < words.size(); ++w) {
    const std::vector<uint32_t>& s = words[w].sym;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t k = pair_key(s[i], s[i + 1]);
      pair_count[k] += words[w].count;
      pair_words[k].push_back(w);
    }
  }
  std::priority_queue<HeapEntry> heap;
  for (const auto& [k, c] : pair_count) heap.push({c, k});

  std::vector<std::pair<uint32_t, uint32_t>> merges;
  std::vector<uint64_t> visited(words.size(), 0);  // the merge that last touched each word
  std::unordered_map<uint64_t, int64_t> delta;     // pair → change of count in this merge
  while (merges.size() < n_merges) {
    if (heap.empty())
      throw Error("--vocab-size " + std::to_string(o.vocab_size) +
                  " is too large for this training text: its pieces allow only " +
                  std::to_string(merges.size()) + " merges; pass --vocab-size " +
                  std::to_string(256 + merges.size() + n_special) + " or less, or give more text");
    const HeapEntry top = heap.top();
    heap.pop();
    const auto it = pair_count.find(top.key);
    if (it == pair_count.end() || it->second != top.count) continue;  // stale entry
    const uint32_t left = static_cast<uint32_t>(top.key >> 32);
    const uint32_t right = static_cast<uint32_t>(top.key & 0xFFFFFFFFu);
    const uint32_t merged = static_cast<uint32_t>(tokens.size());
    tokens.push_back(tokens[left] + tokens[right]);
    merges.emplace_back(left, right);

    delta.clear();
    const std::vector<uint32_t> holders = std::move(pair_words[top.key]);
    pair_words.erase(top.key);
    for (uint32_t w : holders) {
      if (visited[w] == merges.size()) continue;
      visited[w] = merges.size();
      std::vector<uint32_t>& s = words[w].sym;
      const int64_t c = words[w].count;
      for (size_t i = 0; i + 1 < s.size(); ++i) delta[pair_key(s[i], s[i + 1])] -= c;
      size_t out = 0;  // every occurrence, left to right, as encoding merges them
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
          s[out++] = merged, i += 2;
        } else {
          s[out++] = s[i++];
        }
      }
      s.resize(out);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = pair_key(s[i], s[i + 1]);
        delta[k] += c;
        if (s[i] == merged || s[i + 1] == merged) pair_words[k].push_back(w);
      }
    }
    for (const auto& [k, d] : delta) {
      if (d == 0) continue;
      int64_t& count = pair_count[k];
      count += d;
      if (count > 0) {
        heap.push({count, k});
      } else {
        pair_count.erase(k);
      }
    }
  }

  std::vector<Special> specials;
  for (const std::string& s : o.special_tokens) {
    specials.push_back({s, static_cast<uint32_t>(tokens.size())});
    tokens.push_back(s);
  }
  return ByteLevelBpeTokenizer(std::move(tokens), std::move(merges), std::move(specials), false,
                               "byte-level BPE training");
}

}  // namespace slope::data
