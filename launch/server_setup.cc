#include "launch/server_setup.h"

#include <memory>

#include "models/model.h"
#include "models/job_config.h"

namespace fmps {

StoreOptions StoreOptionsFromConfig(const proto::JobConfig& c, int embedding_width) {
  StoreOptions s;
  s.ftrl_alpha = c.ftrl_alpha();
  s.ftrl_beta = c.ftrl_beta();
  s.ftrl_l1 = c.ftrl_l1();
  s.ftrl_l2 = c.ftrl_l2();
  s.v_lr = c.v_lr();
  s.v_init_scale = c.v_init_scale();
  s.v_l2 = c.v_l2();
  s.seed = c.seed();
  s.min_count = std::max<uint64_t>(1, c.min_count());
  s.sketch_mb = c.sketch_mb() > 0 ? c.sketch_mb() : s.sketch_mb;
  s.evict_after = c.evict_after();
  s.max_memory_mb = c.max_memory_mb();
  const uint64_t min_count = std::max<uint64_t>(1, c.v_min_count());
  // The model's own rank levels, if it has them (a config the registry refuses has none here:
  // whoever builds the model reports that).
  std::vector<RankLevelSpec> levels;
  if (Result<std::unique_ptr<Model>> model = CreateModel(ModelOptionsFromConfig(c)); model.ok())
    levels = model.value()->RankLevels();
  if (!levels.empty()) {
    RankPolicy p;
    for (const RankLevelSpec& level : levels)
      p.levels.push_back({std::max(level.min_count, min_count), level.width});
    // Levels whose threshold fell below min_count collapse onto it: keep the widest of equals.
    std::vector<RankLevel> kept;
    for (const RankLevel& l : p.levels) {
      if (!kept.empty() && kept.back().min_count == l.min_count)
        kept.back() = l;
      else
        kept.push_back(l);
    }
    p.levels = kept;
    s.policy = p;
  } else if (embedding_width == c.k()) {
    const uint32_t mid =
        c.rank_mid() > 0 ? static_cast<uint32_t>(c.rank_mid()) : static_cast<uint32_t>(c.k());
    s.policy = RankPolicy::DiFacto(static_cast<uint32_t>(c.k()), std::min<uint32_t>(mid, c.k()),
                                   min_count, std::max(min_count, c.rank_mid_count()),
                                   std::max(min_count, c.rank_head_count()));
  } else {
    s.policy = RankPolicy::Fixed(static_cast<uint32_t>(embedding_width), min_count);
  }
  return s;
}

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
