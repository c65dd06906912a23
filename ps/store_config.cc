#include "ps/store_config.h"

#include <algorithm>
#include <vector>

#include "models/job_config.h"
#include "models/model.h"

namespace fmps {

StoreOptions StoreOptionsFromConfig(const proto::JobConfig& c, int embedding_width) {
  StoreOptions s;
  s.ftrl = FtrlParams{c.ftrl_alpha(), c.ftrl_beta(), c.ftrl_l1(), c.ftrl_l2()};
  s.v_lr = c.v_lr();
  s.v_init_scale = c.v_init_scale();
  s.v_l2 = c.v_l2();
  s.seed = c.seed();
  s.min_count = std::max<uint64_t>(1, c.min_count());
  s.sketch_mb = c.sketch_mb();
  s.evict_after = c.evict_after();
  s.max_memory_mb = c.store_memory_mb();
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
    s.policy = RankPolicy::DiFacto(static_cast<uint32_t>(c.k()),
                                   std::min<uint32_t>(static_cast<uint32_t>(c.rank_mid()), c.k()),
                                   min_count, std::max(min_count, c.rank_mid_count()),
                                   std::max(min_count, c.rank_head_count()));
  } else {
    s.policy = RankPolicy::Fixed(static_cast<uint32_t>(embedding_width), min_count);
  }
  return s;
}

}  // namespace fmps
