// BatchParams / BatchGrads: a pull answer unpacks into zero-padded rows of the model's width, and
// gradients pack back into the same per-key layout (w, then the key's own width), compared with
// a plain reference on random widths; widths beyond the model and short answers are errors.
#include "worker/batch_params.h"

#include <gtest/gtest.h>

#include <random>

namespace fmps {
namespace {

TEST(BatchParamsTest, UnpackPadsAndPackRestoresTheLayout) {
  std::mt19937 rng(5);
  constexpr int kWidth = 8;
  BatchParams params;
  params.width = kWidth;
  BatchGrads grads;
  std::vector<float> packed;
  for (int round = 0; round < 3; ++round) {  // buffers reused, as the worker does
    const size_t keys = 1 + rng() % 50;
    std::vector<uint16_t> widths(keys);
    std::vector<float> values;
    for (size_t i = 0; i < keys; ++i) {
      widths[i] = static_cast<uint16_t>(rng() % 3 == 0 ? 0 : rng() % (kWidth + 1));
      for (int j = 0; j <= widths[i]; ++j) values.push_back(static_cast<float>(rng() % 1000) + 1);
    }
    params.V.assign(keys * kWidth * 2, -7.f);  // stale garbage must not survive the unpack
    ASSERT_TRUE(params.Unpack(values, widths).ok());
    ASSERT_EQ(params.w.size(), keys);
    ASSERT_EQ(params.V.size(), keys * kWidth);
    size_t pos = 0;
    for (size_t i = 0; i < keys; ++i) {
      EXPECT_EQ(params.w[i], values[pos++]);
      EXPECT_EQ(params.widths[i], widths[i]);
      for (int j = 0; j < kWidth; ++j)
        EXPECT_EQ(params.V[i * kWidth + j], j < widths[i] ? values[pos + j] : 0.f) << i << "," << j;
      pos += widths[i];
    }
    // Gradients equal to the parameters pack back into the pull answer itself.
    grads.Reset(keys, kWidth, 0);
    grads.w = params.w;
    grads.V = params.V;
    grads.Pack(params.widths, kWidth, &packed);
    EXPECT_EQ(packed, values);
  }
}

TEST(BatchParamsTest, WidthBeyondTheModelAndShortAnswersAreErrors) {
  BatchParams params;
  params.width = 4;
  Status wide = params.Unpack({1, 2, 3, 4, 5, 6}, {5});
  EXPECT_FALSE(wide.ok());
  EXPECT_NE(wide.message().find("width 5"), std::string::npos) << wide.ToString();
  EXPECT_FALSE(params.Unpack({1, 2}, {3}).ok());
  EXPECT_TRUE(params.Unpack({1, 2, 3, 4}, {3}).ok());
}

}  // namespace
}  // namespace fmps
