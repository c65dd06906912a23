// Ranker against Model::Compute on the concatenated rows: the cached-context paths (fm, dplr) and
// the generic path (fwfm, ffm, and fm/dplr forced generic), for several contexts and 150
// candidates each, with unknown keys, empty candidate lines and fields shared by both halves.
#include "serving/ranker.h"

#include <cmath>
#include <random>

#include "serving/rank_request.h"
#include "tests/serving/serving_test_util.h"
#include "worker/line_parser.h"

namespace fmps {
namespace {

using testing::AppendRandomRow;
using testing::RandomSnapshot;
using testing::ReferenceScore;
using testing::TestConfig;

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
                         ::testing::Values(Case{"fm", 8, true, Ranker::Path::kFmCached},
                                           Case{"fm", 5, true, Ranker::Path::kFmCached},
                                           Case{"dplr", 8, true, Ranker::Path::kDplrCached},
                                           Case{"dplr", 3, true, Ranker::Path::kDplrCached},
                                           Case{"fwfm", 4, true, Ranker::Path::kGeneric},
                                           Case{"ffm", 4, true, Ranker::Path::kGeneric},
                                           Case{"fm", 8, false, Ranker::Path::kGeneric},
                                           Case{"dplr", 8, false, Ranker::Path::kGeneric}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.model + "_k" + std::to_string(info.param.k) +
                                  (info.param.cached ? "_cached" : "_generic");
                         });

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
  ASSERT_TRUE(ParseRankRequest("0:a 1:b:2.5\n2:c\n\n 3:d:1  2:e \n", 4, 9, &req).ok());
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
    Status st = ParseRankRequest(bad.body, 4, 0, &req);
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
    Status st = ParseRankRequest(body, 12, 0, &req);
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
