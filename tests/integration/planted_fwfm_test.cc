// Issue 4's planted check: on data whose labels come from a planted FwFM (a few strong
// field-pair weights of either sign, the other pairs exactly 0), FwFM trained through the
// in-process cluster beats FM of the same rank on held-out rows. FM has one embedding per token
// for all partner fields, so it cannot give the same pair of tokens a positive weight in one
// field pair and a zero or negative one in another; FwFM can only win by learning R.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "datagen/generator.h"
#include "launch/cluster.h"
#include "tests/integration/data_util.h"
#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

// The planted world: 8 fields (I1..I8) of 30 tokens each, labels driven mostly by the pairs.
datagen::GeneratorOptions PlantedFwfmWorld(uint64_t rows, uint64_t seed, uint64_t model_seed) {
  datagen::GeneratorOptions o;
  o.rows = rows;
  o.seed = seed;
  o.model_seed = model_seed;
  o.planted = "fwfm";
  o.k = 4;
  o.active_fields = 8;
  o.field_vocab = 30;
  o.missing = 0;
  o.linear_std = 0.5;
  o.interaction_std = 2.0;
  o.fwfm_strong_pairs = 0.3;
  o.fwfm_weak_std = 0;
  o.bias_pilot_rows = 5000;
  return o;
}

Result<datagen::GeneratorResult> WriteRows(const datagen::GeneratorOptions& o,
                                           const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Status::IOError("cannot create " + path);
  Result<datagen::GeneratorResult> r = datagen::GenerateCriteo(o, fd);
  ::close(fd);
  return r;
}

// `fmps train`'s defaults, on 2 servers and 2 workers, with the model and rank under test.
SchedulerOptions Job(const std::string& train, const std::string& test, const std::string& model,
                     int epochs, float dense_lr) {
  SchedulerOptions o = testing::SmallJob(train, test);
  proto::JobConfig& c = o.config;
  c.set_model(model);
  c.set_k(4);
  c.set_dense_lr(dense_lr);
  c.set_epochs(epochs);
  c.set_max_bad_lines(0);
  return o;
}

struct Outcome {
  double fm = 0, fwfm = 0, oracle = 0, base = 0;
};

Outcome TrainBoth(uint64_t model_seed, uint64_t train_rows, uint64_t test_rows, int epochs,
                  float fwfm_dense_lr) {
  TempDir dir;
  const std::string train = dir.File("train.txt"), test = dir.File("test.txt");
  Outcome out;
  auto t = WriteRows(PlantedFwfmWorld(train_rows, 1, model_seed), train);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  auto h = WriteRows(PlantedFwfmWorld(test_rows, 2, model_seed), test);
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  if (!t.ok() || !h.ok()) return out;
  out.oracle = h->oracle_logloss;
  out.base = testing::CountLabels(test).BaseRateLogLoss();
  Result<JobReport> fm = RunInProcessCluster(Job(train, test, "fm", epochs, 0.05f));
  EXPECT_TRUE(fm.ok()) << fm.status().ToString();
  Result<JobReport> fwfm = RunInProcessCluster(Job(train, test, "fwfm", epochs, fwfm_dense_lr));
  EXPECT_TRUE(fwfm.ok()) << fwfm.status().ToString();
  if (!fm.ok() || !fwfm.ok()) return out;
  out.fm = fm->test_logloss;
  out.fwfm = fwfm->test_logloss;
  std::fprintf(stderr,
               "planted fwfm (model_seed %llu): test logloss fm %.4f fwfm %.4f (gap %.4f), "
               "oracle %.4f, base rate %.4f\n",
               static_cast<unsigned long long>(model_seed), out.fm, out.fwfm, out.fm - out.fwfm,
               out.oracle, out.base);
  return out;
}

// Measured (model seeds 7, 8, 9; two runs each, training is asynchronous): FM - FwFM test
// logloss 0.035..0.060 with R learned; -0.006..0.000 with FwFM's dense learning rate at 0 (R
// frozen at its FM start). The margin sits well between the two.
constexpr double kMargin = 0.015;

TEST(PlantedFwfmTest, FwfmBeatsFmByLearningTheFieldPairWeights) {
  const Outcome o = TrainBoth(7, 60000, 10000, 10, 0.05f);
  EXPECT_LT(o.oracle, o.base - 0.1) << "the planted pairs carry most of the signal";
  EXPECT_LT(o.fm, o.base - 0.05) << "FM learns something too (what one embedding can hold)";
  EXPECT_LT(o.fwfm, o.fm - kMargin) << "FwFM must learn the field-pair weights";
}

}  // namespace
}  // namespace fmps
