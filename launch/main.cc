// fmps: one binary, every role. `fmps train` runs a job (by default a local cluster of processes),
// `fmps scheduler|server|worker` start the roles by hand on any host, `fmps predict` scores data
// with a saved model, `fmps serve` ranks candidates over HTTP, `fmps gen` writes synthetic
// Criteo-format data. Flags and environment are read here and nowhere else; libraries get Options
// structs.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "data/byte_source.h"
#include "data/data_profile.h"
#include "data/reader.h"
#include "datagen/generator.h"
#include "launch/cluster.h"
#include "launch/data_defaults.h"
#include "launch/field_count.h"
#include "launch/flags.h"
#include "launch/plot.h"
#include "launch/predict.h"
#include "launch/saved_models.h"
#include "launch/server_setup.h"
#include "launch/tune.h"
#include "metrics/http_endpoint.h"
#include "metrics/metrics.h"
#include "models/job_config.h"
#include "models/model.h"
#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "ps/checkpoint.h"
#include "ps/counting_transport.h"
#include "ps/curve_keys.h"
#include "ps/job_id.h"
#include "ps/server.h"
#include "scheduler/scheduler.h"
#include "serving/http_service.h"
#include "serving/model_dump.h"
#include "serving/model_export.h"
#include "serving/model_snapshot.h"
#include "worker/worker.h"

namespace fmps {
namespace {

// Environment fallbacks for hand-started roles: FMPS_* first, then ps-lite's DMLC_* names.
void ApplyEnvironment() {
  auto fallback = [](const char* flag, std::initializer_list<const char*> vars) {
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(flag, &info) || !info.is_default) return;
    for (const char* var : vars) {
      if (const char* v = std::getenv(var); v != nullptr && *v) {
        gflags::SetCommandLineOption(flag, v);
        return;
      }
    }
  };
  fallback("num_servers", {"FMPS_NUM_SERVERS", "DMLC_NUM_SERVER"});
  fallback("num_workers", {"FMPS_NUM_WORKERS", "DMLC_NUM_WORKER"});
  fallback("host", {"FMPS_HOST", "DMLC_NODE_HOST"});
  if (FLAGS_scheduler.empty()) {
    if (const char* v = std::getenv("FMPS_SCHEDULER"); v != nullptr && *v) {
      FLAGS_scheduler = v;
    } else if (const char* h = std::getenv("DMLC_PS_ROOT_URI"),
               *p = std::getenv("DMLC_PS_ROOT_PORT");
               h && p) {
      FLAGS_scheduler = std::string(h) + ":" + p;
    }
  }
}

// Big hash tables (the servers' rows, the workers' localizer) are read at random: with 4 KiB
// pages nearly every access of a table larger than the TLB's reach also walks the page table.
// glibc backs its heap with transparent huge pages when the tunable glibc.malloc.hugetlb=1 is
// set, but reads tunables only when a process starts; so where the kernel gives huge pages on
// request ("[madvise]"), a process started without the tunable sets it and executes itself
// again, once (its children inherit it; the gain is in docs/performance-log.md). FMPS_HUGE_PAGES=0,
// or any glibc.malloc.hugetlb setting of the user's own, leaves the process as it is. Returns only
// if it did not re-execute.
std::string GlibcTunables() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return tunables != nullptr ? tunables : "";
}

void MaybeReexecWithHugePages(char** argv) {
  if (const char* v = std::getenv("FMPS_HUGE_PAGES"); v != nullptr && std::string(v) == "0") return;
  std::string t = GlibcTunables();
  if (t.find("glibc.malloc.hugetlb") != std::string::npos) return;
  Result<std::string> mode = ReadFile("/sys/kernel/mm/transparent_hugepage/enabled");
  if (!mode.ok() || mode->find("[madvise]") == std::string::npos) return;
  t += (t.empty() ? "" : ":") + std::string("glibc.malloc.hugetlb=1");
  if (::setenv("GLIBC_TUNABLES", t.c_str(), 1) != 0) return;
  ::execv("/proc/self/exe", argv);  // on failure (no /proc): go on with small pages
}

// glibc maps each allocation over 128 KiB (a pull answer, a received message) apart and returns
// freed memory at the heap's top over 128 KiB to the kernel, both adjusted as the process runs; a
// server then faulted in and zeroed the pages of its answers again and again. Fixed thresholds keep
// up to 64 MiB of freed heap for reuse and map apart only allocations over 32 MiB, which are freed
// at once (the faults saved: docs/performance-log.md). A user's own glibc.malloc thresholds are
// left alone.
void KeepFreedHeapForReuse() {
  const std::string t = GlibcTunables();
  if (t.find("mmap_threshold") != std::string::npos ||
      t.find("trim_threshold") != std::string::npos) {
    return;
  }
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

bool FlagGiven(const char* name) {
  gflags::CommandLineFlagInfo info;
  return gflags::GetCommandLineFlagInfo(name, &info) && !info.is_default;
}

// --job_id, else FMPS_JOB_ID, else "" (the scheduler then makes one); checked when given.
Result<std::string> JobIdFromFlags() {
  std::string id = FLAGS_job_id;
  if (id.empty()) {
    const char* env = std::getenv("FMPS_JOB_ID");
    if (env != nullptr) id = env;
  }
  if (!id.empty()) FMPS_RETURN_IF_ERROR(CheckJobId(id));
  return id;
}

// --keys, else FMPS_KEYS; "" when neither is set.
std::string KeysDirFromFlags() {
  if (!FLAGS_keys.empty()) return FLAGS_keys;
  const char* env = std::getenv("FMPS_KEYS");
  return env != nullptr ? env : "";
}

// The transport's options: CURVE with the cluster key when --keys (or FMPS_KEYS) names one. A key
// file others may read is refused, as ssh refuses such a private key: the key is the membership.
Result<ZmqTransportOptions> TransportOptionsFromFlags() {
  ZmqTransportOptions o;
  const std::string dir = KeysDirFromFlags();
  if (dir.empty()) return o;
  const std::string path = dir + "/" + kCurveKeyFile;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::InvalidArgument(path + " is readable by others (mode " + mode +
                                   "): the key admits its holder to the cluster; chmod 600 " +
                                   path);
  }
  Result<CurveKeys> keys = ReadCurveKeys(Env::Default(), dir);
  if (!keys.ok()) return keys.status();
  o.curve = keys.value();
  return o;
}

// --data, --test and --validation as lists of files (globs and directories expanded).
Status DataFilesFromFlags(SchedulerOptions* o) {
  if (FLAGS_data.empty())
    return Status::InvalidArgument("--data is required (a file, list, glob or directory)");
  Result<std::vector<std::string>> train = ExpandPaths(FLAGS_data);
  if (!train.ok()) return train.status();
  o->train_files = train.value();
  if (!FLAGS_test.empty()) {
    Result<std::vector<std::string>> test = ExpandPaths(FLAGS_test);
    if (!test.ok()) return test.status();
    o->test_files = test.value();
  }
  if (!FLAGS_validation.empty()) {
    Result<std::vector<std::string>> validation = ExpandPaths(FLAGS_validation);
    if (!validation.ok()) return validation.status();
    o->validation_files = validation.value();
  }
  return Status::OK();
}

// The adaptive parameters (launch/data_defaults.h) not given, from a profile of the first training
// rows; one log line says what was found and set. A stream cannot be sampled: the sparse settings.
Status ApplyDataDefaults(const std::vector<std::string>& train_files, DataFormat format,
                         int num_fields) {
  std::set<std::string> given;
  for (const std::string& name : AdaptiveParameters()) {
    if (FlagGiven(name.c_str())) given.insert(name);
  }
  if (given.size() == AdaptiveParameters().size()) return Status::OK();
  bool stream = false;
  for (const std::string& f : train_files) stream = stream || f == "-" || IsStream(f);
  std::string found = "a stream, not sampled: the sparse-data settings";
  double denseness = 0;
  if (!stream) {
    DataProfileOptions po;
    po.format = format;
    po.num_fields = num_fields;
    po.holdout = FLAGS_holdout;
    Result<DataProfile> profile = ProfileData(train_files, po);
    if (!profile.ok()) return profile.status();
    denseness = Denseness(profile->per_feature());
    found = DescribeProfile(profile.value());
  }
  std::string set;
  for (const auto& [name, value] :
       ResolvedFlags(InterpolateSettings(FLAGS_model, denseness), given)) {
    if (gflags::SetCommandLineOption(name.c_str(), value.c_str()).empty())
      return Status::InvalidArgument("cannot set --" + name + "=" + value);
    set += " --" + name + "=" + value;
  }
  char dense[32];
  std::snprintf(dense, sizeof(dense), "%.3g", denseness);
  LOG(INFO) << "defaults from the data (" << found << "; denseness " << dense << "):" << set;
  return Status::OK();
}

// Validation data from --validation or --holdout (not both), which --early_stop and
// --validate_every need.
Status ValidationFromFlags(SchedulerOptions* o) {
  if (FLAGS_holdout > 0 && !FLAGS_validation.empty())
    return Status::InvalidArgument("give --validation=FILE or --holdout, not both");
  if ((FLAGS_early_stop > 0 || FLAGS_validate_every > 0) && FLAGS_holdout == 0 &&
      FLAGS_validation.empty()) {
    return Status::InvalidArgument(
        "--early_stop and --validate_every need validation data: --validation=FILE or "
        "--holdout=FRACTION");
  }
  // Early stopping decides when to end: --epochs is then only a bound.
  if (FLAGS_early_stop > 0 && !FlagGiven("epochs")) FLAGS_epochs = 30;
  o->validate_every = FLAGS_validate_every;
  o->early_stop = FLAGS_early_stop;
  return Status::OK();
}

// Every training file readable; a stream (read once) only for one epoch or with part caches.
Status CheckTrainFiles(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    if (f != "-" && ::access(f.c_str(), R_OK) != 0) return Status::IOError("cannot read " + f);
    if (FLAGS_epochs > 1 && FLAGS_cache_mb == 0 && IsStream(f)) {
      return Status::InvalidArgument((f == "-" ? std::string("stdin") : f) +
                                     " is a stream, read once: more than one epoch needs the "
                                     "workers' part caches (--cache_mb > 0)");
    }
  }
  return Status::OK();
}

// --format; for auto, what the first training file looks like.
Result<DataFormat> FormatFromFlags(const std::string& first_train_file) {
  Result<DataFormat> format = ParseDataFormat(FLAGS_format);
  if (!format.ok() || format.value() != DataFormat::kAuto) return format;
  if (first_train_file == "-")
    return Status::InvalidArgument("--format=auto cannot sniff stdin; name the format");
  format = SniffFormat(first_train_file);
  if (!format.ok()) return format.status();
  LOG(INFO) << "--format=auto: " << first_train_file << " looks like "
            << DataFormatName(format.value());
  return format;
}

// The job's number of fields: --num_fields, or what the format or the data say.
Result<JobFields> FieldsFromFlags(DataFormat format, const SchedulerOptions& o) {
  FieldCountOptions fields;
  fields.format = format;
  fields.given = FLAGS_num_fields;
  fields.model = FLAGS_model;
  for (const auto* files : {&o.train_files, &o.validation_files, &o.test_files})
    fields.inputs.insert(fields.inputs.end(), files->begin(), files->end());
  Result<JobFields> job_fields = DecideNumFields(fields);
  if (job_fields.ok()) LOG(INFO) << job_fields->num_fields << " fields: " << job_fields->source;
  return job_fields;
}

// The rank thresholds' order, and that --init_model names something to start from.
Status CheckModelFlags() {
  if (FLAGS_rank_mid_count > FLAGS_rank_head_count) {
    return Status::InvalidArgument("--rank_mid_count must not exceed --rank_head_count");
  }
  if (!FLAGS_init_model.empty() && ::access(FLAGS_init_model.c_str(), R_OK) != 0) {
    return Status::NotFound("--init_model=" + FLAGS_init_model + ": no such directory");
  }
  return Status::OK();
}

// Empty files give no part: a job on nothing but them would "train" 0 rows and succeed.
Status CheckTrainDataNotEmpty(const std::vector<std::string>& files) {
  uint64_t bytes = 0;
  bool sized = true;
  for (const auto& f : files) {
    Result<uint64_t> size =
        f == "-" || IsStream(f) ? Result<uint64_t>(Status::NotFound(f)) : FileSize(f);
    sized = sized && size.ok();
    if (size.ok()) bytes += size.value();
  }
  if (sized && bytes == 0) {
    return Status::InvalidArgument(
        "--data=" + FLAGS_data + ": " +
        (files.size() == 1 ? files[0] + " is empty" : "every file is empty"));
  }
  return Status::OK();
}

// --max_memory_mb, the old name of --store_memory_mb.
Status StoreMemoryFromFlags() {
  if (!FlagGiven("max_memory_mb")) return Status::OK();
  if (FlagGiven("store_memory_mb"))
    return Status::InvalidArgument("give --store_memory_mb only (--max_memory_mb is its old name)");
  LOG(WARNING) << "--max_memory_mb is deprecated: it caps each server's store, not the process; "
                  "its name now is --store_memory_mb";
  FLAGS_store_memory_mb = FLAGS_max_memory_mb;
  return Status::OK();
}

// The scheduler's own settings: its address, parts, timeouts, checkpoints and reports.
void RunOptionsFromConfig(const proto::JobConfig& c, SchedulerOptions* o) {
  o->host = FLAGS_host;
  o->port = FLAGS_port;
  o->pool.part_bytes = std::max<uint64_t>(1, static_cast<uint64_t>(c.part_mb() * (1 << 20)));
  o->join_timeout_s = c.join_timeout();
  o->heartbeat_timeout_s = c.heartbeat_timeout();
  o->progress_every_s = c.progress_every();
  o->checkpoint_every_s = c.checkpoint_every();
  o->keep_checkpoints = c.keep_checkpoints();
  o->resume = c.resume();
  o->resume_new_data = c.resume_new_data();
  o->max_bad_lines = c.max_bad_lines();
  o->replace_timeout_s = c.replace_timeout();
  o->metrics_out = FLAGS_metrics_out;
  o->progress_bar = ::isatty(2) == 1;
}

Result<SchedulerOptions> SchedulerOptionsFromFlags() {
  SchedulerOptions o;
  Result<std::string> job_id = JobIdFromFlags();
  if (!job_id.ok()) return job_id.status();
  FMPS_RETURN_IF_ERROR(DataFilesFromFlags(&o));
  FMPS_RETURN_IF_ERROR(ValidationFromFlags(&o));
  FMPS_RETURN_IF_ERROR(CheckTrainFiles(o.train_files));
  Result<DataFormat> format = FormatFromFlags(o.train_files[0]);
  if (!format.ok()) return format.status();
  Result<JobFields> fields = FieldsFromFlags(format.value(), o);
  if (!fields.ok()) return fields.status();
  FMPS_RETURN_IF_ERROR(ApplyDataDefaults(o.train_files, format.value(), fields->num_fields));
  FMPS_RETURN_IF_ERROR(CheckModelFlags());
  FMPS_RETURN_IF_ERROR(CheckTrainDataNotEmpty(o.train_files));
  FMPS_RETURN_IF_ERROR(StoreMemoryFromFlags());

  Result<proto::JobConfig> config = JobConfigFromFlags();
  if (!config.ok()) return config.status();
  proto::JobConfig& c = o.config;
  c = config.value();
  // What the launcher resolved: the job id (or FMPS_JOB_ID), the format sniffed for auto, the
  // fields from the format or the data.
  c.set_job_id(job_id.value());
  c.set_format(DataFormatName(format.value()));
  c.set_num_fields(fields->num_fields);
  // The model must exist before any process starts.
  Result<std::unique_ptr<Model>> model = CreateModel(ModelOptionsFromConfig(c));
  if (!model.ok()) return model.status();
  RunOptionsFromConfig(c, &o);
  // Before any process starts: the saved model this job continues must fit it.
  FMPS_RETURN_IF_ERROR(CheckAgainstSavedModel(fields->from_data, &o));
  return o;
}

Result<std::pair<std::string, int>> ParseHostPort(const std::string& text) {
  size_t colon = text.rfind(':');
  if (text.empty() || colon == std::string::npos) {
    return Status::InvalidArgument("--scheduler=HOST:PORT is required (or FMPS_SCHEDULER)");
  }
  int port = std::atoi(text.c_str() + colon + 1);
  if (port <= 0 || port > 65535)
    return Status::InvalidArgument("--scheduler=" + text + ": bad port");
  return std::make_pair(text.substr(0, colon), port);
}

int Fail(const Status& st) {
  LOG(ERROR) << st.ToString();
  std::fprintf(stderr, "fmps: %s\n", st.ToString().c_str());
  return 1;
}

// The role's /metrics endpoint when --metrics_port is set (null when it is not).
Result<std::unique_ptr<MetricsEndpoint>> StartMetrics(const MetricsRegistry* registry,
                                                      const std::string& role) {
  if (FLAGS_metrics_port == 0) return std::unique_ptr<MetricsEndpoint>();
  MetricsEndpointOptions o;
  o.host = FLAGS_host;
  o.port = std::max(0, FLAGS_metrics_port);
  auto endpoint = std::make_unique<MetricsEndpoint>(registry, o);
  FMPS_RETURN_IF_ERROR(endpoint->Start());
  LOG(INFO) << role << " metrics on http://" << FLAGS_host << ":" << endpoint->port()
            << "/metrics (and /healthz)";
  return endpoint;
}

int RunScheduler() {
  Result<SchedulerOptions> options = SchedulerOptionsFromFlags();
  if (!options.ok()) return Fail(options.status());
  Result<ZmqTransportOptions> transport = TransportOptionsFromFlags();
  if (!transport.ok()) return Fail(transport.status());
  MetricsRegistry registry;
  options->metrics = &registry;
  Scheduler scheduler(NewCountingTransport(NewZmqTransport(transport.value()), &registry),
                      options.value());
  Result<std::unique_ptr<MetricsEndpoint>> endpoint = StartMetrics(&registry, "scheduler");
  if (!endpoint.ok()) return Fail(endpoint.status());
  Result<int> port = scheduler.Bind();
  if (!port.ok()) return Fail(port.status());
  LOG(INFO) << "scheduler listening on " << FLAGS_host << ":" << port.value() << ", job id "
            << scheduler.job_id()
            << " (servers and workers join with --job_id=" << scheduler.job_id() << ")";
  Result<JobReport> report = scheduler.Run();
  if (!report.ok()) return Fail(report.status());
  std::printf("%s\n", report->ToJson().c_str());
  std::fflush(stdout);
  if (endpoint.value() != nullptr && FLAGS_metrics_linger > 0) {
    LOG(INFO) << "job done; /metrics stays up for " << FLAGS_metrics_linger
              << " s (--metrics_linger)";
    std::this_thread::sleep_for(std::chrono::duration<double>(FLAGS_metrics_linger));
  }
  return 0;
}

PostofficeOptions NodeOptions(proto::Role role, const std::pair<std::string, int>& sched) {
  PostofficeOptions o;
  o.scheduler_host = sched.first;
  o.scheduler_port = sched.second;
  o.role = role;
  o.host = FLAGS_host;
  o.port = FLAGS_port;
  o.replace_id = FLAGS_replace;
  o.join_timeout_s = FLAGS_join_timeout;
  return o;
}

int RunServerOrWorker(proto::Role role) {
  Result<std::pair<std::string, int>> sched = ParseHostPort(FLAGS_scheduler);
  if (!sched.ok()) return Fail(sched.status());
  Result<std::string> job_id = JobIdFromFlags();
  if (!job_id.ok()) return Fail(job_id.status());
  PostofficeOptions po_options = NodeOptions(role, sched.value());
  po_options.job_id = job_id.value();
  Result<ZmqTransportOptions> transport = TransportOptionsFromFlags();
  if (!transport.ok()) return Fail(transport.status());
  // The node registers its figures when it is made, before the endpoint serves them.
  MetricsRegistry registry;
  auto po = std::make_unique<Postoffice>(
      NewCountingTransport(NewZmqTransport(transport.value()), &registry), po_options);
  std::unique_ptr<KVServer> server;
  std::unique_ptr<Worker> worker;
  if (role == proto::SERVER) {
    ServerOptions o;
    o.metrics = &registry;
    server = std::make_unique<KVServer>(std::move(po), MakeServerSetup, o);
  } else {
    WorkerOptions o;
    o.metrics = &registry;
    worker = std::make_unique<Worker>(std::move(po), o);
  }
  Result<std::unique_ptr<MetricsEndpoint>> endpoint =
      StartMetrics(&registry, role == proto::SERVER ? "server" : "worker");
  if (!endpoint.ok()) return Fail(endpoint.status());
  Status st = server ? server->Run() : worker->Run();
  return st.ok() ? 0 : Fail(st);
}

int RunTrain(int argc, char** argv) {
  if (!FLAGS_scheduler.empty()) {
    return Fail(
        Status::InvalidArgument("fmps train starts its own local cluster; for a multi-host job run "
                                "`fmps scheduler` with the job's flags "
                                "and `fmps server|worker --scheduler=HOST:PORT` on the hosts"));
  }
  // Validate everything before starting processes, so mistakes are one clear message.
  Result<SchedulerOptions> options = SchedulerOptionsFromFlags();
  if (!options.ok()) return Fail(options.status());
  if (FLAGS_inprocess) {
    Result<JobReport> report = RunInProcessCluster(options.value());
    if (!report.ok()) return Fail(report.status());
    std::printf("%s\n", report->ToJson().c_str());
    return 0;
  }
  LocalClusterOptions lc;
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return Fail(Status::IOError("cannot find the fmps binary (/proc/self/exe)"));
  lc.binary.assign(self, static_cast<size_t>(n));
  for (int i = 1; i < argc; ++i) lc.scheduler_args.push_back(argv[i]);
  // The count decided here (a scan's, or a saved model's adopted): the scheduler need not scan.
  if (FLAGS_num_fields == 0)
    lc.scheduler_args.push_back("--num_fields=" + std::to_string(options->config.num_fields()));
  // Made here, so that the launcher can hand it to every role (an id, not a secret).
  if (options->config.job_id().empty()) options->config.set_job_id(NewJobId());
  lc.scheduler_args.push_back("--job_id=" + options->config.job_id());
  lc.node_args.push_back("--job_id=" + options->config.job_id());
  // The settings resolved from the data here: the scheduler need not sample it again.
  for (const std::string& name : AdaptiveParameters()) {
    gflags::CommandLineFlagInfo info;
    if (gflags::GetCommandLineFlagInfo(name.c_str(), &info))
      lc.scheduler_args.push_back("--" + name + "=" + info.current_value);
  }
  // The key's directory, not the key: secrets stay off command lines.
  if (!KeysDirFromFlags().empty()) {
    Result<ZmqTransportOptions> transport = TransportOptionsFromFlags();
    if (!transport.ok()) return Fail(transport.status());
    lc.node_args.push_back("--keys=" + KeysDirFromFlags());
  }
  lc.num_servers = FLAGS_num_servers;
  lc.num_workers = FLAGS_num_workers;
  lc.restart_failed = FLAGS_restart_failed;
  lc.metrics_port = FLAGS_metrics_port;
  // The logging flags reach every role (the scheduler has all of ours).
  for (const char* flag : {"log_dir", "v", "minloglevel", "vmodule"}) {
    gflags::CommandLineFlagInfo info;
    if (gflags::GetCommandLineFlagInfo(flag, &info) && !info.is_default)
      lc.node_args.push_back("--" + info.name + "=" + info.current_value);
  }
  if (!FLAGS_hosts.empty()) {
    Result<std::vector<std::string>> hosts = ReadHostFile(FLAGS_hosts);
    if (!hosts.ok()) return Fail(hosts.status());
    lc.hosts = hosts.value();
    std::istringstream opts(FLAGS_ssh_options);
    for (std::string o; opts >> o;) lc.ssh_options.push_back(o);
    lc.remote_binary = FLAGS_remote_fmps;
    lc.scheduler_host = FLAGS_scheduler_host;
    if (lc.scheduler_host.empty()) {
      for (const std::string& h : lc.hosts) {
        const std::string addr = h.substr(h.find('@') + 1);
        if (addr != "127.0.0.1" && addr != "localhost") {
          return Fail(
              Status::InvalidArgument("--hosts: host " + h +
                                      " is not loopback; give --scheduler_host=ADDRESS of this "
                                      "machine as the hosts reach it"));
        }
      }
      lc.scheduler_host = "127.0.0.1";
    }
  }
  return RunLocalCluster(lc);
}

int RunPredict() {
  PredictOptions o;
  o.model_dir = FLAGS_model_dir;
  o.data = FLAGS_data;
  o.out = FLAGS_out;
  o.max_bad_lines = FLAGS_max_bad_lines;
  o.batch_size = static_cast<size_t>(FLAGS_batch_size);
  gflags::CommandLineFlagInfo info;
  if (gflags::GetCommandLineFlagInfo("format", &info) && !info.is_default) o.format = FLAGS_format;
  if (o.model_dir.empty() || o.data.empty())
    return Fail(Status::InvalidArgument("predict needs --model_dir and --data"));
  Result<PredictReport> r = Predict(o);
  if (!r.ok()) return Fail(r.status());
  if (r->unlabelled == r->rows) {
    LOG(INFO) << "scored " << r->rows << " rows (without labels) with checkpoint " << r->version
              << " of " << o.model_dir;
  } else {
    LOG(INFO) << "scored " << r->rows << " rows with checkpoint " << r->version << " of "
              << o.model_dir << ": logloss " << r->logloss << ", AUC " << r->auc
              << " (against the input's labels; " << r->unlabelled << " rows without one)";
  }
  if (r->bad_lines > 0) {
    LOG(WARNING) << r->bad_lines << " of " << r->lines
                 << " lines could not be scored: written as nan (--max_bad_lines="
                 << o.max_bad_lines << ")";
  }
  if (r->nonfinite_scores > 0) {
    LOG(WARNING) << r->nonfinite_scores
                 << " rows scored NaN or infinite (written as nan, left out of logloss and AUC)";
  }
  return 0;
}

// The bearer token of --auth_token_file: its bytes without the trailing newline; an error naming
// the file when it cannot be read, is empty, or holds what an HTTP header cannot carry.
Result<std::string> ReadAuthToken(const std::string& path) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return Status::IOError("--auth_token_file=" + path + ": " + text.status().message());
  }
  std::string token = std::move(text.value());
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) return Status::InvalidArgument("--auth_token_file=" + path + " is empty");
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    if (c <= 0x20 || c >= 0x7f) {
      return Status::InvalidArgument("--auth_token_file=" + path + ": byte " + std::to_string(i) +
                                     " of the token is not a printable ASCII character other "
                                     "than space (an HTTP header cannot carry it)");
    }
  }
  return token;
}

int RunServe() {
  if (FLAGS_model_dir.empty()) return Fail(Status::InvalidArgument("serve needs --model_dir"));
  std::string auth_token;
  if (!FLAGS_auth_token_file.empty()) {
    Result<std::string> token = ReadAuthToken(FLAGS_auth_token_file);
    if (!token.ok()) return Fail(token.status());
    auth_token = std::move(token.value());
  }
  // SIGINT/SIGTERM (stop) and SIGHUP (reload now) are blocked before any thread starts, so only
  // the sigtimedwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  Result<std::unique_ptr<ModelSnapshot>> snapshot = ModelSnapshot::Load(FLAGS_model_dir);
  if (!snapshot.ok()) return Fail(snapshot.status());
  const ModelSnapshot& s = *snapshot.value();
  LOG(INFO) << "loaded " << s.config().model() << " checkpoint " << s.version() << " of "
            << FLAGS_model_dir << ": " << s.num_keys() << " keys (" << s.num_dropped()
            << " more with w = 0 and no embedding left out: they score as unknown keys), "
            << s.num_fields() << " fields, width " << s.width();
  // Loading decodes whole shards into stores that are gone now: give their pages back.
  malloc_trim(0);
  HttpServiceOptions o;
  o.listen = FLAGS_listen;
  o.threads = FLAGS_serve_threads;
  o.auth_token = std::move(auth_token);
  const bool needs_token = !o.auth_token.empty();
  HttpService service(std::shared_ptr<const ModelSnapshot>(std::move(snapshot.value())), o);
  Status st = service.Start();
  if (!st.ok()) return Fail(st);
  LOG(INFO) << "serving on " << FLAGS_listen.substr(0, FLAGS_listen.rfind(':')) << ":"
            << service.port() << " (POST /rank, GET /healthz, GET /metrics) with "
            << FLAGS_serve_threads << " threads"
            << (needs_token ? "; /rank needs the bearer token of --auth_token_file" : "");
  // A newer checkpoint (training goes on writing them) is loaded beside the one served and then
  // swapped in. Manifests are written atomically after their shards, so one that does not verify is
  // damaged for good: it is reported once and not read again (a still newer one is).
  int64_t refused = 0;
  auto reload = [&] {
    Result<std::unique_ptr<ModelSnapshot>> newer =
        ModelSnapshot::LoadNewer(FLAGS_model_dir, std::max(service.version(), refused));
    if (!newer.ok()) {
      LOG(WARNING) << newer.status().ToString() << "; still serving checkpoint "
                   << service.version();
      refused = NewestManifestVersion(FLAGS_model_dir);
      return;
    }
    if (newer.value() == nullptr) return;
    const int64_t from = service.version();
    const ModelSnapshot& n = *newer.value();
    LOG(INFO) << "now serving checkpoint " << n.version() << " (was " << from
              << "): " << n.num_keys() << " keys";
    service.SwapSnapshot(std::move(newer.value()));
    malloc_trim(0);  // the load's scratch, and the old snapshot once its last request ends
  };
  while (true) {
    int signal_number = -1;
    if (FLAGS_reload_every > 0) {
      timespec wait;
      wait.tv_sec = static_cast<time_t>(FLAGS_reload_every);
      wait.tv_nsec =
          static_cast<long>((FLAGS_reload_every - static_cast<double>(wait.tv_sec)) * 1e9);
      signal_number = sigtimedwait(&signals, nullptr, &wait);
    } else {
      sigwait(&signals, &signal_number);
    }
    if (signal_number == SIGINT || signal_number == SIGTERM) {
      LOG(INFO) << "signal " << signal_number << ": stopping";
      break;
    }
    if (signal_number == SIGHUP || (signal_number < 0 && errno == EAGAIN)) reload();
  }
  service.Stop();
  return 0;
}

int RunExport() {
  if (FLAGS_model_dir.empty() || FLAGS_out.empty() || FLAGS_out == "-")
    return Fail(Status::InvalidArgument("export needs --model_dir and --out=FILE"));
  ExportOptions o;
  o.model_dir = FLAGS_model_dir;
  o.version = FLAGS_model_version;
  o.out = FLAGS_out;
  Result<ExportSummary> r = ExportModel(o);
  if (!r.ok()) return Fail(r.status());
  LOG(INFO) << "exported checkpoint " << r->version << " of " << o.model_dir << " to " << o.out
            << ": " << r->rows << " rows (" << r->embeddings << " with an embedding; " << r->dropped
            << " with w = 0 and no embedding left out), " << r->bytes << " bytes";
  return 0;
}

int RunDump(const std::vector<std::string>& positional) {
  if (positional.size() != 1)
    return Fail(Status::InvalidArgument("usage: fmps dump FILE [--names=DATA] [--top=N --by=w|v]"));
  DumpOptions o;
  o.file = positional[0];
  o.names = FLAGS_names;
  o.top = FLAGS_top;
  o.by = FLAGS_by;
  Result<DumpSummary> r = DumpModel(o, stdout);
  if (!r.ok()) return Fail(r.status());
  if (!o.names.empty())
    LOG(INFO) << r->named << " of " << r->rows << " features named by tokens of " << o.names;
  return 0;
}

int RunKeygen() {
  // --out is shared with commands whose "-" means stdout; a key pair is never written there.
  if (FLAGS_out.empty() || FLAGS_out == "-")
    return Fail(Status::InvalidArgument("--out=DIR is required (the directory of the new key)"));
  Result<CurveKeys> keys = NewCurveKeys();
  if (!keys.ok()) return Fail(keys.status());
  ::umask(077);  // the directory and the file are the owner's alone
  Status st = WriteCurveKeys(Env::Default(), FLAGS_out, keys.value());
  if (!st.ok()) return Fail(st);
  std::printf("wrote %s/%s (public key %s); start every role of a job with --keys=%s\n",
              FLAGS_out.c_str(), kCurveKeyFile, keys->public_key.c_str(), FLAGS_out.c_str());
  return 0;
}

int RunModels() {
  if (FLAGS_model_dir.empty()) return Fail(Status::InvalidArgument("models needs --model_dir"));
  Result<std::string> list = ListVersions(FLAGS_model_dir);
  if (!list.ok()) return Fail(list.status());
  std::fputs(list->c_str(), stdout);
  return 0;
}

int RunPlot(const std::vector<std::string>& files) {
  if (files.size() != 1)
    return Fail(
        Status::InvalidArgument("plot takes one --metrics_out file: fmps plot FILE.jsonl "
                                "--out=curves.svg"));
  Result<std::string> text = ReadFile(files[0]);
  if (!text.ok()) return Fail(text.status());
  Result<std::string> svg = PlotCurvesSvg(text.value(), files[0]);
  if (!svg.ok()) return Fail(svg.status());
  if (FLAGS_out == "-") {
    Result<std::unique_ptr<WritableFile>> out = Env::Default()->NewWritableFile("-");
    Status st = out.ok() ? out.value()->Append(svg.value()) : out.status();
    return st.ok() ? 0 : Fail(st);
  }
  // Atomically: a browser refreshing the page never sees half a picture.
  if (Status st = WriteFileAtomic(FLAGS_out, svg.value()); !st.ok()) return Fail(st);
  LOG(INFO) << "wrote " << FLAGS_out << " (open it in a browser)";
  return 0;
}

// `fmps profile`: the figures the adaptive defaults are taken from, and those defaults for
// --model, as a flagfile (the figures as comments).
int RunProfile() {
  if (FLAGS_data.empty()) return Fail(Status::InvalidArgument("profile needs --data"));
  Result<std::vector<std::string>> files = ExpandPaths(FLAGS_data);
  if (!files.ok()) return Fail(files.status());
  Result<DataFormat> format = ParseDataFormat(FLAGS_format);
  if (format.ok() && format.value() == DataFormat::kAuto) {
    if (files->at(0) == "-")
      return Fail(Status::InvalidArgument("--format=auto cannot sniff stdin; name the format"));
    format = SniffFormat(files->at(0));
  }
  if (!format.ok()) return Fail(format.status());
  DataProfileOptions po;
  po.format = format.value();
  po.num_fields = FLAGS_num_fields;
  po.holdout = FLAGS_holdout;
  Result<DataProfile> profile = ProfileData(files.value(), po);
  if (!profile.ok()) return Fail(profile.status());
  const double denseness = Denseness(profile->per_feature());
  std::printf("# %s\n", DescribeProfile(profile.value()).c_str());
  std::printf(
      "# denseness %.3g (0 at <= %g occurrences per feature, 1 at >= %g): the defaults of "
      "--model=%s\n",
      denseness, kSparsePerFeature, kDensePerFeature, FLAGS_model.c_str());
  for (const auto& [name, value] : ResolvedFlags(InterpolateSettings(FLAGS_model, denseness), {}))
    std::printf("--%s=%s\n", name.c_str(), value.c_str());
  std::fflush(stdout);
  return 0;
}

int RunGen() {
  datagen::GeneratorOptions o;
  o.rows = FLAGS_rows;
  o.seed = FLAGS_seed;
  o.model_seed = FLAGS_model_seed;
  o.planted = FLAGS_planted;
  o.k = FLAGS_planted_k;
  o.active_fields = FLAGS_active_fields;
  o.field_vocab = FLAGS_field_vocab;
  o.linear_std = FLAGS_linear_std;
  o.interaction_std = FLAGS_interaction_std;
  o.missing = FLAGS_missing;
  o.fwfm_strong_pairs = FLAGS_fwfm_strong_pairs;
  o.fwfm_weak_std = FLAGS_fwfm_weak_std;
  Status valid = datagen::ValidateOptions(o);
  if (!valid.ok()) return Fail(valid);
  Result<datagen::GeneratorResult> r = datagen::GenerateCriteo(o, 1);
  if (!r.ok()) return Fail(r.status());
  std::fprintf(stderr, "fmps gen: %llu rows, CTR %.4f, oracle logloss %.6f, %.0f rows/s\n",
               static_cast<unsigned long long>(r->rows),
               r->rows ? static_cast<double>(r->positives) / static_cast<double>(r->rows) : 0.0,
               r->oracle_logloss, r->seconds > 0 ? static_cast<double>(r->rows) / r->seconds : 0.0);
  return 0;
}

// fmps tune: the job's flags go to every trial, except --test (a trial never reads the test file)
// and the flags the search sets itself; without --validation a trial holds out 20% of --data.
int RunTuneCommand(int argc, char** argv) {
  TuneOptions o;
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return Fail(Status::IOError("cannot find the fmps binary (/proc/self/exe)"));
  o.binary.assign(self, static_cast<size_t>(n));
  o.budget_s = FLAGS_tune_budget_s;
  bool validation = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto is = [&](const char* flag) {
      const std::string f = std::string("--") + flag;
      return a == f || a.rfind(f + "=", 0) == 0;
    };
    const std::vector<std::string> searched = FlagsTheSearchSets();
    if (is("test") || is("tune_budget_s") || is("model_dir") ||
        std::any_of(searched.begin(), searched.end(),
                    [&](const std::string& f) { return is(f.c_str()); }))
      continue;
    validation = validation || is("holdout") || is("validation");
    o.job_args.push_back(a);
  }
  // A fifth, not a tenth: on Frappe a tenth (5.8k rows) chose settings 0.003 worse on the test file
  // than those a fifth chose (docs/models.md).
  if (!validation) o.job_args.push_back("--holdout=0.2");
  Result<std::string> flagfile = RunTune(o);
  if (!flagfile.ok()) return Fail(flagfile.status());
  std::printf("%s", flagfile->c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace fmps

int main(int argc, char** argv) {
  using namespace fmps;
  std::string cmd = argc > 1 ? argv[1] : "help";
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    PrintHelp(argc > 2 ? argv[2] : "");
    return 0;
  }
  if (FindCommand(cmd) == nullptr) {
    std::fprintf(stderr, "fmps: unknown command '%s'\n", cmd.c_str());
    PrintHelp("");
    return 2;
  }
  if (cmd != "gen" && cmd != "plot" && cmd != "keygen" && cmd != "roles") {
    MaybeReexecWithHugePages(argv);
    KeepFreedHeapForReuse();
  }
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      PrintHelp(cmd);
      return 0;
    }
  }
  // Shift the command away so gflags sees only flags.
  std::vector<char*> args{argv[0]};
  std::string model_version;
  for (int i = 2; i < argc; ++i) {
    if (std::strncmp(argv[i], "--version=", 10) == 0) {
      model_version = std::string("--model_version=") + (argv[i] + 10);
      args.push_back(model_version.data());
    } else {
      args.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(args.size());
  char** a = args.data();
  gflags::SetUsageMessage("fmps <command> [flags]; fmps help");
  const int first_positional = gflags::ParseCommandLineFlags(&n, &a, false);
  std::vector<std::string> positional(args.begin() + first_positional, args.end());
  // With --log_dir every process writes one file, fmps-ROLE.DATE-TIME.PID, and still streams to
  // stderr; glog's own default (a file per severity, none on stderr) would hide a local cluster.
  FLAGS_logtostderr = FLAGS_log_dir.empty();
  FLAGS_alsologtostderr = !FLAGS_log_dir.empty();
  google::InitGoogleLogging(argv[0]);
  if (!FLAGS_log_dir.empty()) {
    if (Status st = MakeDirs(FLAGS_log_dir); !st.ok()) return Fail(st);
    const std::string base = FLAGS_log_dir + "/fmps-" + cmd + ".";
    google::SetLogDestination(google::GLOG_INFO, base.c_str());
    for (auto severity : {google::GLOG_WARNING, google::GLOG_ERROR, google::GLOG_FATAL}) {
      google::SetLogDestination(severity, "");
    }
    google::SetLogSymlink(google::GLOG_INFO, "");
  }
  if (cmd != "gen" && cmd != "models" && cmd != "plot" && cmd != "keygen" && cmd != "roles") {
    const bool huge = GlibcTunables().find("glibc.malloc.hugetlb=1") != std::string::npos;
    LOG(INFO) << "fmps " << cmd << " pid " << getpid()
              << (huge ? ", heap on transparent huge pages" : "");
  }
  ApplyEnvironment();
  // Every flag in its range before anything starts, so a mistake is one clear message.
  if (Status valid = ValidateFlags(); !valid.ok()) return Fail(valid);
  if (cmd == "train") return RunTrain(static_cast<int>(args.size()), args.data());
  if (cmd == "tune") return RunTuneCommand(argc, argv);
  if (cmd == "scheduler") return RunScheduler();
  if (cmd == "server") return RunServerOrWorker(proto::SERVER);
  if (cmd == "worker") return RunServerOrWorker(proto::WORKER);
  if (cmd == "predict") return RunPredict();
  if (cmd == "serve") return RunServe();
  if (cmd == "gen") return RunGen();
  if (cmd == "profile") return RunProfile();
  if (cmd == "export") return RunExport();
  if (cmd == "dump") return RunDump(positional);
  if (cmd == "models") return RunModels();
  if (cmd == "plot") return RunPlot(positional);
  if (cmd == "keygen") return RunKeygen();
  if (cmd == "roles") {
    std::printf("%d %d\n", FLAGS_num_servers, FLAGS_num_workers);
    return 0;
  }
  return 2;
}
