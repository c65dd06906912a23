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
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "data/byte_source.h"
#include "data/reader.h"
#include "datagen/generator.h"
#include "launch/cluster.h"
#include "launch/field_count.h"
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

// Data and model.
DEFINE_string(data, "", "training data: a file, a comma list, a glob or a directory; - for stdin");
DEFINE_string(test, "", "test data scored after training (logloss, AUC in the JSON line)");
DEFINE_string(
    validation, "",
    "validation data scored after every epoch (logloss, AUC in the progress lines and the "
    "JSON's \"epochs\"); see also --holdout");
DEFINE_double(holdout, 0,
              "fraction of the training rows held out for validation (by line hash, never trained "
              "on), when no --validation is given");
DEFINE_uint64(validate_every, 0,
              "> 0: also validate after about this many training rows (long one-pass jobs)");
DEFINE_int32(early_stop, 0,
             "> 0: stop when the validation logloss has not improved for this many evaluations "
             "and keep the best model (--epochs is then the most it runs)");
DEFINE_double(tune_budget_s, 300, "tune: no trial starts after this many seconds");
DEFINE_string(format, "criteo", "criteo | avazu | libffm | libsvm (libfm) | auto");
DEFINE_string(model, "fm", "fm | fwfm | dplr | pruned_fwfm | rafm | ffm");
DEFINE_int32(k, 8, "embedding rank (the largest rank when ranks adapt)");
DEFINE_int32(num_fields, 0,
             "libffm/libsvm: the job's fields 0..N-1, a line with another is a bad line (0: a scan "
             "of every input; stdin needs it unless --model=fm|rafm); Criteo and Avazu fix theirs");
DEFINE_int32(rank, 2, "DPLR-FwFM: rank rho of the field-pair matrix");
DEFINE_double(keep, 1.0, "pruned_fwfm: fraction of field-pair entries kept");
DEFINE_int64(keep_entries, -1, "pruned_fwfm: field-pair entries kept (overrides --keep when >= 0)");
DEFINE_bool(normalize_field_pairs, true,
            "fwfm/dplr: keep the mean |R| of field pairs at 1 (R and V trade scale)");
DEFINE_double(rafm_count_scale, 1.0, "RaFM: levels compare n / scale with the ranks (eq. 17 is 1)");
DEFINE_string(rafm_ranks, "4,8,16", "RaFM: embedding ranks D_1 < ... < D_l");
DEFINE_double(rafm_distill_weight, 1.0,
              "RaFM: weight of the distillation terms (Algorithm 1 is 1, 0: none)");
// Training loop.
DEFINE_int32(num_servers, 2, "servers in the job");
DEFINE_int32(num_workers, 2, "workers in the job");
DEFINE_int32(epochs, 1,
             "passes over the training data (with --early_stop the most it runs; unset: 30)");
DEFINE_int32(batch_size, 1000, "rows per minibatch");
DEFINE_int32(max_delay, 2, "minibatches a worker may have in flight (0: synchronous)");
DEFINE_int32(pull_ahead_after, 100,
             "after this many minibatches (-1: never) a worker pulls its next minibatch before "
             "pushing this one (with max_delay >= 1): faster; the next misses this one's update");
DEFINE_uint64(cache_mb, 1024,
              "MiB per worker of parsed, localized minibatches kept in memory for the next "
              "epochs, which replay them instead of reading the files again (0: read every epoch; "
              "used only with --epochs > 1)");
DEFINE_uint64(seed, 1, "seed of parameter initialisation");
DEFINE_string(model_dir, "", "where checkpoints and the final model go (empty: not saved)");
DEFINE_double(part_mb, 4, "size of a data part handed to a worker, in MB");
DEFINE_uint64(max_bad_lines, 1000, "malformed lines tolerated before the job stops");
// Update rules.
DEFINE_double(ftrl_alpha, 0.05, "FTRL learning rate alpha for w");
DEFINE_double(ftrl_beta, 1.0, "FTRL beta for w");
DEFINE_double(ftrl_l1, 5.0, "FTRL L1 for w (exact zeros)");
DEFINE_double(ftrl_l2, 1.0, "FTRL L2 for w");
DEFINE_double(v_lr, 0.05, "Adagrad learning rate for embeddings V");
DEFINE_double(v_init_scale, 0.01, "stddev of a new embedding's entries");
DEFINE_double(v_l2, 1e-4, "L2 on V");
DEFINE_double(stale_damping, 0.5,
              "servers scale Adagrad steps of a push by (1 + staleness)^-this (0: off)");
DEFINE_double(dense_lr, 0.05, "Adagrad learning rate for the bias and field-pair parameters");
DEFINE_uint64(v_min_count, 200, "occurrences (with w != 0) before a feature gets an embedding");
DEFINE_int32(rank_mid, 4, "DiFacto middle level: rank of features seen >= rank_mid_count times");
DEFINE_uint64(rank_mid_count, 500,
              "DiFacto: count from which a feature gets rank --rank_mid (below: min(n, rank_mid))");
DEFINE_uint64(rank_head_count, 1000, "DiFacto: count from which a feature gets the full rank --k");
// --- memory flags ---
DEFINE_uint64(
    min_count, 1,
    "occurrences before a feature gets a row on the servers (counted in a sketch until then)");
DEFINE_double(sketch_mb, 8,
              "MiB per server of the count-min sketch that counts features not yet admitted");
DEFINE_uint64(
    evict_after, 0,
    "drop rows not pushed (or with w = 0) for this many pushes to their server (0: never)");
DEFINE_uint64(store_memory_mb, 0,
              "memory cap of each server's store (its rows, index and admission sketch; not the "
              "process's buffers): the coldest rows are evicted past it (0: none)");
DEFINE_uint64(max_memory_mb, 0, "deprecated name of --store_memory_mb");
// Cluster.
DEFINE_string(scheduler, "", "HOST:PORT of the scheduler (servers and workers)");
DEFINE_string(host, "127.0.0.1", "address this node listens on and tells its peers");
DEFINE_int32(port, 0, "port this node listens on (0: any free port)");
DEFINE_int32(replace, -1, "start as the replacement of this node id");
DEFINE_string(job_id, "",
              "the job's id (default: the environment's FMPS_JOB_ID, else made at start by train "
              "and scheduler); servers and workers started by hand need the job's");
DEFINE_string(keys, "",
              "directory of the cluster's CURVE key (`fmps keygen --out=DIR`; default: the "
              "environment's FMPS_KEYS): every connection is encrypted and only nodes holding the key "
              "are admitted. Empty: plain TCP (trusted networks only)");
DEFINE_int32(restart_failed, 0,
             "train: restart a failed server or worker process, up to this many times in all");
DEFINE_double(replace_timeout, 300,
              "seconds a dead server may stay unreplaced before the job fails");
DEFINE_bool(inprocess, false, "train: run every role as a thread of this process (no network)");
DEFINE_string(hosts, "",
              "train: host file (one HOST or USER@HOST per line); servers then workers are started "
              "on its hosts in turn through ssh, the scheduler here");
DEFINE_string(ssh_options, "",
              "train --hosts: extra ssh options, split on spaces (e.g. \"-p 2222\")");
DEFINE_string(remote_fmps, "", "train --hosts: path of fmps on the hosts (default: this binary's)");
DEFINE_string(scheduler_host, "",
              "train --hosts: address of this machine that the hosts reach (default 127.0.0.1 "
              "when every host is loopback; otherwise required)");
DEFINE_double(join_timeout, 60, "seconds to wait for all nodes to register");
DEFINE_double(heartbeat_timeout, 20, "seconds without a heartbeat before a node is declared dead");
DEFINE_double(progress_every, 2, "seconds between progress lines");
DEFINE_double(checkpoint_every, 0,
              "seconds between checkpoints during training (0: only at the end)");
DEFINE_int32(keep_checkpoints, 3, "checkpoints kept in --model_dir");
DEFINE_bool(resume, false, "continue from the newest good checkpoint in --model_dir");
DEFINE_bool(resume_new_data, false,
            "with --resume: train the checkpoint's model on data other than it recorded (all "
            "epochs of it, from its first part) instead of refusing");
DEFINE_string(init_model, "", "warm start: load this model directory before training");
// Watching a job (docs/observability.md).
DEFINE_int32(metrics_port, 0,
             "port of this role's HTTP /metrics and /healthz (0: off, -1: any free port); train: "
             "-1 gives every role a free port, P > 0 the scheduler P, the servers P+1.. and the "
             "workers the ports after them");
DEFINE_string(metrics_out, "",
              "scheduler/train: JSONL file of the job's figures, a line per progress interval and "
              "per epoch, named as on /metrics (`fmps plot` draws it)");
DEFINE_double(metrics_linger, 0,
              "scheduler/train: seconds the scheduler's /metrics stays up after the job, so a "
              "scraper gets the final figures");
// Predict.
DEFINE_string(out, "-",
              "predict: output file, one probability per line; plot: the SVG (- for stdout)");
// Serve.
DEFINE_string(listen, "127.0.0.1:8080",
              "serve: HOST:PORT the HTTP service listens on (port 0: any)");
DEFINE_int32(serve_threads, 2, "serve: threads answering HTTP requests");
DEFINE_string(auth_token_file, "",
              "serve: file holding the token POST /rank then requires as 'Authorization: Bearer "
              "TOKEN' (read once at start, a trailing newline stripped); empty: no token needed");
DEFINE_double(reload_every, 0.25,
              "serve: seconds between looks at --model_dir's manifest names (a directory listing) "
              "for a newer version, which is then served without a restart (0: never; SIGHUP "
              "looks at once)");
// Export and dump (`--version=N` is read as --model_version: gflags owns --version).
DEFINE_int64(model_version, 0, "export: checkpoint version to export (0: the newest good one)");
DEFINE_string(names, "", "dump: data file whose tokens name the features (hashed as in training)");
DEFINE_uint64(top, 0, "dump: only the N largest features by --by (0: all, in key order)");
DEFINE_string(by, "w", "dump --top: w (|w|) or v (the embedding's norm)");
// Gen.
DEFINE_uint64(rows, 100000, "gen: rows to write");
DEFINE_uint64(model_seed, 42, "gen: seed of the planted model (share it between train and test)");
DEFINE_string(planted, "fm", "gen: planted interactions, fm | fwfm | dplr");
DEFINE_int32(planted_k, 4, "gen: rank of the planted embeddings");
DEFINE_int32(active_fields, 39,
             "gen: columns 1..n (I1.., then C1..) carry tokens; later columns are empty");
DEFINE_uint64(field_vocab, 0, "gen: > 0: every field's vocabulary (integer fields at most 100)");
DEFINE_double(linear_std, 1.0, "gen: std of the planted logit's linear part");
DEFINE_double(interaction_std, 1.2, "gen: std of the planted logit's pairwise part");
DEFINE_double(missing, 0.05, "gen: probability that a column is empty");
DEFINE_double(fwfm_strong_pairs, 0.1, "gen: fwfm: fraction of field pairs with a strong R entry");
DEFINE_double(fwfm_weak_std, 0.05, "gen: fwfm: std of the other pairs' R entries (0: exactly 0)");

namespace fmps {
namespace {

const std::map<std::string, std::vector<std::string>>& CommandFlags() {
  static const std::map<std::string, std::vector<std::string>> flags = [] {
    std::vector<std::string> job{"data",
                                 "test",
                                 "validation",
                                 "holdout",
                                 "validate_every",
                                 "early_stop",
                                 "format",
                                 "model",
                                 "k",
                                 "num_fields",
                                 "rank",
                                 "keep",
                                 "keep_entries",
                                 "normalize_field_pairs",
                                 "rafm_ranks",
                                 "rafm_count_scale",
                                 "rafm_distill_weight",
                                 "num_servers",
                                 "num_workers",
                                 "epochs",
                                 "batch_size",
                                 "max_delay",
                                 "pull_ahead_after",
                                 "cache_mb",
                                 "seed",
                                 "model_dir",
                                 "part_mb",
                                 "max_bad_lines",
                                 "ftrl_alpha",
                                 "ftrl_beta",
                                 "ftrl_l1",
                                 "ftrl_l2",
                                 "v_lr",
                                 "v_init_scale",
                                 "v_l2",
                                 "dense_lr",
                                 "stale_damping",
                                 "v_min_count",
                                 "rank_mid",
                                 "rank_mid_count",
                                 "rank_head_count",
                                 "min_count",
                                 "sketch_mb",
                                 "evict_after",
                                 "store_memory_mb",
                                 "join_timeout",
                                 "heartbeat_timeout",
                                 "progress_every",
                                 "checkpoint_every",
                                 "keep_checkpoints",
                                 "resume",
                                 "resume_new_data",
                                 "init_model",
                                 "replace_timeout",
                                 "metrics_port",
                                 "metrics_out",
                                 "metrics_linger",
                                 "log_dir",
                                 "v",
                                 "minloglevel",
                                 "job_id",
                                 "keys"};
    std::vector<std::string> train = job;
    train.push_back("inprocess");
    train.insert(train.end(),
                 {"restart_failed", "hosts", "ssh_options", "remote_fmps", "scheduler_host"});
    std::vector<std::string> sched = job;
    sched.insert(sched.end(), {"host", "port"});
    return std::map<std::string, std::vector<std::string>>{
        {"train", train},
        {"tune",
         [&] {
           std::vector<std::string> tune = job;
           tune.push_back("tune_budget_s");
           return tune;
         }()},
        {"scheduler", sched},
        {"server",
         {"scheduler", "host", "port", "replace", "join_timeout", "job_id", "keys", "metrics_port", "log_dir", "v",
          "minloglevel"}},
        {"worker",
         {"scheduler", "host", "port", "replace", "join_timeout", "job_id", "keys", "metrics_port", "log_dir", "v",
          "minloglevel"}},
        {"predict", {"model_dir", "data", "format", "out", "batch_size", "max_bad_lines"}},
        {"serve", {"model_dir", "listen", "serve_threads", "reload_every", "auth_token_file"}},
        {"export", {"model_dir", "model_version", "out"}},
        {"dump", {"names", "top", "by"}},
        {"models", {"model_dir"}},
        {"plot", {"out"}},
        {"keygen", {"out"}},
        {"gen",
         {"rows", "seed", "model_seed", "planted", "planted_k", "active_fields", "field_vocab",
          "linear_std", "interaction_std", "missing", "fwfm_strong_pairs", "fwfm_weak_std"}},
    };
  }();
  return flags;
}

const char* CommandSummary(const std::string& cmd) {
  if (cmd == "train") return "train a model; with no --scheduler, on a local cluster of processes";
  if (cmd == "scheduler") return "run the scheduler of a job (the job's flags go here)";
  if (cmd == "server") return "run a server: fmps server --scheduler=HOST:PORT";
  if (cmd == "worker") return "run a worker: fmps worker --scheduler=HOST:PORT";
  if (cmd == "predict") return "score data with a saved model: one probability per line";
  if (cmd == "serve") return "rank candidates over HTTP with a saved model (POST /rank)";
  if (cmd == "tune")
    return "search the settings that matter on a holdout of the training data (never --test); "
           "prints the best as a flagfile for `fmps train --flagfile=`";
  if (cmd == "export")
    return "write one checkpoint as one self-describing file (docs/model-format.md)";
  if (cmd == "dump") return "print an export file as text: fmps dump FILE [--names=DATA] [--top=N]";
  if (cmd == "gen") return "write synthetic Criteo-format rows from a planted model to stdout";
  if (cmd == "models") return "list the versions in --model_dir (job, parent, rows, test figures)";
  if (cmd == "keygen")
    return "write a new cluster CURVE key to --out=DIR (DIR/cluster.key, mode 0600); jobs use it "
           "with --keys=DIR";
  if (cmd == "plot")
    return "draw a --metrics_out FILE.jsonl as curves (SVG): fmps plot FILE.jsonl --out=curves.svg";
  return "";
}

void PrintHelp(const std::string& cmd) {
  if (cmd.empty()) {
    std::printf("usage: fmps <command> [--flag=value ...]\n\ncommands:\n");
    for (const auto& [name, flags] : CommandFlags())
      std::printf("  %-10s %s\n", name.c_str(), CommandSummary(name));
    std::printf(
        "  %-10s %s\n\n`fmps <command> --help` lists the command's flags with their defaults.\n",
        "help", "this text");
    return;
  }
  std::printf("usage: fmps %s [--flag=value ...]\n%s\n\nflags (default in brackets):\n",
              cmd.c_str(), CommandSummary(cmd));
  for (const std::string& name : CommandFlags().at(cmd)) {
    gflags::CommandLineFlagInfo info;
    if (gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
      std::printf("  --%-18s %s [%s]\n", name.c_str(), info.description.c_str(),
                  info.default_value.c_str());
    }
  }
}

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
  std::ifstream mode("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(mode, line) || line.find("[madvise]") == std::string::npos) return;
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

Result<std::vector<int>> ParseIntList(const std::string& text, const char* flag) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v <= 0) {
      return Status::InvalidArgument(std::string("--") + flag + "=" + text +
                                     ": expected positive integers");
    }
    out.push_back(static_cast<int>(v));
  }
  return out;
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
                                   "): the key admits its holder to the cluster; chmod 600 " + path);
  }
  Result<CurveKeys> keys = ReadCurveKeys(Env::Default(), dir);
  if (!keys.ok()) return keys.status();
  o.curve = keys.value();
  return o;
}

Result<SchedulerOptions> SchedulerOptionsFromFlags() {
  SchedulerOptions o;
  Result<std::string> job_id = JobIdFromFlags();
  if (!job_id.ok()) return job_id.status();
  o.config.set_job_id(job_id.value());
  if (FLAGS_data.empty())
    return Status::InvalidArgument("--data is required (a file, list, glob or directory)");
  Result<std::vector<std::string>> train = ExpandPaths(FLAGS_data);
  if (!train.ok()) return train.status();
  o.train_files = train.value();
  if (!FLAGS_test.empty()) {
    Result<std::vector<std::string>> test = ExpandPaths(FLAGS_test);
    if (!test.ok()) return test.status();
    o.test_files = test.value();
  }
  if (!FLAGS_validation.empty()) {
    Result<std::vector<std::string>> validation = ExpandPaths(FLAGS_validation);
    if (!validation.ok()) return validation.status();
    o.validation_files = validation.value();
  }
  if (!(FLAGS_holdout >= 0 && FLAGS_holdout < 1))
    return Status::InvalidArgument("--holdout must be in [0, 1)");
  if (FLAGS_holdout > 0 && !FLAGS_validation.empty())
    return Status::InvalidArgument("give --validation=FILE or --holdout, not both");
  if (FLAGS_early_stop < 0) return Status::InvalidArgument("--early_stop must be >= 0");
  if ((FLAGS_early_stop > 0 || FLAGS_validate_every > 0) && FLAGS_holdout == 0 &&
      FLAGS_validation.empty()) {
    return Status::InvalidArgument(
        "--early_stop and --validate_every need validation data: --validation=FILE or "
        "--holdout=FRACTION");
  }
  // Early stopping decides when to end: --epochs is then only a bound.
  if (FLAGS_early_stop > 0 && !FlagGiven("epochs")) FLAGS_epochs = 30;
  o.validate_every = FLAGS_validate_every;
  o.early_stop = FLAGS_early_stop;
  for (const auto& f : o.train_files) {
    if (f != "-" && ::access(f.c_str(), R_OK) != 0) return Status::IOError("cannot read " + f);
    if (FLAGS_epochs > 1 && FLAGS_cache_mb == 0 && IsStream(f)) {
      return Status::InvalidArgument((f == "-" ? std::string("stdin") : f) +
                                     " is a stream, read once: more than one epoch needs the "
                                     "workers' part caches (--cache_mb > 0)");
    }
  }
  Result<DataFormat> format = ParseDataFormat(FLAGS_format);
  if (!format.ok()) return format.status();
  if (format.value() == DataFormat::kAuto) {
    if (o.train_files[0] == "-")
      return Status::InvalidArgument("--format=auto cannot sniff stdin; name the format");
    format = SniffFormat(o.train_files[0]);
    if (!format.ok()) return format.status();
    LOG(INFO) << "--format=auto: " << o.train_files[0] << " looks like "
              << DataFormatName(format.value());
  }
  FieldCountOptions fields;
  fields.format = format.value();
  fields.given = FLAGS_num_fields;
  fields.model = FLAGS_model;
  for (const auto* files : {&o.train_files, &o.validation_files, &o.test_files})
    fields.inputs.insert(fields.inputs.end(), files->begin(), files->end());
  Result<JobFields> job_fields = DecideNumFields(fields);
  if (!job_fields.ok()) return job_fields.status();
  const int num_fields = job_fields->num_fields;
  const bool num_fields_from_data = job_fields->from_data;
  LOG(INFO) << num_fields << " fields: " << job_fields->source;
  if (FLAGS_num_servers < 1 || FLAGS_num_workers < 1) {
    return Status::InvalidArgument("--num_servers and --num_workers must be at least 1");
  }
  if (FLAGS_k < 1 || FLAGS_k > 1024) return Status::InvalidArgument("--k must be in 1..1024");
  if (FLAGS_rank_mid_count > FLAGS_rank_head_count) {
    return Status::InvalidArgument("--rank_mid_count must not exceed --rank_head_count");
  }
  if (FLAGS_batch_size < 1 || FLAGS_epochs < 1)
    return Status::InvalidArgument("--batch_size and --epochs must be >= 1");
  if (!FLAGS_init_model.empty() && ::access(FLAGS_init_model.c_str(), R_OK) != 0) {
    return Status::NotFound("--init_model=" + FLAGS_init_model + ": no such directory");
  }
  {
    // Empty files give no part: a job on nothing but them would "train" 0 rows and succeed.
    uint64_t bytes = 0;
    bool sized = true;
    for (const auto& f : o.train_files) {
      Result<uint64_t> size =
          f == "-" || IsStream(f) ? Result<uint64_t>(Status::NotFound(f)) : FileSize(f);
      sized = sized && size.ok();
      if (size.ok()) bytes += size.value();
    }
    if (sized && bytes == 0) {
      return Status::InvalidArgument(
          "--data=" + FLAGS_data + ": " +
          (o.train_files.size() == 1 ? o.train_files[0] + " is empty" : "every file is empty"));
    }
  }
  uint64_t store_memory_mb = FLAGS_store_memory_mb;
  if (!gflags::GetCommandLineFlagInfoOrDie("max_memory_mb").is_default) {
    if (!gflags::GetCommandLineFlagInfoOrDie("store_memory_mb").is_default)
      return Status::InvalidArgument(
          "give --store_memory_mb only (--max_memory_mb is its old name)");
    LOG(WARNING) << "--max_memory_mb is deprecated: it caps each server's store, not the process; "
                    "its name now is --store_memory_mb";
    store_memory_mb = FLAGS_max_memory_mb;
  }
  Result<std::vector<int>> ranks = ParseIntList(FLAGS_rafm_ranks, "rafm_ranks");
  if (!ranks.ok()) return ranks.status();

  proto::JobConfig& c = o.config;
  c.set_model(FLAGS_model);
  c.set_k(FLAGS_k);
  c.set_num_fields(num_fields);
  c.set_dplr_rank(FLAGS_rank);
  c.set_keep(FLAGS_keep);
  c.set_keep_entries(FLAGS_keep_entries);
  c.set_keep_field_pair_scale(!FLAGS_normalize_field_pairs);
  for (int r : ranks.value()) c.add_rafm_ranks(r);
  if (FLAGS_rafm_count_scale <= 0)
    return Status::InvalidArgument("--rafm_count_scale must be positive");
  c.set_rafm_count_scale(FLAGS_rafm_count_scale);
  if (!(FLAGS_rafm_distill_weight >= 0 && FLAGS_rafm_distill_weight <= 1000)) {
    return Status::InvalidArgument("--rafm_distill_weight must be in [0, 1000]");
  }
  c.set_rafm_distill_weight(static_cast<float>(FLAGS_rafm_distill_weight));
  c.set_ftrl_alpha(static_cast<float>(FLAGS_ftrl_alpha));
  c.set_ftrl_beta(static_cast<float>(FLAGS_ftrl_beta));
  c.set_ftrl_l1(static_cast<float>(FLAGS_ftrl_l1));
  c.set_ftrl_l2(static_cast<float>(FLAGS_ftrl_l2));
  c.set_v_lr(static_cast<float>(FLAGS_v_lr));
  c.set_v_init_scale(static_cast<float>(FLAGS_v_init_scale));
  c.set_v_l2(static_cast<float>(FLAGS_v_l2));
  c.set_dense_lr(static_cast<float>(FLAGS_dense_lr));
  c.set_stale_damping(static_cast<float>(FLAGS_stale_damping));
  c.set_v_min_count(FLAGS_v_min_count);
  c.set_rank_mid(FLAGS_rank_mid);
  c.set_rank_mid_count(FLAGS_rank_mid_count);
  c.set_rank_head_count(FLAGS_rank_head_count);
  c.set_min_count(FLAGS_min_count);
  c.set_sketch_mb(FLAGS_sketch_mb);
  c.set_evict_after(FLAGS_evict_after);
  c.set_max_memory_mb(store_memory_mb);
  c.set_format(DataFormatName(format.value()));
  c.set_batch_size(FLAGS_batch_size);
  c.set_max_delay(FLAGS_max_delay);
  c.set_pull_ahead_after(FLAGS_pull_ahead_after);
  c.set_cache_mb(FLAGS_cache_mb);
  c.set_seed(FLAGS_seed);
  c.set_epochs(FLAGS_epochs);
  c.set_holdout(FLAGS_holdout);
  c.set_max_bad_lines(FLAGS_max_bad_lines);
  c.set_num_servers(FLAGS_num_servers);
  c.set_num_workers(FLAGS_num_workers);
  c.set_model_dir(FLAGS_model_dir);
  c.set_init_model(FLAGS_init_model);
  // The model must exist before any process starts.
  Result<std::unique_ptr<Model>> model = CreateModel(ModelOptionsFromConfig(c));
  if (!model.ok()) return model.status();

  o.host = FLAGS_host;
  o.port = FLAGS_port;
  o.pool.part_bytes = static_cast<uint64_t>(std::max(0.001, FLAGS_part_mb) * (1 << 20));
  o.join_timeout_s = FLAGS_join_timeout;
  o.heartbeat_timeout_s = FLAGS_heartbeat_timeout;
  o.progress_every_s = FLAGS_progress_every;
  o.checkpoint_every_s = FLAGS_checkpoint_every;
  o.keep_checkpoints = FLAGS_keep_checkpoints;
  o.resume = FLAGS_resume;
  o.resume_new_data = FLAGS_resume_new_data;
  // Before any process starts: the saved model this job continues must fit it.
  FMPS_RETURN_IF_ERROR(CheckAgainstSavedModel(num_fields_from_data, &o));
  o.max_bad_lines = FLAGS_max_bad_lines;
  o.replace_timeout_s = FLAGS_replace_timeout;
  o.metrics_out = FLAGS_metrics_out;
  o.progress_bar = ::isatty(2) == 1;
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
  if (FLAGS_metrics_port < -1 || FLAGS_metrics_port > 65535)
    return Status::InvalidArgument("--metrics_port must be -1 (any), 0 (off) or a port");
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
            << scheduler.job_id() << " (servers and workers join with --job_id="
            << scheduler.job_id() << ")";
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
  if (FLAGS_serve_threads < 1 || FLAGS_serve_threads > 256)
    return Fail(Status::InvalidArgument("--serve_threads must be in 1..256"));
  if (FLAGS_reload_every < 0)
    return Fail(Status::InvalidArgument("--reload_every must be >= 0 seconds"));
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
  Result<std::unique_ptr<ModelSnapshot>> snapshot =
      ModelSnapshot::Load(FLAGS_model_dir, StoreOptionsFromConfig);
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
    Result<std::unique_ptr<ModelSnapshot>> newer = ModelSnapshot::LoadNewer(
        FLAGS_model_dir, std::max(service.version(), refused), StoreOptionsFromConfig);
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
  Result<ExportSummary> r = ExportModel(o, StoreOptionsFromConfig);
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
  if (FLAGS_out.empty()) return Fail(Status::InvalidArgument("--out=DIR is required"));
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
  std::ifstream in(files[0]);
  if (!in) return Fail(Status::IOError("cannot read " + files[0]));
  std::stringstream text;
  text << in.rdbuf();
  Result<std::string> svg = PlotCurvesSvg(text.str(), files[0]);
  if (!svg.ok()) return Fail(svg.status());
  if (FLAGS_out == "-") {
    std::fwrite(svg->data(), 1, svg->size(), stdout);
    return 0;
  }
  std::ofstream out(FLAGS_out, std::ios::binary);
  out << svg.value();
  out.close();
  if (!out) return Fail(Status::IOError("cannot write " + FLAGS_out));
  LOG(INFO) << "wrote " << FLAGS_out << " (open it in a browser)";
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
// and the flags the search sets itself; without --validation a trial holds out 10% of --data.
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
    if (is("test") || is("tune_budget_s") || is("model_dir") || is("epochs") || is("early_stop") ||
        is("v_l2") || is("dense_lr") || is("v_min_count") || is("rank_mid_count") ||
        is("rank_head_count") || is("progress_every") || is("v_lr") || is("v_init_scale") ||
        is("ftrl_l1") || is("ftrl_alpha") || is("batch_size"))
      continue;
    validation = validation || is("holdout") || is("validation");
    o.job_args.push_back(a);
  }
  if (!validation) o.job_args.push_back("--holdout=0.1");
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
  if (!CommandFlags().count(cmd)) {
    std::fprintf(stderr, "fmps: unknown command '%s'\n", cmd.c_str());
    PrintHelp("");
    return 2;
  }
  if (cmd != "gen" && cmd != "plot" && cmd != "keygen") {
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
  if (cmd != "gen" && cmd != "models" && cmd != "plot" && cmd != "keygen") {
    const bool huge = GlibcTunables().find("glibc.malloc.hugetlb=1") != std::string::npos;
    LOG(INFO) << "fmps " << cmd << " pid " << getpid()
              << (huge ? ", heap on transparent huge pages" : "");
  }
  ApplyEnvironment();
  if (cmd == "train") return RunTrain(static_cast<int>(args.size()), args.data());
  if (cmd == "tune") return RunTuneCommand(argc, argv);
  if (cmd == "scheduler") return RunScheduler();
  if (cmd == "server") return RunServerOrWorker(proto::SERVER);
  if (cmd == "worker") return RunServerOrWorker(proto::WORKER);
  if (cmd == "predict") return RunPredict();
  if (cmd == "serve") return RunServe();
  if (cmd == "gen") return RunGen();
  if (cmd == "export") return RunExport();
  if (cmd == "dump") return RunDump(positional);
  if (cmd == "models") return RunModels();
  if (cmd == "plot") return RunPlot(positional);
  if (cmd == "keygen") return RunKeygen();
  return 2;
}
