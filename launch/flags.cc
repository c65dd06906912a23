#include "launch/flags.h"

#include <algorithm>
#include <cstdio>

#define FMPS_DEFINE_int32(name, def, help) DEFINE_int32(name, def, help);
#define FMPS_DEFINE_int64(name, def, help) DEFINE_int64(name, def, help);
#define FMPS_DEFINE_uint64(name, def, help) DEFINE_uint64(name, def, help);
#define FMPS_DEFINE_double(name, def, help) DEFINE_double(name, def, help);
#define FMPS_DEFINE_bool(name, def, help) DEFINE_bool(name, def, help);
#define FMPS_DEFINE_string(name, def, help) DEFINE_string(name, def, help);
#define FMPS_DEFINE_int_list(name, def, help) DEFINE_string(name, def, help);
#define FMPS_DEFINE_glog_int32(name, def, help)  // glog defines it
#define FMPS_DEFINE_glog_string(name, def, help)
#define FMPS_JOB_PARAM(name, type, def, lo, hi, commands, roles, models, help) \
  FMPS_DEFINE_##type(name, def, help)
#define FMPS_FLAG(name, type, def, lo, hi, commands, help) FMPS_DEFINE_##type(name, def, help)
#include "config/params.def"
#undef FMPS_JOB_PARAM
#undef FMPS_FLAG

namespace fmps {

const std::vector<CommandInfo>& Commands() {
  static const std::vector<CommandInfo> commands{
      {"train", params::kTrain,
       "train a model; with no --scheduler, on a local cluster of processes"},
      {"scheduler", params::kScheduler, "run the scheduler of a job (the job's flags go here)"},
      {"server", params::kServer, "run a server: fmps server --scheduler=HOST:PORT"},
      {"worker", params::kWorker, "run a worker: fmps worker --scheduler=HOST:PORT"},
      {"predict", params::kPredict, "score data with a saved model: one probability per line"},
      {"serve", params::kServe, "rank candidates over HTTP with a saved model (POST /rank)"},
      {"tune", params::kTune,
       "search the settings that matter on a holdout of the training data (never --test); "
       "prints the best as a flagfile for `fmps train --flagfile=`"},
      {"export", params::kExport,
       "write one checkpoint as one self-describing file (docs/model-format.md)"},
      {"dump", params::kDump,
       "print an export file as text: fmps dump FILE [--names=DATA] [--top=N]"},
      {"models", params::kModels,
       "list the versions in --model_dir (job, parent, rows, test figures)"},
      {"plot", params::kPlot,
       "draw a --metrics_out FILE.jsonl as curves (SVG): fmps plot FILE.jsonl --out=curves.svg"},
      {"profile", params::kProfile,
       "sample the first training rows (--data) and print the defaults that adapt to them, as "
       "a flagfile"},
      {"gen", params::kGen, "write synthetic Criteo-format rows from a planted model to stdout"},
      {"keygen", params::kKeygen,
       "write a new cluster CURVE key to --out=DIR (DIR/cluster.key, mode 0600); jobs use it "
       "with --keys=DIR"},
      {"roles", params::kRoles,
       "print `SERVERS WORKERS`, the roles the job's flags (--flagfile too) ask for: launch "
       "scripts size the job with it"},
  };
  return commands;
}

const CommandInfo* FindCommand(const std::string& name) {
  for (const CommandInfo& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

std::vector<std::string> CommandFlags(const std::string& command) {
  std::vector<std::string> out;
  const CommandInfo* c = FindCommand(command);
  if (c == nullptr) return out;
  for (const params::ParamInfo& p : params::All()) {
    if (p.commands & c->bit) out.push_back(p.name);
  }
  return out;
}

void PrintHelp(const std::string& command) {
  const CommandInfo* c = FindCommand(command);
  if (c == nullptr) {
    std::printf("usage: fmps <command> [--flag=value ...]\n\ncommands:\n");
    for (const CommandInfo& info : Commands()) std::printf("  %-10s %s\n", info.name, info.summary);
    std::printf(
        "  %-10s %s\n\n`fmps <command> --help` lists the command's flags with their defaults.\n",
        "help", "this text");
    return;
  }
  std::printf("usage: fmps %s [--flag=value ...]\n%s\n\nflags [default; valid values]:\n", c->name,
              c->summary);
  auto print = [](const params::ParamInfo& p) {
    const std::string def = *p.default_text ? p.default_text : "\"\"";
    const bool numeric = p.type != params::Type::kBool && p.type != params::Type::kString &&
                         p.type != params::Type::kIntList;
    const std::string range = numeric ? "; " + params::RangeText(p) : "";
    std::printf("  --%-18s %s [%s%s]\n", p.name, p.help, def.c_str(), range.c_str());
  };
  // Every model's flags first, then the models' own, grouped by the models they belong to.
  std::vector<std::string> groups{""};
  for (const params::ParamInfo& p : params::All()) {
    if ((p.commands & c->bit) && std::find(groups.begin(), groups.end(), p.models) == groups.end())
      groups.push_back(p.models);
  }
  for (const std::string& group : groups) {
    if (!group.empty()) {
      std::string models = group;
      std::replace(models.begin(), models.end(), ' ', '|');
      std::printf("\nonly --model=%s:\n", models.c_str());
    }
    for (const params::ParamInfo& p : params::All()) {
      if ((p.commands & c->bit) && group == p.models) print(p);
    }
  }
}

Status ValidateFlags() {
#define FMPS_CHECK_NUMBER(name) \
  FMPS_RETURN_IF_ERROR(params::CheckRange(*params::Find(#name), static_cast<double>(FLAGS_##name)));
#define FMPS_CHECK_int32(name) FMPS_CHECK_NUMBER(name)
#define FMPS_CHECK_int64(name) FMPS_CHECK_NUMBER(name)
#define FMPS_CHECK_uint64(name) FMPS_CHECK_NUMBER(name)
#define FMPS_CHECK_double(name) FMPS_CHECK_NUMBER(name)
#define FMPS_CHECK_bool(name)
#define FMPS_CHECK_string(name)
#define FMPS_CHECK_glog_int32(name) FMPS_CHECK_NUMBER(name)
#define FMPS_CHECK_glog_string(name)
#define FMPS_CHECK_int_list(name) \
  FMPS_RETURN_IF_ERROR(params::ParseIntList(FLAGS_##name, #name).status());
#define FMPS_JOB_PARAM(name, type, def, lo, hi, commands, roles, models, help) \
  FMPS_CHECK_##type(name)
#define FMPS_FLAG(name, type, def, lo, hi, commands, help) FMPS_CHECK_##type(name)
#include "config/params.def"
#undef FMPS_JOB_PARAM
#undef FMPS_FLAG
  return Status::OK();
}

Result<proto::JobConfig> JobConfigFromFlags() {
  proto::JobConfig c;
#define FMPS_SET_int32(name) c.set_##name(FLAGS_##name);
#define FMPS_SET_int64(name) c.set_##name(FLAGS_##name);
#define FMPS_SET_uint64(name) c.set_##name(FLAGS_##name);
#define FMPS_SET_double(name) c.set_##name(FLAGS_##name);
#define FMPS_SET_bool(name) c.set_##name(FLAGS_##name);
#define FMPS_SET_string(name) c.set_##name(FLAGS_##name);
#define FMPS_SET_int_list(name)                                                \
  {                                                                            \
    Result<std::vector<int>> list = params::ParseIntList(FLAGS_##name, #name); \
    if (!list.ok()) return list.status();                                      \
    for (int v : list.value()) c.add_##name(v);                                \
  }
#define FMPS_JOB_PARAM(name, type, def, lo, hi, commands, roles, models, help) FMPS_SET_##type(name)
#define FMPS_FLAG(name, type, def, lo, hi, commands, help)
#include "config/params.def"
#undef FMPS_JOB_PARAM
#undef FMPS_FLAG
  return c;
}

}  // namespace fmps
