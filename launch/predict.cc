#include "launch/predict.h"

#include <glog/logging.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "launch/server_setup.h"
#include "models/model.h"
#include "ps/base/env.h"
#include "ps/checkpoint.h"
#include "ps/postoffice.h"
#include "ps/store/store.h"
#include "worker/batch_params.h"
#include "worker/evaluation.h"
#include "worker/job_config.h"
#include "worker/localizer.h"

namespace fmps {

Result<PredictReport> Predict(const PredictOptions& options) {
  Result<proto::Manifest> manifest = FindNewestGoodManifest(options.model_dir);
  if (!manifest.ok()) return manifest.status();
  proto::JobConfig config = manifest->config();
  if (!options.format.empty()) config.set_format(options.format);
  Result<std::unique_ptr<Model>> model = CreateModel(ModelOptionsFromConfig(config));
  if (!model.ok()) return model.status();
  const int width = (*model)->EmbeddingWidth();

  std::vector<std::unique_ptr<Store>> stores;
  std::vector<float> dense;
  for (const auto& entry : manifest->shards()) {
    std::string path = options.model_dir + "/" + entry.file();
    Result<std::string> bytes = ReadFile(path);
    if (!bytes.ok()) return bytes.status();
    Result<ShardData> shard = DecodeShard(bytes.value(), path);
    if (!shard.ok()) return shard.status();
    auto store = std::make_unique<Store>(StoreOptionsFromConfig(config, width));
    FMPS_RETURN_IF_ERROR(store->Deserialize(shard->store, path));
    if (entry.server() == 0) dense = shard->dense;
    stores.push_back(std::move(store));
  }
  if (dense.size() != (*model)->DenseSize()) {
    return Status::Corruption(options.model_dir + ": dense block does not match model " +
                              config.model());
  }

  Result<ReaderOptions> reader_options = ReaderOptionsFromConfig(config);
  if (!reader_options.ok()) return reader_options.status();
  Result<std::unique_ptr<Reader>> reader =
      Reader::Open(DataPart{options.data, 0, kWholeFile}, reader_options.value());
  if (!reader.ok()) return reader.status();
  FILE* out = options.out == "-" ? stdout : std::fopen(options.out.c_str(), "w");
  if (out == nullptr) return Status::IOError("cannot write " + options.out);

  KeyPartition partition(static_cast<int>(stores.size()));
  Localizer localizer(partition);
  Minibatch batch;
  LocalBatch local;
  BatchParams params;
  params.width = width;
  params.dense = dense;
  std::vector<float> values, labels, probs, logits;
  std::vector<uint16_t> widths;
  PredictReport report;
  report.version = manifest->version();
  while (true) {
    batch.Clear();
    Result<size_t> n = (*reader)->Read(options.batch_size, &batch);
    if (!n.ok()) {
      if (out != stdout) std::fclose(out);
      return n.status();
    }
    if (n.value() == 0) break;
    localizer.Localize(batch, config.num_fields(), &local);
    std::vector<size_t> slices = partition.Slices(local.mixed);
    values.clear();
    widths.clear();
    for (int s = 0; s < partition.num_servers(); ++s) {
      std::vector<float> v;
      std::vector<uint16_t> w;
      stores[s]->Pull(
          std::span<const uint64_t>(local.keys.data() + slices[s], slices[s + 1] - slices[s]), &v,
          &w);
      values.insert(values.end(), v.begin(), v.end());
      widths.insert(widths.end(), w.begin(), w.end());
    }
    FMPS_RETURN_IF_ERROR(params.Unpack(values, widths));
    logits.resize(local.rows());
    (*model)->Compute(local.View(), params.View(), logits, nullptr);
    for (size_t i = 0; i < logits.size(); ++i) {
      float p = static_cast<float>(Sigmoid(logits[i]));
      std::fprintf(out, "%.9g\n", p);
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
  report.auc = Auc(labels, probs);
  return report;
}

}  // namespace fmps
