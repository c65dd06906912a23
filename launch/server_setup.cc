#include "launch/server_setup.h"

#include <memory>

#include "models/job_config.h"
#include "models/model.h"
#include "ps/store_config.h"

namespace fmps {

Result<ServerSetup> MakeServerSetup(const proto::JobConfig& config, int server_rank) {
  Result<std::unique_ptr<Model>> created = CreateModel(ModelOptionsFromConfig(config));
  if (!created.ok()) return created.status();
  std::shared_ptr<Model> model = std::move(created.value());
  ServerSetup setup;
  setup.store = StoreOptionsFromConfig(config, model->EmbeddingWidth());
  setup.dense_lr = config.dense_lr();
  setup.stale_damping = config.stale_damping();
  if (server_rank == 0) {
    setup.dense_init.resize(model->DenseSize());
    model->InitDense(setup.dense_init, config.seed());
    setup.after_dense_update = [model](std::span<float> dense, double progress) {
      model->AfterDenseUpdate(dense, progress);
    };
    setup.dense_params = [model](std::span<const float> dense) {
      return model->DenseParams(dense);
    };
  }
  return setup;
}

}  // namespace fmps
