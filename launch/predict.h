// Offline scoring: loads the newest good checkpoint of a model directory (every shard verified)
// and writes one line per input line, in input order: the row's probability, or nan for a line
// that cannot be scored (malformed: counted, logged as FILE:LINE: reason) or whose score is not
// finite. Rows without a label are scored too. An Avazu header line gets no output line.
#ifndef FMPS_LAUNCH_PREDICT_H_
#define FMPS_LAUNCH_PREDICT_H_

#include <string>

#include "config/params.h"
#include "ps/base/env.h"
#include "ps/base/status.h"

namespace fmps {

struct PredictOptions {
  std::string model_dir;  // directory with MANIFEST-* and shard files
  std::string data;       // input file ("-" for stdin)
  std::string format;     // empty: the format the model was trained on
  std::string out;        // output file, one probability per line ("-" for stdout)
  size_t batch_size = params::kDefault.batch_size;  // rows scored at a time
  // more lines that cannot be scored than this: an error
  uint64_t max_bad_lines = params::kDefault.max_bad_lines;
  Env* env = Env::Default();  // the model, the input and the output are opened through it
};

struct PredictReport {
  uint64_t rows = 0;
  double logloss = 0, auc = 0;    // against the input's labels, over the rows scored finite
  uint64_t nonfinite_scores = 0;  // rows scored NaN or infinite (written as nan)
  uint64_t bad_lines = 0;         // lines that could not be scored (written as nan)
  uint64_t lines = 0;             // lines read (rows, bad lines and an Avazu header)
  uint64_t unlabelled = 0;        // rows scored without a label (not in logloss and AUC)
  int64_t version = 0;            // checkpoint version used
};

Result<PredictReport> Predict(const PredictOptions& options);

}  // namespace fmps

#endif  // FMPS_LAUNCH_PREDICT_H_
