// `fmps plot`: the SVG's series hold exactly the JSONL's values, and their drawn points are those
// values mapped linearly onto the panel (so the picture shows what the file says).
#include "launch/plot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace fmps {
namespace {

struct Drawn {
  std::string x_name;
  std::vector<std::pair<double, double>> values, points;
};

std::vector<std::pair<double, double>> Pairs(const std::string& text) {
  std::vector<std::pair<double, double>> out;
  std::istringstream in(text);
  for (std::string pair; in >> pair;) {
    const size_t comma = pair.find(',');
    out.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
  }
  return out;
}

// Every polyline by "series/x" (a series is drawn against rows and against time).
std::map<std::string, Drawn> Polylines(const std::string& svg) {
  std::map<std::string, Drawn> out;
  static const std::regex line(
      R"re(<polyline data-series="([^"]+)" data-x="([^"]+)" data-values="([^"]*)" points="([^"]*)")re");
  for (std::sregex_iterator it(svg.begin(), svg.end(), line), end; it != end; ++it) {
    Drawn d{(*it)[2], Pairs((*it)[3]), Pairs((*it)[4])};
    out[std::string((*it)[1]) + "/" + d.x_name] = d;
  }
  return out;
}

// The drawn points are an increasing affine map of x and a decreasing one of y (SVG's y grows
// downwards), the same for every point of the series.
void ExpectLinear(const Drawn& d) {
  ASSERT_EQ(d.values.size(), d.points.size());
  for (size_t i = 2; i < d.values.size(); ++i) {
    const double sx = (d.points[i].first - d.points[0].first) /
                      (d.values[i].first - d.values[0].first);
    const double sx1 = (d.points[1].first - d.points[0].first) /
                       (d.values[1].first - d.values[0].first);
    EXPECT_GT(sx, 0);
    EXPECT_NEAR(sx, sx1, 0.01 * std::fabs(sx1) + 1e-3 / std::fabs(d.values[i].first));
    if (d.values[i].second != d.values[0].second && d.values[1].second != d.values[0].second) {
      const double sy = (d.points[i].second - d.points[0].second) /
                        (d.values[i].second - d.values[0].second);
      const double sy1 = (d.points[1].second - d.points[0].second) /
                         (d.values[1].second - d.values[0].second);
      EXPECT_LT(sy, 0);
      EXPECT_NEAR(sy, sy1, 0.02 * std::fabs(sy1));
    }
  }
}

const char* kJsonl =
    R"({"event":"progress","time_s":0.000,"fmps_train_rows_total":0,"fmps_train_logloss":0,"fmps_train_rows_per_second":0}
{"event":"progress","time_s":1.5,"fmps_train_rows_total":1000,"fmps_train_logloss":0.61,"fmps_train_rows_per_second":666.5}
{"event":"progress","time_s":3.25,"fmps_train_rows_total":3000,"fmps_train_logloss":0.55,"fmps_train_rows_per_second":1142.8571}
{"event":"epoch","time_s":3.5,"epoch_done":1,"fmps_train_rows_total":3200,"fmps_epoch_train_logloss":0.54,"fmps_validation_logloss":0.5625,"fmps_validation_auc":0.701}
{"event":"progress","time_s":5,"fmps_train_rows_total":5200,"fmps_train_logloss":0.5,"fmps_train_rows_per_second":1333.3333333333333}
{"event":"epoch","time_s":6.75,"epoch_done":2,"fmps_train_rows_total":6400,"fmps_epoch_train_logloss":0.48,"fmps_validation_logloss":null,"val_logloss":0.53,"fmps_validation_auc":0.7125}
{"event":"end","time_s":7,"fmps_train_rows_total":6400,"fmps_test_logloss":0.52,"fmps_test_auc":0.72}
)";

TEST(PlotTest, SeriesEqualTheFileAndAreDrawnToScale) {
  Result<std::string> svg = PlotCurvesSvg(kJsonl, "curves.jsonl");
  ASSERT_TRUE(svg.ok()) << svg.status().ToString();
  std::map<std::string, Drawn> lines = Polylines(*svg);
  EXPECT_EQ(lines.size(), 11u);  // 4 logloss series against rows and time, 2 AUC, rows/s
  using V = std::vector<std::pair<double, double>>;
  // The progress line at 0 rows (no loss yet) is left out.
  EXPECT_EQ(lines["train_logloss/rows"].values, (V{{1000, 0.61}, {3000, 0.55}, {5200, 0.5}}));
  EXPECT_EQ(lines["train_logloss/time_s"].values, (V{{1.5, 0.61}, {3.25, 0.55}, {5, 0.5}}));
  EXPECT_EQ(lines["epoch_train_logloss/rows"].values, (V{{3200, 0.54}, {6400, 0.48}}));
  // Validation from either name (fmps_validation_logloss, or the validation JSON's val_logloss).
  EXPECT_EQ(lines["validation_logloss/rows"].values, (V{{3200, 0.5625}, {6400, 0.53}}));
  EXPECT_EQ(lines["validation_auc/rows"].values, (V{{3200, 0.701}, {6400, 0.7125}}));
  EXPECT_EQ(lines["test_logloss/rows"].values, (V{{6400, 0.52}}));
  EXPECT_EQ(lines["test_auc/rows"].values, (V{{6400, 0.72}}));
  EXPECT_EQ(lines["rows_per_second/time_s"].values,
            (V{{1.5, 666.5}, {3.25, 1142.8571}, {5, 1333.3333333333333}}));
  ExpectLinear(lines["train_logloss/rows"]);
  ExpectLinear(lines["rows_per_second/time_s"]);
}

TEST(PlotTest, BadLinesAreNamed) {
  Result<std::string> svg = PlotCurvesSvg("{\"event\":\"progress\"}\n", "x.jsonl");
  ASSERT_FALSE(svg.ok());
  EXPECT_NE(svg.status().message().find("x.jsonl:1"), std::string::npos);
  svg = PlotCurvesSvg(std::string(kJsonl) + "{not json\n", "y.jsonl");
  ASSERT_FALSE(svg.ok());
  EXPECT_NE(svg.status().message().find("y.jsonl:8"), std::string::npos)
      << svg.status().message();
  EXPECT_FALSE(PlotCurvesSvg("", "empty.jsonl").ok());
}

}  // namespace
}  // namespace fmps
