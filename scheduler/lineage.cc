#include "scheduler/lineage.h"

#include <glog/logging.h>

#include <map>
#include <vector>

#include "data/byte_source.h"
#include "models/job_config.h"
#include "ps/base/env.h"
#include "ps/checkpoint.h"

namespace fmps {
namespace {

const char kNewDataHint[] =
    "; give --resume_new_data to train the checkpoint's model on this data from its first part";

std::string Describe(const proto::Manifest::DataFile& f) {
  return f.path() + " (" + std::to_string(f.size()) + " bytes, mtime " +
         std::to_string(f.mtime_ns()) + " ns)";
}

}  // namespace

std::string CheckpointName(const std::string& dir, int64_t version) {
  return dir + ", version " + std::to_string(version);
}

void RecordTrainingData(const WorkPool& pool, proto::Manifest* m, Env* env) {
  m->clear_data();
  m->clear_parts();
  std::map<std::string, int> index;
  for (const DataPart& part : pool.parts()) {
    auto [it, added] = index.emplace(part.path, m->data_size());
    if (added) {
      proto::Manifest::DataFile* f = m->add_data();
      f->set_path(part.path);
      if (part.path != "-" && !IsStream(part.path)) {
        Result<FileInfo> info = env->Stat(part.path);
        if (info.ok()) {
          f->set_size(info->size);
          f->set_mtime_ns(info->mtime_ns);
        }
      }
    }
    proto::Manifest::PartRange* r = m->add_parts();
    r->set_file(it->second);
    r->set_begin(part.begin);
    r->set_end(part.end);
  }
}

Status CheckSameTrainingData(const proto::Manifest& m, const WorkPool& pool,
                             const std::string& model_dir, Env* env) {
  const std::string name = "--resume: checkpoint " + CheckpointName(model_dir, m.version());
  if (m.data_size() == 0 && m.parts_size() == 0) {
    LOG(WARNING) << name << " does not record the data it was trained on (an older fmps wrote it):"
                 << " its finished parts are taken to be this data's";
    return Status::OK();
  }
  proto::Manifest now;
  RecordTrainingData(pool, &now, env);
  if (now.data_size() != m.data_size()) {
    std::string was, is;
    for (const auto& f : m.data()) was += (was.empty() ? "" : ", ") + f.path();
    for (const auto& f : now.data()) is += (is.empty() ? "" : ", ") + f.path();
    return Status::InvalidArgument(
        name + " was trained on " + std::to_string(m.data_size()) + " file(s) (" + was +
        "); this job reads " + std::to_string(now.data_size()) + " (" + is + ")" + kNewDataHint);
  }
  for (int i = 0; i < m.data_size(); ++i) {
    const auto &a = m.data(i), &b = now.data(i);
    if (a.path() != b.path() || a.size() != b.size() || a.mtime_ns() != b.mtime_ns()) {
      return Status::InvalidArgument(name + " was trained on " + Describe(a) + "; this job reads " +
                                     Describe(b) + kNewDataHint);
    }
  }
  if (now.parts_size() != m.parts_size()) {
    return Status::InvalidArgument(name + " cut its data into " + std::to_string(m.parts_size()) +
                                   " parts; this job cuts the same files into " +
                                   std::to_string(now.parts_size()) + " (was --part_mb changed?)" +
                                   kNewDataHint);
  }
  for (int i = 0; i < m.parts_size(); ++i) {
    const auto &a = m.parts(i), &b = now.parts(i);
    if (a.file() != b.file() || a.begin() != b.begin() || a.end() != b.end()) {
      return Status::InvalidArgument(
          name + ": part " + std::to_string(i) + " was bytes [" + std::to_string(a.begin()) + ", " +
          std::to_string(a.end()) + ") of " + m.data(a.file()).path() + "; in this job it is [" +
          std::to_string(b.begin()) + ", " + std::to_string(b.end()) + ") of " +
          now.data(b.file()).path() + " (was --part_mb changed?)" + kNewDataHint);
    }
  }
  return Status::OK();
}

Status CheckSameModelShape(const proto::JobConfig& saved, const proto::JobConfig& job,
                           const std::string& what) {
  auto differ = [&](const std::string& flag, const std::string& was, const std::string& is) {
    return Status::InvalidArgument(what + " was trained with --" + flag + "=" + was +
                                   "; this job has --" + flag + "=" + is);
  };
  if (saved.model() != job.model()) return differ("model", saved.model(), job.model());
  if (saved.k() != job.k()) return differ("k", std::to_string(saved.k()), std::to_string(job.k()));
  if (saved.format() != job.format()) return differ("format", saved.format(), job.format());
  if (saved.num_fields() != job.num_fields()) {
    return differ("num_fields", std::to_string(saved.num_fields()),
                  std::to_string(job.num_fields()));
  }
  // The model's own shape options (same model on both sides here). A config the registry refuses
  // is reported by whoever builds the model.
  Result<std::unique_ptr<Model>> was = CreateModel(ModelOptionsFromConfig(saved));
  Result<std::unique_ptr<Model>> is = CreateModel(ModelOptionsFromConfig(job));
  if (!was.ok() || !is.ok()) return Status::OK();
  const auto was_flags = was.value()->ShapeFlags(), is_flags = is.value()->ShapeFlags();
  for (size_t i = 0; i < was_flags.size() && i < is_flags.size(); ++i) {
    if (was_flags[i] != is_flags[i])
      return differ(was_flags[i].first, was_flags[i].second, is_flags[i].second);
  }
  return Status::OK();
}

Result<std::optional<proto::Manifest>> FindResumeCheckpoint(const std::string& dir, Env* env) {
  std::vector<std::string> problems;
  Result<proto::Manifest> m = FindNewestGoodManifest(dir, env, &problems);
  if (m.ok()) return std::optional<proto::Manifest>(std::move(m.value()));
  if (problems.empty()) return std::optional<proto::Manifest>();
  std::string list;
  for (const std::string& p : problems) list += "\n  " + p;
  return Status::Corruption("--resume: none of the " + std::to_string(problems.size()) +
                            " checkpoints in " + dir +
                            " verifies; they are left as they are "
                            "(move them away to start from scratch):" +
                            list);
}

}  // namespace fmps
