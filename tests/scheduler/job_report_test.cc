// The JSON line of a job is JSON whatever the job's numbers: a model gone NaN printed
// "train_logloss":-nan, which no parser reads.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "scheduler/scheduler.h"

namespace fmps {
namespace {

TEST(JobReportTest, NonFiniteNumbersAreNullAndStringsAreEscaped) {
  JobReport r;
  r.rows = 10;
  r.test_rows = 5;
  r.train_logloss = -std::numeric_limits<double>::quiet_NaN();
  r.test_logloss = std::numeric_limits<double>::infinity();
  r.test_auc = std::numeric_limits<double>::quiet_NaN();
  r.test_nonfinite_scores = 5;
  r.epoch_rows_per_s = {std::numeric_limits<double>::infinity(), 2.5};
  r.model = "fm";
  r.model_dir = std::string("/tmp/a\"b\\c\n") + std::string(3000, 'd');
  const std::string json = r.ToJson();
  EXPECT_NE(json.find("\"train_logloss\":null,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"test_logloss\":null,\"test_auc\":null,\"test_nonfinite_scores\":5"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"epoch_rows_per_s\":[null,2.5]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"model_dir\":\"/tmp/a\\\"b\\\\c\\u000a" + std::string(3000, 'd') + "\""),
            std::string::npos)
      << json;
  EXPECT_EQ(json.find("nan"), std::string::npos) << json;
  EXPECT_EQ(json.find("inf"), std::string::npos) << json;
  EXPECT_EQ(json.back(), '}');
}

}  // namespace
}  // namespace fmps
