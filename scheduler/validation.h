// Validation figures and early stopping. The scheduler scores the model on validation data (a
// file, or the held-out rows of the training data) after every epoch, or every N training rows;
// EvaluationLog keeps each evaluation's figures (for progress lines and the "epochs" array of the
// JSON report) and says when early stopping ends the job and whether the model of the last
// evaluation is the best one.
#ifndef FMPS_SCHEDULER_VALIDATION_H_
#define FMPS_SCHEDULER_VALIDATION_H_

#include <cstdint>
#include <string>
#include <vector>

namespace fmps {

struct EvaluationFigures {
  int epoch = 0;             // 1-based epoch evaluated (at its end, or during it)
  bool epoch_end = true;     // false: an evaluation during the epoch (--validate_every)
  uint64_t rows = 0;         // training rows since the previous evaluation
  double seconds = 0;        // training time since the previous evaluation (validation excluded)
  double train_logloss = 0;  // progressive logloss of those rows
  bool validated = false;    // the fields below are set
  double val_logloss = 0, val_auc = 0;
  uint64_t val_rows = 0;
  double rows_per_s() const { return seconds > 0 ? static_cast<double>(rows) / seconds : 0; }
};

class EvaluationLog {
 public:
  // patience: evaluations without a better validation logloss that end training (0: never).
  explicit EvaluationLog(int patience) : patience_(patience) {}

  // Adds an evaluation; returns true when its validation logloss is the best so far.
  bool Add(const EvaluationFigures& figures);
  // Early stopping: the last `patience` evaluations did not improve on the best.
  bool ShouldStop() const;
  // The best evaluation (lowest validation logloss), or null when none was validated.
  const EvaluationFigures* Best() const;
  // True when the model as it stands is the best one (or nothing was validated).
  bool LastIsBest() const { return best_ < 0 || best_ + 1 == static_cast<int>(figures_.size()); }
  const std::vector<EvaluationFigures>& figures() const { return figures_; }

  // The progress line of evaluation i, e.g. "epoch 2: 57722 rows in 0.5 s (115444 rows/s), train
  // logloss 0.301234, val_logloss 0.289012, val_auc 0.931234 (5702 rows), best so far".
  std::string Line(size_t i) const;
  // The JSON array of every evaluation: [{"epoch":1,"seconds":..,"rows_per_s":..,
  // "train_logloss":..,"val_logloss":..,"val_auc":..}, ...]; val_* are null without validation.
  std::string Json() const;

 private:
  int patience_;
  std::vector<EvaluationFigures> figures_;
  int best_ = -1;
  int since_best_ = 0;  // evaluations after the best one
};

}  // namespace fmps

#endif  // FMPS_SCHEDULER_VALIDATION_H_
