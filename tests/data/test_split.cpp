// Train/val splitting: lines (documents, seeded), tail (running text), auto.
#include <gtest/gtest.h>

#include <sstream>

#include "common/temp_files.h"
#include "data/corpus_split.h"
#include "slope/attention.h"

namespace slope::data {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string numbered_names(int n) {
  std::string text;
  for (int i = 0; i < n; ++i) text += "name" + std::to_string(i) + "\n";
  return text;
}

TEST(Split, LinesTakesTheFractionAndKeepsOrder) {
  const SplitText s = split_text(numbered_names(100), 0.1, SplitMode::kLines, 1337);
  EXPECT_EQ(s.mode, SplitMode::kLines);
  const auto train = lines_of(s.train), val = lines_of(s.val);
  EXPECT_EQ(train.size(), 90u);
  EXPECT_EQ(val.size(), 10u);
  // Every line lands on exactly one side, in file order.
  std::vector<int> seen(100, 0);
  for (const auto* part : {&train, &val}) {
    int last = -1;
    for (const std::string& l : *part) {
      const int i = std::stoi(l.substr(4));
      EXPECT_GT(i, last);
      last = i;
      ++seen[i];
    }
  }
  for (int c : seen) EXPECT_EQ(c, 1);
}

TEST(Split, LinesIsDeterministicPerSeed) {
  const std::string text = numbered_names(200);
  EXPECT_EQ(split_text(text, 0.2, SplitMode::kLines, 5).val,
            split_text(text, 0.2, SplitMode::kLines, 5).val);
  EXPECT_NE(split_text(text, 0.2, SplitMode::kLines, 5).val,
            split_text(text, 0.2, SplitMode::kLines, 6).val);
}

TEST(Split, LinesDropsBlankLinesAndCarriageReturns) {
  const SplitText s = split_text("ann\r\n\nbob\r\n\n\ncy\n", 0.0, SplitMode::kLines, 1);
  EXPECT_EQ(s.train, "ann\nbob\ncy\n");
  EXPECT_EQ(s.val, "");
}

TEST(Split, LinesKeepsOneOnEachSide) {
  const SplitText s = split_text("a\nb\n", 0.01, SplitMode::kLines, 1);
  EXPECT_EQ(lines_of(s.train).size(), 1u);
  EXPECT_EQ(lines_of(s.val).size(), 1u);
}

TEST(Split, TailCutsAtTheNearestLineBoundary) {
  // 10 lines of 10 bytes: (1 - 0.25)·100 = 75 is nearest to the boundary at 80 (not 70).
  std::string text;
  for (int i = 0; i < 10; ++i) text += "line " + std::to_string(i) + " ..\n";
  ASSERT_EQ(text.size(), 100u);
  const SplitText s = split_text(text, 0.26, SplitMode::kTail, 0);  // target 74 -> 70
  EXPECT_EQ(s.mode, SplitMode::kTail);
  EXPECT_EQ(s.train, text.substr(0, 70));
  EXPECT_EQ(s.val, text.substr(70));
  EXPECT_EQ(split_text(text, 0.24, SplitMode::kTail, 0).train.size(), 80u);  // target 76 -> 80
}

TEST(Split, TailOfOneLongLineCutsAtACharacterBoundary) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "日本";  // 3 bytes each, no newline
  const SplitText s = split_text(text, 0.1, SplitMode::kTail, 0);
  EXPECT_FALSE(s.val.empty());
  EXPECT_EQ(s.train.size() % 3, 1u);  // 3·k bytes + the added '\n'
  EXPECT_EQ(s.train.substr(0, s.train.size() - 1) + s.val.substr(0, s.val.size() - 1), text);
}

TEST(Split, ZeroFractionKeepsEverythingInTrain) {
  const SplitText s = split_text("one line\nanother", 0.0, SplitMode::kTail, 0);
  EXPECT_EQ(s.train, "one line\nanother\n");  // a final '\n' is added
  EXPECT_EQ(s.val, "");
}

TEST(Split, AutoPicksLinesForWordLists) {
  EXPECT_EQ(detect_split_mode("emma\nolivia\nzoë\n"), SplitMode::kLines);
  EXPECT_EQ(detect_split_mode("In the beginning God created\nthe heaven\n"), SplitMode::kTail);
  EXPECT_EQ(split_text("emma\nolivia\n", 0.5, SplitMode::kAuto, 1).mode, SplitMode::kLines);
}

TEST(Split, FractionOutOfRange) {
  EXPECT_ERROR_CONTAINS(split_text("a\n", 1.0, SplitMode::kTail, 0), "--val-fraction");
  EXPECT_ERROR_CONTAINS(split_text("a\n", -0.1, SplitMode::kTail, 0), "--val-fraction");
}

}  // namespace
}  // namespace slope::data
