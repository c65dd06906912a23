// LogLoss and AUC against values worked out by hand.
#include "models/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace fmps {
namespace {

TEST(EvaluationTest, LogLossMatchesHandComputedValue) {
  std::vector<float> labels{1, 0, 1, 0};
  std::vector<float> probs{0.9f, 0.2f, 0.6f, 0.4f};
  double expect = -(std::log(0.9) + std::log(0.8) + std::log(0.6) + std::log(0.6)) / 4;
  EXPECT_NEAR(LogLoss(labels, probs), expect, 1e-6);
}

TEST(EvaluationTest, LogLossClipsCertainMistakes) {
  std::vector<float> labels{1, 0};
  std::vector<float> probs{0.0f, 1.0f};
  EXPECT_NEAR(LogLoss(labels, probs), -std::log(1e-7), 1e-6);
}

TEST(EvaluationTest, AucGivesTiesTheirAverageRank) {
  // Positives score 0.8, 0.3, 0.5; negatives 0.8, 0.1. Pairs won: (0.8,0.8) half, (0.8,0.1),
  // (0.3,0.1), (0.5,0.1): 3.5 of 6.
  std::vector<float> labels{1, 0, 1, 0, 1};
  std::vector<float> scores{0.8f, 0.8f, 0.3f, 0.1f, 0.5f};
  EXPECT_NEAR(Auc(labels, scores), 3.5 / 6, 1e-9);
}

TEST(EvaluationTest, AucExtremes) {
  std::vector<float> labels{0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(Auc(labels, std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f}), 1.0);
  EXPECT_DOUBLE_EQ(Auc(labels, std::vector<float>{0.4f, 0.3f, 0.2f, 0.1f}), 0.0);
  EXPECT_DOUBLE_EQ(Auc(labels, std::vector<float>{0.5f, 0.5f, 0.5f, 0.5f}), 0.5);
  // One class only: undefined, reported as 0.5.
  EXPECT_DOUBLE_EQ(Auc(std::vector<float>{1, 1}, std::vector<float>{0.1f, 0.9f}), 0.5);
}

TEST(EvaluationTest, AucMatchesPairCountOnRandomScoresWithTies) {
  std::vector<float> labels, scores;
  uint64_t state = 12345;
  for (int i = 0; i < 300; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    labels.push_back((state >> 40) % 3 == 0 ? 1.f : 0.f);
    scores.push_back(static_cast<float>((state >> 20) % 17));  // many ties
  }
  double won = 0, pairs = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    for (size_t j = 0; j < labels.size(); ++j) {
      if (labels[i] != 1 || labels[j] != 0) continue;
      pairs += 1;
      won += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
    }
  }
  EXPECT_NEAR(Auc(labels, scores), won / pairs, 1e-9);
}

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Rows whose score is NaN or infinite are left out and counted; the rest score as if alone. (The
// tie scan compared with ==, false for NaN, and never advanced: the scheduler spun forever.)
TEST(EvaluationTest, NonFiniteScoresAreLeftOutAndCounted) {
  std::vector<float> labels{1, 0, 1, 0, 1, 0, 1, 0};
  std::vector<float> scores{0.8f, kNan, 0.8f, 0.3f, -kInf, 0.1f, kNan, kInf};
  std::vector<float> clean_labels{1, 1, 0, 0}, clean_scores{0.8f, 0.8f, 0.3f, 0.1f};
  uint64_t nonfinite = 99;
  EXPECT_DOUBLE_EQ(Auc(labels, scores, &nonfinite), Auc(clean_labels, clean_scores));
  EXPECT_EQ(nonfinite, 4u);
  std::vector<float> probs{0.9f, kNan, 0.6f, 0.4f, kInf, 0.2f, kNan, -kInf};
  std::vector<float> clean_probs{0.9f, 0.6f, 0.4f, 0.2f};
  nonfinite = 99;
  EXPECT_DOUBLE_EQ(LogLoss(labels, probs, &nonfinite), LogLoss(clean_labels, clean_probs));
  EXPECT_EQ(nonfinite, 4u);
}

TEST(EvaluationTest, AllScoresNonFiniteGiveNanAndTheCount) {
  std::vector<float> labels{1, 0, 1};
  std::vector<float> scores{kNan, kNan, kInf};
  uint64_t nonfinite = 0;
  EXPECT_TRUE(std::isnan(Auc(labels, scores, &nonfinite)));
  EXPECT_EQ(nonfinite, 3u);
  nonfinite = 0;
  EXPECT_TRUE(std::isnan(LogLoss(labels, scores, &nonfinite)));
  EXPECT_EQ(nonfinite, 3u);
  // No rows at all is not a failure: nothing was left out.
  EXPECT_EQ(LogLoss({}, {}, &nonfinite), 0);
  EXPECT_EQ(nonfinite, 0u);
  EXPECT_EQ(Auc({}, {}, &nonfinite), 0.5);
  EXPECT_EQ(nonfinite, 0u);
}

// Many ties and NaNs mixed: equals the pair count over the finite rows.
TEST(EvaluationTest, AucWithTiesAndNansMatchesPairCountOverFiniteRows) {
  std::vector<float> labels, scores;
  uint64_t state = 777, nans = 0;
  for (int i = 0; i < 500; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    labels.push_back((state >> 40) % 3 == 0 ? 1.f : 0.f);
    const bool nan = (state >> 30) % 5 == 0;
    nans += nan;
    scores.push_back(nan ? kNan : static_cast<float>((state >> 20) % 13));
  }
  double won = 0, pairs = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    for (size_t j = 0; j < labels.size(); ++j) {
      if (labels[i] != 1 || labels[j] != 0 || std::isnan(scores[i]) || std::isnan(scores[j]))
        continue;
      pairs += 1;
      won += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
    }
  }
  uint64_t nonfinite = 0;
  ASSERT_GT(nans, 50u);
  EXPECT_NEAR(Auc(labels, scores, &nonfinite), won / pairs, 1e-9);
  EXPECT_EQ(nonfinite, nans);
}

}  // namespace
}  // namespace fmps
