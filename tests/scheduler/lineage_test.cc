// CheckSameModelShape: a saved model continues only under the same shape, including the model's
// own shape options (Model::ShapeFlags), each mismatch named with both values.
#include "scheduler/lineage.h"

#include "gtest/gtest.h"
#include "models/job_config.h"

namespace fmps {
namespace {

// A job config as the launcher makes one: every parameter at the table's default but these.
proto::JobConfig Config(const std::string& model) {
  proto::JobConfig c = DefaultJobConfig();
  c.set_model(model);
  c.set_k(8);
  c.set_num_fields(10);
  c.set_format("libffm");
  c.set_rank(2);
  c.clear_rafm_ranks();
  for (int r : {4, 8, 16}) c.add_rafm_ranks(r);
  return c;
}

TEST(LineageTest, TheModelsOwnShapeOptionsMustMatch) {
  EXPECT_TRUE(CheckSameModelShape(Config("dplr"), Config("dplr"), "saved").ok());
  proto::JobConfig other_rank = Config("dplr");
  other_rank.set_rank(3);
  Status st = CheckSameModelShape(Config("dplr"), other_rank, "saved");
  EXPECT_EQ(st.message(), "saved was trained with --rank=2; this job has --rank=3");

  proto::JobConfig other_ranks = Config("rafm");
  other_ranks.clear_rafm_ranks();
  for (int r : {4, 8}) other_ranks.add_rafm_ranks(r);
  st = CheckSameModelShape(Config("rafm"), other_ranks, "saved");
  EXPECT_EQ(st.message(),
            "saved was trained with --rafm_ranks=4,8,16; this job has --rafm_ranks=4,8");
  // The table's default ranks are 4,8,16: the same model.
  proto::JobConfig default_ranks = DefaultJobConfig();
  default_ranks.set_model("rafm");
  default_ranks.set_num_fields(10);
  default_ranks.set_format("libffm");
  EXPECT_TRUE(CheckSameModelShape(Config("rafm"), default_ranks, "saved").ok());

  // Options a model does not have do not matter to it.
  proto::JobConfig fm_other_rank = Config("fm");
  fm_other_rank.set_rank(5);
  EXPECT_TRUE(CheckSameModelShape(Config("fm"), fm_other_rank, "saved").ok());
}

}  // namespace
}  // namespace fmps
