// Ranker against Model::Compute on the concatenated rows: the cached-context paths (fm, dplr) and
// the generic path (fwfm, ffm, and fm/dplr forced generic), for several contexts and 150
// candidates each, with unknown keys, empty candidate lines and fields shared by both halves.
#include "serving/ranker.h"

#include <cmath>
#include <random>

#include "serving/rank_request.h"
#include "tests/serving/serving_test_util.h"
#include "data/line_parser.h"

namespace fmps {
namespace {

using testing::AppendRandomRow;
using testing::RandomSnapshot;
using testing::ReferenceScore;
using testing::TestConfig;

RankRequestOptions Fields(int num_fields, uint64_t seed = 0,
                          DataFormat format = DataFormat::kLibffm) {
  RankRequestOptions o;
  o.num_fields = num_fields;
  o.hash_seed = seed;
  o.format = format;
  return o;
}

// The request line a client writes for a training line: one field:text token per non-empty column.
std::string TokensOf(const std::vector<std::string>& columns_by_field) {
  std::string line;
  for (size_t f = 0; f < columns_by_field.size(); ++f) {
    if (columns_by_field[f].empty()) continue;
    line += std::to_string(f) + ":" + columns_by_field[f] + " ";
  }
  return line;
}

std::vector<std::string> Split(const std::string& line, char sep) {
  std::vector<std::string> out(1);
  for (char c : line) {
    if (c == sep) {
      out.emplace_back();
    } else {
      out.back().push_back(c);
    }
  }
  return out;
}

struct Case {
  std::string model;
  int k;
  bool cached;
  Ranker::Path path;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " k=" << c.k; }

class RankerTest : public ::testing::TestWithParam<Case> {};

TEST_P(RankerTest, EqualsModelComputeOnConcatenatedRows) {
  const Case& c = GetParam();
  constexpr int kFields = 12;
  auto snapshot = RandomSnapshot(TestConfig(c.model, c.k, kFields), 11);
  ASSERT_NE(snapshot, nullptr);
  RankerOptions options;
  options.cached_context = c.cached;
  options.batch_rows = 64;  // several Compute batches per request on the generic path
  Ranker ranker(snapshot, options);
  EXPECT_EQ(ranker.path(), c.path);
  std::mt19937_64 rng(5);
  double lo = 1, hi = 0;
  for (int ctx = 0; ctx < 5; ++ctx) {
    Minibatch context, candidates;
    // Context fields 0..7, items 6..11: fields 6 and 7 may appear on both sides.
    AppendRandomRow(&rng, 0, 8, &context);
    if (ctx == 4) context.Clear();  // no context at all
    for (int r = 0; r < 150; ++r) {
      if (r % 37 == 5) {  // an empty candidate line
        candidates.labels.push_back(0.f);
        candidates.offsets.push_back(static_cast<uint32_t>(candidates.keys.size()));
      } else {
        AppendRandomRow(&rng, 6, kFields, &candidates);
      }
    }
    std::vector<float> probs;
    ASSERT_TRUE(ranker.Score({context.keys, context.values}, candidates, &probs).ok());
    ASSERT_EQ(probs.size(), 150u);
    for (size_t r = 0; r < probs.size(); ++r) {
      const float want = ReferenceScore(*snapshot, context, candidates, r);
      ASSERT_NEAR(probs[r], want, 1e-5 * want) << c.model << " context " << ctx << " row " << r;
      lo = std::min<double>(lo, probs[r]);
      hi = std::max<double>(hi, probs[r]);
    }
  }
  EXPECT_GT(hi - lo, 0.2) << "scores barely vary: the test would not see a wrong interaction";
}

INSTANTIATE_TEST_SUITE_P(Models, RankerTest,
                         ::testing::Values(Case{"fm", 8, true, Ranker::Path::kCachedContext},
                                           Case{"fm", 5, true, Ranker::Path::kCachedContext},
                                           Case{"dplr", 8, true, Ranker::Path::kCachedContext},
                                           Case{"dplr", 3, true, Ranker::Path::kCachedContext},
                                           Case{"fwfm", 4, true, Ranker::Path::kGeneric},
                                           Case{"ffm", 4, true, Ranker::Path::kGeneric},
                                           Case{"fm", 8, false, Ranker::Path::kGeneric},
                                           Case{"dplr", 8, false, Ranker::Path::kGeneric}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.model + "_k" + std::to_string(info.param.k) +
                                  (info.param.cached ? "_cached" : "_generic");
                         });

// Every registered model, through whatever path it takes (its cached context when it has one),
// scores as Compute on the concatenated rows: a new model's scorer is checked without a line here.
TEST(RankerTest, EveryRegisteredModelScoresAsCompute) {
  constexpr int kFields = 12;
  for (const std::string& name : ModelNames()) {
    auto snapshot = RandomSnapshot(TestConfig(name, 4, kFields), 13);
    ASSERT_NE(snapshot, nullptr) << name;
    Ranker ranker(snapshot);
    std::mt19937_64 rng(9);
    for (int ctx = 0; ctx < 3; ++ctx) {
      Minibatch context, candidates;
      AppendRandomRow(&rng, 0, 8, &context);
      for (int r = 0; r < 60; ++r) AppendRandomRow(&rng, 6, kFields, &candidates);
      std::vector<float> probs;
      ASSERT_TRUE(ranker.Score({context.keys, context.values}, candidates, &probs).ok()) << name;
      ASSERT_EQ(probs.size(), 60u);
      for (size_t r = 0; r < probs.size(); ++r) {
        const float want = ReferenceScore(*snapshot, context, candidates, r);
        ASSERT_NEAR(probs[r], want, 1e-5 * want) << name << " context " << ctx << " row " << r;
      }
    }
  }
}

TEST(RankerTest, RefusesFieldsBeyondTheModel) {
  auto snapshot = RandomSnapshot(TestConfig("dplr", 4, 6), 3);
  Ranker ranker(snapshot);
  Minibatch context, candidates;
  context.keys.push_back(testing::TokenKey(6, 1));
  context.values.push_back(1.f);
  candidates.labels.push_back(0);
  candidates.offsets.push_back(0);
  std::vector<float> probs;
  Status st = ranker.Score({context.keys, context.values}, candidates, &probs);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("field 6 >= num_fields 6"), std::string::npos) << st.message();
}

TEST(RankRequestTest, MakesKeysAsTheLibffmReader) {
  RankRequest req;
  ASSERT_TRUE(ParseRankRequest("0:a 1:b:2.5\n2:c\n\n 3:d:1  2:e \n", Fields(4, 9), &req).ok());
  ASSERT_EQ(req.context.keys.size(), 2u);
  EXPECT_EQ(req.context.keys[0], MakeKey(0, HashToken("a", 9)));
  EXPECT_EQ(req.context.values[1], 2.5f);
  ASSERT_EQ(req.num_candidates(), 3u);  // "2:c", "", "3:d:1 2:e" (the final newline ends it)
  EXPECT_EQ(req.candidates.offsets, (std::vector<uint32_t>{0, 1, 1, 3}));
  // The reader's own parse of the same tokens gives the same keys.
  Minibatch reader;
  std::string error;
  ASSERT_TRUE(ParseLibffmLine("1 3:d:1 2:e:1", 9, &reader, &error)) << error;
  EXPECT_EQ(std::vector<uint64_t>(req.candidates.keys.begin() + 1, req.candidates.keys.end()),
            reader.keys);
}

// A context written from a Criteo or Avazu training line gets the keys that line's reader made:
// integer columns bucketed (Criteo) or taken as integers (Avazu's hour and weekday), not hashed as
// text; with libffm's hashing the integer fields would miss every trained key.
TEST(RankRequestTest, MakesKeysAsTheTrainingReaderOfEveryFormat) {
  constexpr uint64_t kSeed = 7;
  // Criteo: label, I1..I13 (negative, 0..2 kept, larger bucketed, empty), C1..C26.
  const std::string criteo =
      "1\t5\t-1\t0\t\t123456\t2\t3\t1\t40\t\t7\t1000\t99\t"
      "68fd1e64\t80e26c9b\tfb936136\t7b4723c4\t25c83c98\t7e0ccccf\tde7995b8\t1f89b562\ta73ee510\t"
      "a8cd5504\tb2cb9c98\t37c9c164\t2824a5f6\t1adce6ef\t8ba8b39a\t891b62e7\te5ba7672\tf54016b9\t"
      "21ddcdc9\tb1252a9d\t07b5194c\t\t3a171ecb\tc5c50484\te8b83407\t9727dd16";
  std::vector<std::string> columns = Split(criteo, '\t');
  ASSERT_EQ(columns.size(), size_t(kCriteoColumns));
  columns.erase(columns.begin());  // the label
  Minibatch trained;
  std::string error;
  ASSERT_TRUE(ParseCriteoLine(criteo, kSeed, &trained, &error)) << error;
  RankRequest req;
  ASSERT_TRUE(
      ParseRankRequest(TokensOf(columns), Fields(39, kSeed, DataFormat::kCriteo), &req).ok());
  EXPECT_EQ(req.context.keys, trained.keys);
  // The request's values are explicit; the Criteo parser's are implied ones (Minibatch::values).
  EXPECT_EQ(req.context.values, std::vector<float>(trained.entries(), 1.0f));
  EXPECT_TRUE(trained.values.empty());
  RankRequest as_text;
  ASSERT_TRUE(ParseRankRequest(TokensOf(columns), Fields(39, kSeed), &as_text).ok());
  EXPECT_NE(as_text.context.keys[0], trained.keys[0]) << "integer fields hash as text";
  EXPECT_EQ(as_text.context.keys.back(), trained.keys.back()) << "categorical fields do not";

  // Avazu: id, click, hour (YYMMDDHH), 21 categorical columns; fields 0 and 1 are the hour of the
  // day and the weekday the reader derives from the hour column.
  const std::string avazu =
      "1000009418151094273,0,14102113,1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,"
      "07d7df22,a99f214a,ddd2926e,44956a24,1,2,15706,320,50,1722,0,35,-1,79";
  std::vector<std::string> avazu_columns = Split(avazu, ',');
  ASSERT_EQ(avazu_columns.size(), size_t(kAvazuColumns));
  std::vector<std::string> by_field = {"13", std::to_string(DayOfWeek(2014, 10, 21))};
  by_field.insert(by_field.end(), avazu_columns.begin() + 3, avazu_columns.end());
  Minibatch avazu_trained;
  ASSERT_TRUE(ParseAvazuLine(avazu, kSeed, &avazu_trained, &error)) << error;
  ASSERT_TRUE(
      ParseRankRequest(TokensOf(by_field), Fields(kAvazuFields, kSeed, DataFormat::kAvazu), &req)
          .ok());
  EXPECT_EQ(req.context.keys, avazu_trained.keys);
}

TEST(RankRequestTest, RefusesValuesTheTrainingFormatNeverHad) {
  RankRequest req;
  Status st = ParseRankRequest("0:5 1:abc\n", Fields(39, 0, DataFormat::kCriteo), &req);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("line 1, token 2 '1:abc': Criteo field 1 (column I2) takes an "
                              "integer, got 'abc'"),
            std::string::npos)
      << st.message();
  EXPECT_TRUE(ParseRankRequest("13:abc\n", Fields(39, 0, DataFormat::kCriteo), &req).ok());
  st = ParseRankRequest("2:x\n0:24\n", Fields(23, 0, DataFormat::kAvazu), &req);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(
      st.message().find("line 2, token 1 '0:24': Avazu field 0 (hour of the day) takes 0..23"),
      std::string::npos)
      << st.message();
}

TEST(RankRequestTest, NamesTheLineAndTokenOfBadInput) {
  RankRequest req;
  struct Bad {
    std::string body, expect;
  };
  for (const Bad& bad : std::vector<Bad>{
           {"", "empty body"},
           {"0:a\n1:b 9:c\n", "line 2, token 2 '9:c': field 9 >= num_fields 4"},
           {"0:a 1:b:x\n", "line 1, token 2 '1:b:x': bad value"},
           {"0:a\n1:b\nab\n", "line 3, token 1 'ab'"},
           {"0:a\nz:b\n", "line 2, token 1 'z:b': bad field"},
           {"0:a\n1:b:1:2\n", "line 2, token 1 '1:b:1:2'"},
           {"0:a\n300:b\n", "line 2, token 1 '300:b'"},
           {"0:a\n:b\n", "line 2, token 1 ':b'"},
       }) {
    Status st = ParseRankRequest(bad.body, Fields(4), &req);
    ASSERT_FALSE(st.ok()) << bad.body;
    EXPECT_NE(st.message().find(bad.expect), std::string::npos)
        << "body " << bad.body << ": " << st.message();
  }
}

// Random bytes over the token alphabet: every body is either refused with a message or parsed
// into fields the model has, and then scores to probabilities in (0, 1).
TEST(RankRequestTest, RandomBodiesParseOrFailCleanly) {
  auto snapshot = RandomSnapshot(TestConfig("dplr", 4, 12), 9);
  Ranker ranker(snapshot);
  const std::string alphabet = "0123456789::::t..-+e \t\n\n\rxy";
  std::mt19937_64 rng(77);
  int parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string body;
    if (i % 2 == 0) {  // raw characters
      body.assign(rng() % 80, ' ');
      for (char& c : body) c = alphabet[rng() % alphabet.size()];
    } else {  // tokens from pieces, most of them valid
      static const std::vector<std::string> fields = {"0",  "3", "11", "11", "7",
                                                      "12", "x", "-1", ""};
      static const std::vector<std::string> features = {"t1", "t2", "t19", "zz", ""};
      static const std::vector<std::string> values = {"",  "",     ":1",   ":0.5", ":-2",
                                                      ":", ":abc", ":nan", ":1e40"};
      const int lines = 1 + int(rng() % 4);
      for (int l = 0; l < lines; ++l) {
        for (int t = int(rng() % 4); t > 0; --t) {
          body += fields[rng() % fields.size()] + ":" + features[rng() % features.size()] +
                  values[rng() % values.size()] + " ";
        }
        body += "\n";
      }
    }
    RankRequest req;
    Status st = ParseRankRequest(body, Fields(12), &req);
    if (!st.ok()) {
      EXPECT_FALSE(st.message().empty());
      continue;
    }
    ++parsed;
    std::vector<float> probs;
    ASSERT_TRUE(ranker.Score(req.Context(), req.candidates, &probs).ok()) << body;
    for (float p : probs) ASSERT_TRUE(p >= 0.f && p <= 1.f) << body;
  }
  EXPECT_GT(parsed, 150);  // both kinds make valid bodies too
}

}  // namespace
}  // namespace fmps
