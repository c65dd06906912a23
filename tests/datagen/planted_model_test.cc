#include "datagen/planted_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace fmps::datagen {
namespace {

GeneratorOptions SmallOptions(const std::string& planted) {
  GeneratorOptions o;
  o.planted = planted;
  o.vocab_scale = 0.01;
  o.table_tokens = 64;  // most tokens of the larger fields take the on-the-fly path
  o.bias_pilot_rows = 5000;
  return o;
}

std::unique_ptr<PlantedModel> MakeModel(const GeneratorOptions& o) {
  auto m = PlantedModel::Create(o);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(m).value();
}

// Naive reference: bias + sum w + sum_{f<g} R_fg <v_f, v_g> in double, from the public accessors.
double ReferenceLogit(const PlantedModel& m, const RowTokens& row) {
  double z = m.bias();
  std::vector<std::vector<float>> v(kFields, std::vector<float>(m.k()));
  for (int f = 0; f < kFields; ++f) {
    if (row[f] == kMissingToken) continue;
    z += m.Weight(f, row[f]);
    m.Embedding(f, row[f], v[f].data());
  }
  for (int f = 0; f < kFields; ++f) {
    for (int g = f + 1; g < kFields; ++g) {
      if (row[f] == kMissingToken || row[g] == kMissingToken) continue;
      double dot = 0;
      for (int c = 0; c < m.k(); ++c) dot += static_cast<double>(v[f][c]) * v[g][c];
      z += (m.kind() == PlantedKind::kFm ? 1.0 : m.PairWeight(f, g)) * dot;
    }
  }
  return z;
}

class PlantedKindTest : public ::testing::TestWithParam<const char*> {};

TEST_P(PlantedKindTest, FastLogitMatchesReference) {
  GeneratorOptions o = SmallOptions(GetParam());
  o.missing = 0.3;
  auto m = MakeModel(o);
  WyRand rng(99);
  RowTokens row;
  for (int i = 0; i < 300; ++i) {
    m->SampleRow(rng, &row);
    // Also force rare (on-the-fly) tokens in some fields.
    if (i % 3 == 0) row[kIntFields + 2] = m->vocab_size(kIntFields + 2) - 1 - i;
    ASSERT_NEAR(m->Logit(row), ReferenceLogit(*m, row), 1e-4) << "row " << i;
  }
}

TEST_P(PlantedKindTest, TableParamsEqualOnTheFlyParams) {
  GeneratorOptions o = SmallOptions(GetParam());
  auto m = MakeModel(o);
  std::vector<float> scratch(m->param_stride()), v(m->k());
  for (int f = 0; f < kFields; ++f) {
    for (uint64_t t : {uint64_t{0}, uint64_t{1}, uint64_t{5}}) {
      if (t >= m->vocab_size(f)) continue;
      const float* p = m->Params(f, t, scratch.data());
      ASSERT_NE(p, scratch.data()) << "frequent tokens come from the table";
      EXPECT_EQ(p[0], m->Weight(f, t));
      m->Embedding(f, t, v.data());
      for (int c = 0; c < m->k(); ++c) EXPECT_EQ(p[1 + c], v[c]);
    }
  }
}

TEST_P(PlantedKindTest, SameModelSeedSameWorldWhateverTheRowSeed) {
  GeneratorOptions a = SmallOptions(GetParam()), b = a, c = a;
  b.seed = 12345;
  c.model_seed = 7;
  auto ma = MakeModel(a), mb = MakeModel(b), mc = MakeModel(c);
  EXPECT_EQ(ma->bias(), mb->bias());
  int differ = 0;
  for (int f = 0; f < kFields; ++f) {
    EXPECT_EQ(ma->Weight(f, 3), mb->Weight(f, 3));
    differ += ma->Weight(f, 3) != mc->Weight(f, 3);
    char ha[8], hb[8];
    ma->TokenHex(f, 0, ha);
    mb->TokenHex(f, 0, hb);
    EXPECT_EQ(std::string(ha, 8), std::string(hb, 8));
  }
  EXPECT_GT(differ, kFields / 2);
}

INSTANTIATE_TEST_SUITE_P(AllKinds, PlantedKindTest, ::testing::Values("fm", "fwfm", "dplr"));

TEST(PlantedModelTest, FwfmAndDplrPlantDifferentPairWeights) {
  auto fm = MakeModel(SmallOptions("fm"));
  auto fwfm = MakeModel(SmallOptions("fwfm"));
  auto dplr = MakeModel(SmallOptions("dplr"));
  int strong = 0, weak = 0;
  double fm_energy = 0, fwfm_energy = 0, dplr_energy = 0;
  for (int f = 0; f < kFields; ++f) {
    EXPECT_EQ(fwfm->PairWeight(f, f), 0.0);
    EXPECT_EQ(dplr->PairWeight(f, f), 0.0);
    for (int g = f + 1; g < kFields; ++g) {
      EXPECT_EQ(fm->PairWeight(f, g), 1.0);
      EXPECT_EQ(fwfm->PairWeight(f, g), fwfm->PairWeight(g, f));
      EXPECT_EQ(dplr->PairWeight(f, g), dplr->PairWeight(g, f));
      const double r = std::fabs(fwfm->PairWeight(f, g));
      strong += r > 1.0;
      weak += r < 0.3;
      fm_energy += 1;
      fwfm_energy += fwfm->PairWeight(f, g) * fwfm->PairWeight(f, g);
      dplr_energy += dplr->PairWeight(f, g) * dplr->PairWeight(f, g);
    }
  }
  // A few strong pairs (~10% of 741), most near zero; same total energy as FM.
  EXPECT_GT(strong, 20);
  EXPECT_LT(strong, 150);
  EXPECT_GT(weak, 500);
  EXPECT_NEAR(fwfm_energy, fm_energy, 1e-6 * fm_energy);
  EXPECT_NEAR(dplr_energy, fm_energy, 1e-6 * fm_energy);
  // The same rows get different logits under the three plantings.
  WyRand rng(1);
  RowTokens row;
  int fwfm_differs = 0, dplr_differs = 0;
  for (int i = 0; i < 50; ++i) {
    fm->SampleRow(rng, &row);
    fwfm_differs += std::fabs(fm->Logit(row) - fm->bias() - fwfm->Logit(row) + fwfm->bias()) > 1e-3;
    dplr_differs += std::fabs(fm->Logit(row) - fm->bias() - dplr->Logit(row) + dplr->bias()) > 1e-3;
  }
  EXPECT_GT(fwfm_differs, 40);
  EXPECT_GT(dplr_differs, 40);
}

TEST(PlantedModelTest, DplrPairMatrixHasLowRank) {
  GeneratorOptions o = SmallOptions("dplr");
  o.dplr_rank = 2;
  auto m = MakeModel(o);
  // Off-diagonal R equals a rank-2 matrix: every 3x3 minor on distinct rows/columns vanishes.
  auto r = [&](int f, int g) { return m->PairWeight(f, g); };
  auto det3 = [&](int a, int b, int c, int x, int y, int z) {
    return r(a, x) * (r(b, y) * r(c, z) - r(b, z) * r(c, y)) -
           r(a, y) * (r(b, x) * r(c, z) - r(b, z) * r(c, x)) +
           r(a, z) * (r(b, x) * r(c, y) - r(b, y) * r(c, x));
  };
  EXPECT_NEAR(det3(0, 1, 2, 10, 11, 12), 0.0, 1e-9);
  EXPECT_NEAR(det3(3, 7, 20, 30, 31, 38), 0.0, 1e-9);
  EXPECT_GT(std::fabs(r(0, 10) * r(1, 11) - r(0, 11) * r(1, 10)), 1e-6);  // but not rank 1
}

TEST(PlantedModelTest, TokensRoundTripThroughTheirText) {
  auto m = MakeModel(SmallOptions("fm"));
  for (int f = kIntFields; f < kFields; ++f) {
    for (uint64_t t : {uint64_t{0}, uint64_t{1}, m->vocab_size(f) - 1}) {
      char hex[8];
      m->TokenHex(f, t, hex);
      for (char c : hex) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
      auto back = m->TokenOfHex(f, std::string_view(hex, 8));
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_EQ(*back, t);
    }
  }
  EXPECT_FALSE(m->TokenOfHex(kIntFields, "xyz").ok());
  EXPECT_FALSE(m->TokenOfHex(kIntFields, "0000000g").ok());
  for (int f = 0; f < kIntFields; ++f) {
    for (uint64_t b = 0; b < m->vocab_size(f); ++b) {
      for (uint32_t random : {0u, 0x55555555u, 0xaaaaaaaau, 0xffffffffu}) {
        const int64_t x = m->IntValue(b, random);
        ASSERT_GE(x, 0);
        ASSERT_EQ(CriteoIntBucket(x), static_cast<int64_t>(b)) << "x=" << x;
      }
    }
  }
  EXPECT_EQ(CriteoIntBucket(2), 2);
  EXPECT_EQ(CriteoIntBucket(3), 1);
  EXPECT_EQ(CriteoIntBucket(1000), 47);  // ln(1000)^2 = 47.7
}

TEST(PlantedModelTest, ParseLineNamesTheBadColumn) {
  auto m = MakeModel(SmallOptions("fm"));
  int label;
  RowTokens row;
  std::string good = "1";
  for (int f = 0; f < kFields; ++f) good += "\t";
  EXPECT_TRUE(m->ParseLine(good, &label, &row).ok());
  EXPECT_EQ(label, 1);
  EXPECT_EQ(row[5], kMissingToken);
  const Status short_line = m->ParseLine("1\t2\t3", &label, &row);
  EXPECT_FALSE(short_line.ok());
  EXPECT_NE(short_line.message().find("40"), std::string::npos);
  std::string bad_int = "0\tx1";
  for (int f = 1; f < kFields; ++f) bad_int += "\t";
  const Status s = m->ParseLine(bad_int, &label, &row);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("I1"), std::string::npos) << s.message();
  EXPECT_FALSE(m->ParseLine("2" + good.substr(1), &label, &row).ok());
}

TEST(PlantedModelTest, InvalidOptionsAreRejected) {
  GeneratorOptions o;
  o.planted = "ffm";
  EXPECT_EQ(PlantedModel::Create(o).status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(ValidateOptions(o).message().find("ffm"), std::string::npos);
  o = GeneratorOptions();
  o.k = 0;
  EXPECT_FALSE(PlantedModel::Create(o).ok());
  o = GeneratorOptions();
  o.target_ctr = 1.0;
  EXPECT_FALSE(PlantedModel::Create(o).ok());
  o = GeneratorOptions();
  o.missing = -0.1;
  const Status s = ValidateOptions(o);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("missing"), std::string::npos);
}

}  // namespace
}  // namespace fmps::datagen
