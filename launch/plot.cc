#include "launch/plot.h"

#include <algorithm>
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <vector>

namespace fmps {
namespace {

struct Point {
  double x, y;
};
struct Series {
  std::string name, label, color;
  std::vector<Point> points;
};
struct Panel {
  std::string title, x_name, x_label, y_label;
  std::vector<Series> series;
};

// A number as written into the SVG's data: enough digits to read back the double it was.
std::string Exact(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}
std::string Short(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}
// Tick labels: 200k, 1.5M rather than 2e+05.
std::string TickLabel(double v) {
  char buf[32];
  if (std::fabs(v) >= 1e6) {
    std::snprintf(buf, sizeof(buf), "%gM", v / 1e6);
  } else if (std::fabs(v) >= 1e4) {
    std::snprintf(buf, sizeof(buf), "%gk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%g", v);
  }
  return buf;
}
std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '&') {
      out += "&amp;";
    } else if (c == '"') {
      out += "&quot;";
    } else {
      out += c;
    }
  }
  return out;
}

// Round tick positions covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.
std::vector<double> Ticks(double lo, double hi) {
  const double span = hi - lo;
  const double raw = span / 5;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (span / step <= 6) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

constexpr double kPanelW = 520, kPanelH = 330, kLeft = 70, kRight = 20, kTop = 40, kBottom = 50;

void DrawPanel(const Panel& panel, double ox, double oy, std::string* svg) {
  std::string& out = *svg;
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const Series& s : panel.series) {
    for (const Point& p : s.points) {
      xlo = std::min(xlo, p.x);
      xhi = std::max(xhi, p.x);
      ylo = std::min(ylo, p.y);
      yhi = std::max(yhi, p.y);
    }
  }
  out += "<g transform=\"translate(" + Short(ox) + "," + Short(oy) + ")\">\n";
  out += "<text x=\"" + Short(kPanelW / 2) +
         "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" + Escape(panel.title) + "</text>\n";
  const double w = kPanelW - kLeft - kRight, h = kPanelH - kTop - kBottom;
  out += "<rect x=\"" + Short(kLeft) + "\" y=\"" + Short(kTop) + "\" width=\"" + Short(w) +
         "\" height=\"" + Short(h) + "\" fill=\"none\" stroke=\"#888\"/>\n";
  if (!std::isfinite(xlo)) {
    out += "<text x=\"" + Short(kLeft + w / 2) + "\" y=\"" + Short(kTop + h / 2) +
           "\" text-anchor=\"middle\" fill=\"#888\">no data in this file</text>\n</g>\n";
    return;
  }
  if (xhi == xlo) xhi = xlo + 1;
  if (yhi == ylo) {
    ylo -= std::max(1e-3, std::fabs(ylo) * 0.05);
    yhi += std::max(1e-3, std::fabs(yhi) * 0.05);
  } else {
    const double pad = (yhi - ylo) * 0.05;
    ylo -= pad;
    yhi += pad;
  }
  auto px = [&](double x) { return kLeft + (x - xlo) / (xhi - xlo) * w; };
  auto py = [&](double y) { return kTop + h - (y - ylo) / (yhi - ylo) * h; };
  for (double t : Ticks(xlo, xhi)) {
    out += "<line x1=\"" + Short(px(t)) + "\" y1=\"" + Short(kTop + h) + "\" x2=\"" + Short(px(t)) +
           "\" y2=\"" + Short(kTop) + "\" stroke=\"#eee\"/><text x=\"" + Short(px(t)) + "\" y=\"" +
           Short(kTop + h + 16) + "\" text-anchor=\"middle\" font-size=\"11\">" + TickLabel(t) +
           "</text>\n";
  }
  for (double t : Ticks(ylo, yhi)) {
    out += "<line x1=\"" + Short(kLeft) + "\" y1=\"" + Short(py(t)) + "\" x2=\"" +
           Short(kLeft + w) + "\" y2=\"" + Short(py(t)) + "\" stroke=\"#eee\"/><text x=\"" +
           Short(kLeft - 6) + "\" y=\"" + Short(py(t) + 4) +
           "\" text-anchor=\"end\" font-size=\"11\">" + TickLabel(t) + "</text>\n";
  }
  out += "<text x=\"" + Short(kLeft + w / 2) + "\" y=\"" + Short(kPanelH - 12) +
         "\" text-anchor=\"middle\" font-size=\"12\">" + Escape(panel.x_label) + "</text>\n";
  out += "<text transform=\"translate(16," + Short(kTop + h / 2) +
         ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">" + Escape(panel.y_label) +
         "</text>\n";
  double legend_y = kTop + 14;
  for (const Series& s : panel.series) {
    if (s.points.empty()) continue;
    std::string values, points;
    for (const Point& p : s.points) {
      values += (values.empty() ? "" : " ") + Exact(p.x) + "," + Exact(p.y);
      points += (points.empty() ? "" : " ") + Short(px(p.x)) + "," + Short(py(p.y));
    }
    out += "<polyline data-series=\"" + s.name + "\" data-x=\"" + panel.x_name +
           "\" data-values=\"" + values + "\" points=\"" + points + "\" fill=\"none\" stroke=\"" +
           s.color + "\" stroke-width=\"2\"/>\n";
    // Few points (per epoch, the test): marked, so one point still shows.
    if (s.points.size() <= 50) {
      for (const Point& p : s.points) {
        out += "<circle cx=\"" + Short(px(p.x)) + "\" cy=\"" + Short(py(p.y)) +
               "\" r=\"3.5\" fill=\"" + s.color + "\"/>\n";
      }
    }
    out += "<line x1=\"" + Short(kLeft + w - 170) + "\" y1=\"" + Short(legend_y - 4) + "\" x2=\"" +
           Short(kLeft + w - 150) + "\" y2=\"" + Short(legend_y - 4) + "\" stroke=\"" + s.color +
           "\" stroke-width=\"2\"/><text x=\"" + Short(kLeft + w - 145) + "\" y=\"" +
           Short(legend_y) + "\" font-size=\"11\">" + Escape(s.label) + "</text>\n";
    legend_y += 15;
  }
  out += "</g>\n";
}

}  // namespace

Result<std::string> PlotCurvesSvg(const std::string& jsonl, const std::string& source) {
  namespace pt = boost::property_tree;
  // Series by what they show; each point is (time_s, rows, value).
  struct Raw {
    double time_s, rows, value;
  };
  std::map<std::string, std::vector<Raw>> raw;
  std::istringstream in(jsonl);
  int number = 0, lines = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    pt::ptree row;
    try {
      std::istringstream text(line);
      pt::read_json(text, row);
    } catch (const pt::json_parser_error& e) {
      return Status::InvalidArgument(source + ":" + std::to_string(number) +
                                     ": not a JSON object: " + e.message());
    }
    ++lines;
    const std::string event = row.get<std::string>("event", "");
    const boost::optional<double> time_s = row.get_optional<double>("time_s");
    const boost::optional<double> rows = row.get_optional<double>("fmps_train_rows_total");
    if (!time_s || !rows) {
      return Status::InvalidArgument(source + ":" + std::to_string(number) +
                                     ": no time_s or fmps_train_rows_total (is it a "
                                     "--metrics_out file?)");
    }
    auto take = [&](const char* series, std::initializer_list<const char*> keys) {
      for (const char* key : keys) {
        // Absent and null (not a number) values are skipped.
        if (boost::optional<double> v = row.get_optional<double>(key); v && std::isfinite(*v)) {
          raw[series].push_back({*time_s, *rows, *v});
          return;
        }
      }
    };
    if (event == "progress" && *rows > 0) {
      take("train_logloss", {"fmps_train_logloss"});
      take("rows_per_second", {"fmps_train_rows_per_second"});
    } else if (event == "epoch") {
      take("epoch_train_logloss", {"fmps_epoch_train_logloss"});
      take("validation_logloss", {"fmps_validation_logloss", "val_logloss"});
      take("validation_auc", {"fmps_validation_auc", "val_auc"});
    } else if (event == "end") {
      take("test_logloss", {"fmps_test_logloss"});
      take("test_auc", {"fmps_test_auc"});
    }
  }
  if (lines == 0) return Status::InvalidArgument(source + ": no lines to plot");

  auto series = [&](const std::string& name, const std::string& label, const std::string& color,
                    bool by_rows) {
    Series s{name, label, color, {}};
    for (const Raw& r : raw[name]) s.points.push_back({by_rows ? r.rows : r.time_s, r.value});
    return s;
  };
  auto logloss = [&](bool by_rows) {
    return std::vector<Series>{
        series("train_logloss", "train (progressive)", "#1f77b4", by_rows),
        series("epoch_train_logloss", "train, per epoch", "#17becf", by_rows),
        series("validation_logloss", "validation", "#d62728", by_rows),
        series("test_logloss", "test", "#2ca02c", by_rows)};
  };
  std::vector<Panel> panels{
      {"logloss against rows", "rows", "training rows", "logloss", logloss(true)},
      {"logloss against time", "time_s", "seconds", "logloss", logloss(false)},
      {"AUC against rows",
       "rows",
       "training rows",
       "AUC",
       {series("validation_auc", "validation", "#d62728", true),
        series("test_auc", "test", "#2ca02c", true)}},
      {"training speed",
       "time_s",
       "seconds",
       "rows/s",
       {series("rows_per_second", "rows/s", "#9467bd", false)}}};

  const double width = 2 * kPanelW, height = 2 * kPanelH + 40;
  std::string svg =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
      "width=\"" +
      Short(width) + "\" height=\"" + Short(height) + "\" viewBox=\"0 0 " + Short(width) + " " +
      Short(height) +
      "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"white\"/>\n<text x=\"" +
      Short(width / 2) +
      "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">fmps training curves: " +
      Escape(source) + "</text>\n";
  for (size_t i = 0; i < panels.size(); ++i)
    DrawPanel(panels[i], (i % 2) * kPanelW, 40 + (i / 2) * kPanelH, &svg);
  return svg + "</svg>\n";
}

}  // namespace fmps
