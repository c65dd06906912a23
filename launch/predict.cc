#include "launch/predict.h"

#include <glog/logging.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <vector>

#include "data/reader.h"
#include "launch/server_setup.h"
#include "models/job_config.h"
#include "models/metrics.h"
#include "models/model.h"
#include "ps/postoffice.h"
#include "serving/model_snapshot.h"
#include "worker/localizer.h"

namespace fmps {

Result<PredictReport> Predict(const PredictOptions& options) {
  Result<std::unique_ptr<ModelSnapshot>> snapshot =
      ModelSnapshot::Load(options.model_dir, StoreOptionsFromConfig);
  if (!snapshot.ok()) return snapshot.status();
  const ModelSnapshot& model = *snapshot.value();
  proto::JobConfig config = model.config();
  const std::string trained = config.format();
  const std::string name = options.model_dir + " (version " + std::to_string(model.version()) + ")";
  if (!options.format.empty() && options.format != trained) {
    // Given on purpose: scored as asked, with a word that the scores may mean little.
    LOG(WARNING) << "--format=" << options.format << ": the model in " << name
                 << " was trained on " << trained << " data; scoring " << options.format
                 << " rows as asked";
    config.set_format(options.format);
  } else if (options.format.empty() && options.data != "-") {
    // Not given: the data must look like what the model was trained on (when it can be told).
    Result<DataFormat> sniffed = SniffFormat(options.data);
    if (sniffed.ok() && DataFormatName(sniffed.value()) != trained) {
      const std::string looks = DataFormatName(sniffed.value());
      return Status::InvalidArgument(options.data + " looks like " + looks +
                                     " data, but the model in " + name + " was trained on " +
                                     trained + " data; give --format=" + looks +
                                     " to score it anyway");
    }
  }

  Result<ReaderOptions> reader_options = ReaderOptionsFromConfig(config);
  if (!reader_options.ok()) return reader_options.status();
  Result<std::unique_ptr<Reader>> reader =
      Reader::Open(DataPart{options.data, 0, kWholeFile}, reader_options.value());
  if (!reader.ok()) return reader.status();
  FILE* out = options.out == "-" ? stdout : std::fopen(options.out.c_str(), "w");
  if (out == nullptr) return Status::IOError("cannot write " + options.out);

  Localizer localizer(KeyPartition(1));
  Minibatch batch;
  LocalBatch local;
  std::vector<float> w, V, labels, probs, logits;
  std::vector<uint16_t> widths;
  PredictReport report;
  report.version = model.version();
  while (true) {
    batch.Clear();
    Result<size_t> n = (*reader)->Read(options.batch_size, &batch);
    if (!n.ok()) {
      if (out != stdout) std::fclose(out);
      return n.status();
    }
    if (n.value() == 0) break;
    localizer.Localize(batch, config.num_fields(), &local);
    model.Lookup(local.keys, &w, &V, &widths);
    logits.resize(local.rows());
    model.model().Compute(local.View(),
                          ParamView{w.data(), V.data(), widths.data(), model.dense().data()},
                          logits, nullptr);
    for (size_t i = 0; i < logits.size(); ++i) {
      // A non-finite logit (input that overflows the model) is written as nan, whatever its sign.
      float p = std::isfinite(logits[i]) ? static_cast<float>(Sigmoid(logits[i]))
                                         : std::numeric_limits<float>::quiet_NaN();
      if (std::isnan(p)) {
        std::fputs("nan\n", out);
      } else {
        std::fprintf(out, "%.9g\n", p);
      }
      probs.push_back(p);
      labels.push_back(local.labels[i]);
    }
    report.rows += local.rows();
  }
  report.bad_lines = (*reader)->bad_lines();
  if (std::fflush(out) != 0 || (out != stdout && std::fclose(out) != 0)) {
    return Status::IOError("cannot write " + options.out);
  }
  report.logloss = LogLoss(labels, probs);
  report.auc = Auc(labels, probs, &report.nonfinite_scores);
  return report;
}

}  // namespace fmps
