// Scheduler: the node that runs a job. It admits servers and workers, assigns ids and key ranges,
// hands out data parts from a WorkPool (epoch by epoch, then the test set), aggregates progress,
// notices nodes that stop sending heartbeats (a dead worker's parts go back to the pool),
// coordinates checkpoints (shards, then MANIFEST) and ends the job with a report.
// Single-threaded: Run() owns all state. Its definitions are split by concern: scheduler.cc (the
// loop and message dispatch), scheduler_membership.cc, scheduler_passes.cc,
// scheduler_checkpoints.cc and scheduler_report.cc.
#ifndef FMPS_SCHEDULER_SCHEDULER_H_
#define FMPS_SCHEDULER_SCHEDULER_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/params.h"
#include "proto/fmps.pb.h"
#include "ps/base/env.h"
#include "ps/transport.h"
#include "scheduler/job_metrics.h"
#include "scheduler/validation.h"
#include "scheduler/work_pool.h"

namespace fmps {

struct SchedulerOptions {
  std::string host = "127.0.0.1";  // address to listen on
  int port = 0;                    // 0: any free port
  proto::JobConfig config;         // sent to every node; num_servers/num_workers/epochs inside
  std::vector<std::string> train_files;
  std::vector<std::string> test_files;
  // Validation data scored after every epoch; empty with config.holdout() > 0: the held-out rows
  // of train_files; neither: no validation.
  std::vector<std::string> validation_files;
  uint64_t validate_every = params::kDefault.validate_every;  // > 0: also after this many rows
  int early_stop = params::kDefault.early_stop;  // > 0: stop after this many without improvement
  WorkPoolOptions pool;                          // part size
  // From the config (launch/) or, in tests, the table's defaults (config/params.def).
  double join_timeout_s = params::kDefault.join_timeout;  // all nodes must register within this
  double heartbeat_timeout_s = params::kDefault.heartbeat_timeout;  // silent this long: dead
  double progress_every_s = params::kDefault.progress_every;      // seconds between progress lines
  double checkpoint_every_s = params::kDefault.checkpoint_every;  // 0: only at the end
  int keep_checkpoints = params::kDefault.keep_checkpoints;       // older checkpoints are deleted
  bool resume = params::kDefault.resume;  // continue from the newest good checkpoint in model_dir
  // With resume: when the data is not what the checkpoint recorded, load its model and train all
  // epochs of this data (instead of refusing to start).
  bool resume_new_data = params::kDefault.resume_new_data;
  uint64_t max_bad_lines = params::kDefault.max_bad_lines;      // more malformed lines end the job
  double replace_timeout_s = params::kDefault.replace_timeout;  // a dead server must be replaced
  Env* env = Env::Default();           // manifests are written and read through it
  MetricsRegistry* metrics = nullptr;  // where the job's figures go (null: kept privately)
  std::string metrics_out;             // JSONL file of the figures per progress line and epoch
  bool progress_bar = false;           // progress as a bar redrawn on stderr (a terminal)
};

struct JobReport {
  uint64_t rows = 0;          // training rows over all epochs
  uint64_t resumed_rows = 0;  // of which trained before a --resume (not timed here)
  double seconds = 0;         // wall time of the job
  double train_seconds = 0;   // wall time of the training passes (reading included)
  double train_logloss = 0;   // progressive logloss of the last epoch
  // Rows per second of each epoch trained in this run (wall time from its first part handed out
  // to its last part done): later epochs replay the workers' part caches.
  std::vector<double> epoch_rows_per_s;
  uint64_t replayed_rows = 0;  // training rows the workers replayed from their part caches
  double test_logloss = 0, test_auc = 0;  // over the test rows whose score is finite
  uint64_t test_rows = 0;
  uint64_t test_nonfinite_scores = 0;  // test rows scored NaN or infinite
  uint64_t nonfinite_pushes = 0;       // pushes the servers dropped for a NaN or infinite gradient
  double peak_rss_mb = 0;              // largest peak RSS of any node
  double peak_rss_scheduler_mb = 0, peak_rss_server_mb = 0,
         peak_rss_worker_mb = 0;  // by role (max)
  uint64_t nonzero_w = 0, embeddings = 0, embedding_floats = 0, params = 0;
  uint64_t bad_lines = 0;
  std::string model, model_dir;
  // Validation (empty without it): each evaluation's figures, as EvaluationLog::Json.
  std::string epochs_json = "[]";
  uint64_t holdout_rows = 0;    // training rows held out for validation in the last full epoch
  int best_epoch = 0;           // epoch of the best validation logloss (0: no validation)
  double best_val_logloss = 0;  // of the model kept (with --early_stop, the best one)
  bool stopped_early = false;
  double validation_seconds = 0;  // wall time of the validation passes
  std::string ToJson() const;
};

class Scheduler {
 public:
  Scheduler(std::unique_ptr<Transport> transport, const SchedulerOptions& options);
  ~Scheduler();
  // Listens; returns the port (so launchers and in-process clusters can tell the nodes).
  Result<int> Bind();
  // Runs the job to its end. On failure, tells every node to stop and returns why.
  Result<JobReport> Run();
  // The job's id (JobConfig.job_id, made here when the options had none): nodes need it to join.
  const std::string& job_id() const { return options_.config.job_id(); }

 private:
  struct Node {
    proto::NodeInfo info;
    double last_seen = 0;
    bool dead = false;
    proto::Heartbeat heartbeat;
    double last_heartbeat = 0;  // when heartbeat was received
    uint64_t token = 0;         // its NodeTable.your_token: its messages must carry it
  };
  enum class Phase { kJoining, kTraining, kValidating, kTesting, kDone };

  // Run's steps. PrepareJob: the data's parts, model_dir, what --resume or --init_model starts
  // from. RunPasses: from the first part handed out to the job's end. MakeReport: the figures,
  // ScoreTestPass: the test pass's (also into the final manifest).
  Status PrepareJob();
  Status RunPasses();
  JobReport MakeReport();
  void ScoreTestPass(JobReport* r);
  Status Join();
  // --resume: finds the checkpoint, checks it fits this job and its data, marks its parts done.
  Status Resume();
  proto::NodeTable Table() const;
  bool AdmitReplacement(const proto::NodeInfo& reg);
  void DeclareDead(int id, double silent_s);
  bool AllServersAlive() const;
  Status Handle(Message&& msg);
  Status HandleRequestPart(int worker);
  Status HandlePartDone(int worker, const proto::PartDone& done);
  void HandleReturnPart(int worker, const proto::Part& part);
  // The pool of pass `pass` (an epoch, or -1: the test pass) if it is the current one, else null.
  WorkPool* PoolOfPass(int pass);
  Status HandleCheckpointDone(const proto::Checkpoint& ckpt);
  Status Tick();
  Status AdvanceIfPassDone();
  // Validation and early stopping (scheduler/validation.h keeps the figures).
  bool ValidationEnabled() const { return val_pool_.num_parts() > 0; }
  // --validate_every: enough training rows since the last evaluation (no new training parts).
  bool ValidationDue() const;
  // The figures of the training since the last evaluation.
  EvaluationFigures TrainingFigures(bool epoch_end) const;
  void StartValidation(const EvaluationFigures& figures);
  Status FinishValidation();
  // After an evaluation: the next epoch, the rest of this one, or the end of training.
  Status ContinueTraining();
  Status NextEpoch();
  // Training is over: restores the best model if early stopping kept one, then the test pass.
  Status FinishTraining();
  void EnterTestingOrDone();
  // Asks every server to keep a copy of its shard in memory, or to put it back (restore).
  void SendKeptCopy(bool restore);
  Status HandleKeptCopyDone(const proto::Checkpoint& ckpt);
  void StartCheckpoint();
  void SendProgressToServers(double progress);
  double Progress() const;  // fraction of training done, in [0, 1]
  void PrintProgress();
  void Broadcast(proto::Command cmd, const std::string& error = "");
  // Sends SHUTDOWN (with `error`; empty: the job ended well) to nodes that registered but hold no
  // id: those that came to a job that will not start, or that waited to replace a failed node.
  void ShutDownUnadmitted(const std::vector<proto::NodeInfo>& nodes, const std::string& error);
  // True when `list` holds a registration from node's HOST:PORT.
  static bool Registered(const proto::NodeInfo& node, const std::vector<proto::NodeInfo>& list);
  // True for a message of a node of an earlier run of this scheduler (its incarnation is not ours):
  // to be dropped; at its heartbeat the node is told to go (once).
  bool SendHomeIfStale(const Message& msg);
  // False (and the message counted and logged) for a message of another job or none; a REGISTER
  // of one is refused: told so once per address, so that its node exits saying why.
  bool OfThisJob(const Message& msg);
  // False (counted, logged) for a message from a node of the table that does not carry that
  // node's token (or carries incarnation 0): a stranger's forgery, e.g. a FATAL naming a node.
  bool FromTheNodeItNames(const Message& msg);
  // At most one warning per kind of refusal per 10 s, with the count so far.
  void LogRefusal(int kind, const std::string& what);
  Status Send(int id, Message msg);
  std::string Name(int id) const;
  bool JobComplete() const;
  void UpdateNodeGauges();
  // An evaluation was added to evaluations_: its figures go to /metrics and --metrics_out.
  void RecordEvaluation(const EvaluationFigures& f);

  std::unique_ptr<Transport> transport_;
  SchedulerOptions options_;
  std::vector<Node> nodes_;  // by id; 0 is the scheduler
  Phase phase_ = Phase::kJoining;
  WorkPool train_pool_, test_pool_, val_pool_;
  int epoch_ = 0;
  double start_ = 0, train_start_ = 0, train_end_ = 0, last_progress_ = 0, last_checkpoint_ = 0;
  uint64_t rows_done_ = 0, bad_lines_ = 0, resumed_rows_ = 0, replayed_rows_ = 0;
  double loss_done_ = 0;  // summed train loss of the parts done in this run (not resumed ones)
  double epoch_loss_ = 0;
  uint64_t epoch_rows_ = 0, epoch_replayed_rows_ = 0;
  double last_epoch_logloss_ = 0;
  double epoch_start_ = 0;                // when the epoch in progress began
  std::vector<double> epoch_rows_per_s_;  // of each epoch done in this run
  std::map<int, std::pair<std::vector<float>, std::vector<float>>> pending_predictions_;
  std::vector<float> test_labels_, test_logits_;
  // Validation: the pass of the one in progress (-2, -3, ...: each has its own), its predictions,
  // the evaluations so far, and where the training figures of the next evaluation start.
  int val_pass_ = -1;
  std::vector<float> val_labels_, val_logits_;
  EvaluationLog evaluations_;
  EvaluationFigures pending_figures_;  // training figures of the validation in progress
  bool epoch_ended_ = false;           // the validation in progress follows an epoch's end
  uint64_t eval_rows_ = 0;             // rows_done_ at the last evaluation
  double eval_loss_ = 0;               // loss_done_ at the last evaluation
  double eval_train_start_ = 0;        // when training resumed after the last evaluation
  double val_start_ = 0, val_seconds_ = 0;
  uint64_t epoch_held_out_ = 0, holdout_rows_ = 0;
  bool stopped_early_ = false;
  // Early stopping: the kept-copy request (keep or restore) awaiting the servers' answers.
  enum class KeptCopy { kNone, kKeep, kRestore } kept_copy_ = KeptCopy::kNone;
  int64_t kept_copy_seq_ = 0;
  int kept_copy_acks_ = 0;
  // Checkpoint in progress: version and the shards reported so far.
  int64_t checkpoint_version_ = 0;
  int64_t first_own_version_ = 1;  // the first version this run writes
  int64_t parent_version_ = 0;     // what --resume / --init_model started from (0: nothing)
  std::string parent_dir_;
  std::set<int> sent_home_dead_;  // ids of nodes declared dead that were told to go
  bool checkpoint_running_ = false;
  bool final_checkpoint_done_ = false;
  bool final_checkpoint_requested_ = false;
  proto::Manifest manifest_;
  std::vector<proto::NodeInfo>
      waiting_;                 // registrations mid-job, waiting for a dead node to replace
  int next_temp_id_ = 0;        // for ShutDownUnadmitted
  const uint64_t incarnation_;  // random, nonzero: tells this run's nodes from an earlier run's
  std::set<std::string> sent_home_;  // HOST:PORT of earlier-run nodes already sent home
  const uint64_t job_tag_;           // JobTag(job_id())
  std::set<std::string> refused_;    // HOST:PORT of registrations of another job already told
  uint64_t refusals_[2] = {0, 0};    // messages dropped: of another job; forged sender
  double refusal_logged_at_[2] = {-1e9, -1e9};
  double server_dead_since_ = 0;  // 0: every server alive
  uint64_t retired_rows_ = 0;     // heartbeat figures of workers declared dead
  double retired_loss_ = 0;
  double done_time_ = 0;  // when the last pass ended; the report waits for fresher server figures
  uint64_t progress_rows_ = 0;
  double progress_time_ = 0;
  std::unique_ptr<JobMetrics> metrics_;
  bool bar_shown_ = false;  // a progress bar is on the terminal's last line
};

}  // namespace fmps

#endif  // FMPS_SCHEDULER_SCHEDULER_H_
