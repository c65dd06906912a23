#include "launch/saved_models.h"

#include <glog/logging.h>

#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "ps/checkpoint.h"
#include "scheduler/lineage.h"
#include "scheduler/work_pool.h"

namespace fmps {
namespace {

// A field count scanned from the data may be short of the saved model's (this data lacks a field
// the model has); the saved model's then holds. More fields than the model has cannot be continued.
Status AdoptSavedFieldCount(const proto::JobConfig& saved, const std::string& what,
                            bool num_fields_from_data, proto::JobConfig* job) {
  if (!num_fields_from_data || saved.format() != job->format() ||
      job->num_fields() == saved.num_fields()) {
    return Status::OK();
  }
  if (job->num_fields() > saved.num_fields()) {
    return Status::InvalidArgument(what + " has " + std::to_string(saved.num_fields()) +
                                   " fields (0.." + std::to_string(saved.num_fields() - 1) +
                                   "); this job's data has " + std::to_string(job->num_fields()) +
                                   ": a model cannot take fields it was not made with");
  }
  LOG(INFO) << what << " has " << saved.num_fields() << " fields; the data shows "
            << job->num_fields() << ": the job uses " << saved.num_fields();
  job->set_num_fields(saved.num_fields());
  return Status::OK();
}

}  // namespace

Status CheckAgainstSavedModel(bool num_fields_from_data, SchedulerOptions* o) {
  proto::JobConfig& job = o->config;
  if (o->resume) {
    const std::string& dir = job.model_dir();
    if (dir.empty()) return Status::OK();
    Result<std::optional<proto::Manifest>> found = FindResumeCheckpoint(dir, o->env);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return Status::OK();  // a first run: nothing to continue
    const proto::Manifest& m = **found;
    const std::string what = "--resume: checkpoint " + CheckpointName(dir, m.version());
    FMPS_RETURN_IF_ERROR(AdoptSavedFieldCount(m.config(), what, num_fields_from_data, &job));
    FMPS_RETURN_IF_ERROR(CheckSameModelShape(m.config(), job, what));
    WorkPool pool(o->pool);
    FMPS_RETURN_IF_ERROR(pool.AddFiles(o->train_files));
    Status same = CheckSameTrainingData(m, pool, dir, o->env);
    if (!same.ok() && !o->resume_new_data) return same;
    return Status::OK();  // --resume wins over --init_model
  }
  if (job.init_model().empty()) return Status::OK();
  Result<proto::Manifest> m = FindNewestGoodManifest(job.init_model(), o->env);
  if (!m.ok()) {
    return Status::NotFound("--init_model=" + job.init_model() + ": " + m.status().message());
  }
  const std::string what = "--init_model: " + CheckpointName(job.init_model(), m->version());
  FMPS_RETURN_IF_ERROR(AdoptSavedFieldCount(m->config(), what, num_fields_from_data, &job));
  return CheckSameModelShape(m->config(), job, what);
}

Result<std::string> ListVersions(const std::string& model_dir) {
  const std::vector<int64_t> versions = ManifestVersions(model_dir);
  if (versions.empty()) return Status::NotFound("no MANIFEST in " + model_dir);
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "%7s  %-16s  %-14s  %12s  %-19s  %9s  %12s  %8s  %s\n",
                "version", "job", "parent", "rows", "written (UTC)", "test_rows", "test_logloss",
                "test_auc", "status");
  out += line;
  for (int64_t v : versions) {
    Result<proto::Manifest> m = ReadManifest(model_dir + "/" + ManifestFileName(v));
    if (!m.ok()) {
      std::snprintf(line, sizeof(line), "%7" PRId64 "  %s\n", v,
                    ("damaged: " + m.status().message()).c_str());
      out += line;
      continue;
    }
    Status good = VerifyShards(model_dir, m.value());
    std::string parent = "-";
    if (m->parent_version() > 0) {
      parent = std::to_string(m->parent_version());
      if (m->parent_dir() != model_dir) parent += " in " + m->parent_dir();
    }
    char when[32] = "-";
    if (m->written_unix_s() > 0) {
      const time_t t = static_cast<time_t>(m->written_unix_s());
      struct tm tm;
      gmtime_r(&t, &tm);
      std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    }
    char test[64] = "        -             -         -";
    if (m->test_rows() > 0) {
      std::snprintf(test, sizeof(test), "%9" PRIu64 "  %12.6f  %8.6f", m->test_rows(),
                    m->test_logloss(), m->test_auc());
    }
    std::snprintf(line, sizeof(line), "%7" PRId64 "  %-16s  %-14s  %12" PRIu64 "  %-19s  %s  %s\n",
                  v, m->job_id().empty() ? "-" : m->job_id().c_str(), parent.c_str(), m->rows(),
                  when, test, good.ok() ? "good" : ("damaged: " + good.message()).c_str());
    out += line;
  }
  return out;
}

}  // namespace fmps
