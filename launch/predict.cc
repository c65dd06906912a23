#include "launch/predict.h"

#include <glog/logging.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
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
namespace {

// The output lines gathered in memory and appended in chunks: one Append per row would be one
// write(2) per row. The first failed Append is kept and returned by every later call.
class OutputBuffer {
 public:
  explicit OutputBuffer(std::unique_ptr<WritableFile> file) : file_(std::move(file)) {}
  Status Add(std::string_view line) {
    buffer_.append(line);
    return buffer_.size() >= kChunkBytes ? Flush() : status_;
  }
  Status Close() {
    (void)Flush();
    Status closed = file_->Close();
    if (status_.ok()) status_ = closed;
    return status_;
  }

 private:
  static constexpr size_t kChunkBytes = 64 << 10;
  Status Flush() {
    if (status_.ok() && !buffer_.empty()) status_ = file_->Append(buffer_);
    buffer_.clear();
    return status_;
  }
  std::unique_ptr<WritableFile> file_;
  std::string buffer_;
  Status status_;
};

// The format rows are read in (config->format): --format when given, else the model's, which the
// data must not plainly contradict.
Status ChooseFormat(const PredictOptions& options, const ModelSnapshot& model,
                    proto::JobConfig* config) {
  const std::string trained = config->format();
  const std::string model_name =
      options.model_dir + " (version " + std::to_string(model.version()) + ")";
  if (!options.format.empty() && options.format != trained) {
    // Given on purpose: scored as asked, with a word that the scores may mean little.
    LOG(WARNING) << "--format=" << options.format << ": the model in " << model_name
                 << " was trained on " << trained << " data; scoring " << options.format
                 << " rows as asked";
    config->set_format(options.format);
  } else if (options.format.empty() && options.data != "-") {
    // Not given: the data must look like what the model was trained on (when it can be told).
    Result<DataFormat> sniffed = SniffFormat(options.data, options.env);
    if (sniffed.ok() && DataFormatName(sniffed.value()) != trained) {
      const std::string looks = DataFormatName(sniffed.value());
      return Status::InvalidArgument(
          options.data + " looks like " + looks + " data, but the model in " + model_name +
          " was trained on " + trained + " data; give --format=" + looks + " to score it anyway");
    }
  }
  return Status::OK();
}

}  // namespace

Result<PredictReport> Predict(const PredictOptions& options) {
  Result<std::unique_ptr<ModelSnapshot>> snapshot =
      ModelSnapshot::Load(options.model_dir, options.env);
  if (!snapshot.ok()) return snapshot.status();
  const ModelSnapshot& model = *snapshot.value();
  proto::JobConfig config = model.config();
  FMPS_RETURN_IF_ERROR(ChooseFormat(options, model, &config));

  Result<ReaderOptions> reader_options = ReaderOptionsFromConfig(config);
  if (!reader_options.ok()) return reader_options.status();
  // Every line is a row or a bad line (told here, in order, while the batch fills): a bad one is
  // written as nan where it stands, so output line N always belongs to input line N.
  Minibatch batch;
  std::vector<size_t> bad_before_row;  // per bad line of this batch: the rows read before it
  std::string last_bad;
  uint64_t bad_lines = 0;
  reader_options->for_scoring = true;
  reader_options->env = options.env;
  reader_options->on_bad_line = [&](const std::string& message) {
    bad_before_row.push_back(batch.rows());
    ++bad_lines;
    last_bad = message;
    if (bad_lines <= 20 || bad_lines % 1000 == 0)
      LOG(WARNING) << message << " (bad line " << bad_lines << "; written as nan)";
  };
  Result<std::unique_ptr<Reader>> reader =
      Reader::Open(DataPart{options.data, 0, kWholeFile}, reader_options.value());
  if (!reader.ok()) return reader.status();
  Result<std::unique_ptr<WritableFile>> out_file = options.env->NewWritableFile(options.out);
  if (!out_file.ok()) return out_file.status();
  OutputBuffer out(std::move(out_file.value()));
  auto fail = [&](Status st) {
    (void)out.Close();
    return st;
  };
  const std::string name = options.data == "-" ? "<stdin>" : options.data;

  Localizer localizer(KeyPartition(1));
  LocalBatch local;
  std::vector<float> w, V, labels, probs, logits;
  std::vector<uint16_t> widths;
  PredictReport report;
  report.version = model.version();
  while (true) {
    batch.Clear();
    bad_before_row.clear();
    Result<size_t> n = (*reader)->Read(options.batch_size, &batch);
    if (!n.ok()) return fail(n.status());
    if (bad_lines > options.max_bad_lines) {
      return fail(
          Status::InvalidArgument(name + ": more than " + std::to_string(options.max_bad_lines) +
                                  " malformed lines (--max_bad_lines); the last: " + last_bad));
    }
    logits.resize(batch.rows());
    if (batch.rows() > 0) {
      localizer.Localize(batch, config.num_fields(), &local);
      model.Lookup(local.keys, &w, &V, &widths);
      model.model().Compute(local.View(),
                            ParamView{w.data(), V.data(), widths.data(), model.dense().data()},
                            logits, nullptr);
    }
    size_t next_bad = 0;
    Status written;
    for (size_t i = 0; i <= logits.size(); ++i) {
      for (; next_bad < bad_before_row.size() && bad_before_row[next_bad] == i; ++next_bad)
        written = out.Add("nan\n");
      if (i == logits.size()) break;
      // A non-finite logit (input that overflows the model) is written as nan, whatever its sign.
      const float p = std::isfinite(logits[i]) ? static_cast<float>(Sigmoid(logits[i]))
                                               : std::numeric_limits<float>::quiet_NaN();
      if (std::isnan(p)) {
        written = out.Add("nan\n");
      } else {
        char line[32];
        const int size = std::snprintf(line, sizeof(line), "%.9g\n", p);
        written = out.Add(std::string_view(line, static_cast<size_t>(size)));
      }
      if (std::isnan(batch.labels[i])) {  // read without a label: scored, not measured
        ++report.unlabelled;
        report.nonfinite_scores += std::isnan(p);
        continue;
      }
      probs.push_back(p);
      labels.push_back(batch.labels[i]);
    }
    if (!written.ok()) return fail(written);
    report.rows += batch.rows();
    if (n.value() == 0) break;
  }
  report.bad_lines = bad_lines;
  report.lines = (*reader)->lines_read();
  FMPS_RETURN_IF_ERROR(out.Close());
  if (report.rows == 0) {
    // An empty file, or one of another format (or not text at all): nothing scored is an error.
    return Status::InvalidArgument(
        report.lines == 0 ? name + " holds no rows to score"
                          : name + ": none of its " + std::to_string(report.lines) +
                                " lines is a " + config.format() +
                                " row (is it the model's format? --format); the last: " + last_bad);
  }
  uint64_t nonfinite = 0;
  report.logloss = LogLoss(labels, probs);
  report.auc = Auc(labels, probs, &nonfinite);
  report.nonfinite_scores += nonfinite;
  return report;
}

}  // namespace fmps
