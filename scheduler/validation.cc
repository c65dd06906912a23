#include "scheduler/validation.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>

namespace fmps {
namespace {

// %.6f, or null for NaN and infinities (JSON has no spelling for them).
std::string Number(double v) {
  if (!std::isfinite(v)) return "null";
  char text[64];
  std::snprintf(text, sizeof(text), "%.6f", v);
  return text;
}

}  // namespace

bool EvaluationLog::Add(const EvaluationFigures& figures) {
  figures_.push_back(figures);
  if (!figures.validated) return false;
  if (best_ < 0 || figures.val_logloss < figures_[best_].val_logloss) {
    best_ = static_cast<int>(figures_.size()) - 1;
    since_best_ = 0;
    return true;
  }
  ++since_best_;
  return false;
}

bool EvaluationLog::ShouldStop() const { return patience_ > 0 && since_best_ >= patience_; }

const EvaluationFigures* EvaluationLog::Best() const {
  return best_ < 0 ? nullptr : &figures_[best_];
}

std::string EvaluationLog::Line(size_t i) const {
  const EvaluationFigures& f = figures_.at(i);
  char buf[384];
  int n = std::snprintf(
      buf, sizeof(buf), "epoch %d%s: %" PRIu64 " rows in %.3f s (%.0f rows/s), train_logloss %.6f",
      f.epoch, f.epoch_end ? "" : " (during)", f.rows, f.seconds, f.rows_per_s(), f.train_logloss);
  if (f.validated && n > 0 && static_cast<size_t>(n) < sizeof(buf)) {
    std::snprintf(buf + n, sizeof(buf) - n, ", val_logloss %.6f, val_auc %.6f (%" PRIu64 " rows)%s",
                  f.val_logloss, f.val_auc, f.val_rows,
                  static_cast<int>(i) == best_ ? ", best so far" : "");
  }
  return buf;
}

std::string EvaluationLog::Json() const {
  std::string json = "[";
  for (size_t i = 0; i < figures_.size(); ++i) {
    const EvaluationFigures& f = figures_[i];
    std::string val = "\"val_logloss\":null,\"val_auc\":null,\"val_rows\":0";
    if (f.validated) {
      val = "\"val_logloss\":" + Number(f.val_logloss) + ",\"val_auc\":" + Number(f.val_auc) +
            ",\"val_rows\":" + std::to_string(f.val_rows);
    }
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "%s{\"epoch\":%d,\"epoch_end\":%s,\"rows\":%" PRIu64
                  ",\"seconds\":%.3f,\"rows_per_s\":%.1f,\"train_logloss\":",
                  i > 0 ? "," : "", f.epoch, f.epoch_end ? "true" : "false", f.rows, f.seconds,
                  f.rows_per_s());
    json += buf + Number(f.train_logloss) + "," + val + "}";
  }
  return json + "]";
}

}  // namespace fmps
