// Worker: a worker node. It asks the scheduler for data parts, reads them into minibatches,
// localizes keys, pulls the parameters they touch, runs the model forward and backward, and
// pushes gradients and counts back — asynchronously, with at most max_delay pushes in flight
// (0: synchronous). On test parts it only scores and sends the predictions to the scheduler.
//
// Threads: Run() is the compute thread; a receive thread hands pull/push replies to the KVClient
// and control messages to a queue guarded by control_mu_, and sends the heartbeats (so a worker
// waiting on a slow or dead server still shows it is alive).
#ifndef FMPS_WORKER_WORKER_H_
#define FMPS_WORKER_WORKER_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "metrics/metrics.h"
#include "models/model.h"
#include "ps/kv_client.h"
#include "ps/postoffice.h"
#include "worker/batch_params.h"
#include "worker/localizer.h"
#include "worker/part_cache.h"
#include "data/reader.h"

namespace fmps {

struct WorkerOptions {
  double heartbeat_s = 1.0;        // seconds between heartbeats
  KVClientOptions kv;              // pull/push timeouts
  double control_timeout_s = 120;  // the scheduler must answer a part request within this
  MetricsRegistry* metrics = nullptr;  // where the worker's figures go (null: kept privately)
};

class Worker {
 public:
  Worker(std::unique_ptr<Postoffice> po, const WorkerOptions& options);
  ~Worker();
  // Joins the job and works until the scheduler says the job is finished.
  Status Run();

 private:
  struct PartResult {
    uint64_t rows = 0;
    double loss_sum = 0;
    uint64_t bad_lines = 0, lines = 0, held_out = 0;
    std::vector<float> labels, logits;  // test parts
  };
  // A part taken from the scheduler and not yet reported done: being read, with minibatches in
  // the pipeline, or waiting for the acknowledgement of its last push.
  struct OpenPart {
    proto::Part part;
    PartResult result;
    std::unique_ptr<Reader> reader;  // null once read to its end (or when replayed)
    std::string cache_name;          // its name in the part cache (when minibatches are cached)
    const PartCache::Entry* replay = nullptr;  // replayed from the cache; null once all handed out
    size_t replayed = 0;                       // minibatches of `replay` handed out
    bool caching = false;                      // its minibatches are kept as they are read
    bool from_cache = false;                   // replayed (reported so in PART_DONE)
    bool reading() const { return reader != nullptr || replay != nullptr; }
    size_t in_pipeline = 0;  // its minibatches read and not yet computed
    int64_t last_push = -1;  // timestamp of the push of its last minibatch computed
  };
  void ReceiveLoop();
  std::optional<Message> NextControl(double timeout_s);
  enum class Answer { kPart, kWait, kFinished };
  // Asks the scheduler for a part (AskForPart), and waits for its answer (AwaitPart): kPart (with
  // *part set), kWait (none to give now), or kFinished (the job is over). At most one is asked.
  Status AskForPart();
  Result<Answer> AwaitPart(proto::Part* part);
  Result<Answer> RequestPart(proto::Part* part);
  // Trains on (or scores) `first` and the parts of the same pass that the scheduler hands out
  // after it, in one pipeline that does not drain between parts (PartPipeline). Returns once the
  // scheduler has no more parts of this pass to give now, every part taken reported done. A part
  // of another pass, if one comes, is left in next_part_.
  Status ProcessParts(proto::Part first);
  // Reports the parts at the front of *parts whose minibatches are all computed and pushed, and
  // whose pushes the servers acknowledged (so "all parts done" means the model holds them).
  Status ReportDoneParts(std::deque<OpenPart>* parts);
  // Rows of a minibatch read from one part.
  struct Segment {
    OpenPart* part;
    size_t rows;
  };
  // A minibatch on its way through the PartPipeline.
  struct Stage {
    LocalBatch batch;
    PullResult pulled;
    std::vector<Segment> segments;  // the parts its rows came from, in order
    int64_t pull_ts = -1;           // its pull's timestamp; -1 before it is sent and once answered
    int64_t keys_pull = -1;         // its pull's timestamp, which its push names (keys_of_pull)
    uint64_t pushes_before_pull = 0;  // this worker's pushes sent before its pull
    double pull_time = 0;             // when its pull was sent (minibatch latency)
  };
  // The parts of one pass in flight: reads them into minibatches (or replays them from the part
  // cache), keeps up to 2 + ahead minibatches queued with their pulls out, computes and pushes
  // them in order, and reports parts done. One per ProcessParts call (worker/part_pipeline.cc).
  class PartPipeline {
   public:
    PartPipeline(Worker* worker, int pass);
    Status Run(proto::Part first);

   private:
    Status Open(proto::Part part);  // a part handed out: a reader, or its cached minibatches
    size_t Ahead() const;           // minibatches whose pulls go out before they are computed
    Result<bool> NextPart();        // the next part of this pass, opened (false: none now)
    Status Replay(OpenPart& part);  // its next cached minibatch, into the queue
    Status ReadRows(OpenPart& part);  // rows of the part being read, into batch_
    Status Enqueue();                 // batch_ localized into a free stage at the queue's end
    Status Fill();                    // reads until the queue is full or the pass has no more
    Status Fail(Status status);       // waits for the pulls in flight, then returns status

    Worker* const w_;
    const proto::JobConfig& config_;
    const int pass_;
    const bool train_;
    const size_t batch_size_;
    const int num_fields_;
    const int epochs_;
    const bool whole_parts_;
    bool more_ = true;  // the scheduler may have more parts of this pass
    // Parts taken and not reported, oldest first; the last one is being read. A deque: stages
    // point into it, and it only grows at the back and shrinks at the front.
    std::deque<OpenPart> parts_;
    Minibatch batch_;                // rows being gathered for the next stage
    std::vector<Segment> segments_;  // the parts batch_'s rows came from
    std::deque<Stage*> queue_;       // minibatches read and not yet computed, oldest first
    std::vector<Stage*> free_stages_;
  };
  // Computes a minibatch from its pull's answer and pushes its gradients, with the pull of
  // `next` (if any) in the same messages; adds its figures to its part's.
  Status ProcessBatch(const Stage& stage, bool train, Stage* next);
  PullSpec PullOf(Stage* stage) const;
  // Sends a stage's pull on its own.
  void SendPull(Stage* stage);
  Status DrainPushes();
  // Marks the cache entry of a part read to its end complete.
  void FinishCaching(OpenPart* part);
  void SendHeartbeat();

  std::unique_ptr<Postoffice> po_;
  WorkerOptions options_;
  std::unique_ptr<KVClient> kv_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Localizer> localizer_;
  std::unique_ptr<PartCache> part_cache_;
  ReaderOptions reader_options_;

  std::thread receiver_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> server_down_{false};  // set by the receive thread on SERVER_DOWN
  std::mutex control_mu_;
  std::condition_variable control_cv_;
  std::deque<Message> control_;  // guarded by control_mu_

  // Compute-thread state, reused across batches.
  Stage stages_[3];                       // computed, pulled ahead, next to pull (PartPipeline)
  std::optional<proto::Part> next_part_;  // taken while ProcessParts ran, of another pass
  bool training_ = false;                 // the pass in ProcessParts trains (its pulls are pushed)
  bool finished_ = false;                 // the scheduler said the job is over (set by AwaitPart)
  bool asked_ = false;                    // a part was asked for and the answer not yet read
  BatchParams params_;
  BatchGrads grads_;
  std::vector<float> packed_, logits_;
  std::deque<int64_t> pushes_;  // timestamps of pushes in flight
  uint64_t batches_trained_ = 0;
  uint64_t pushes_sent_ = 0;
  std::vector<uint64_t> push_clocks_;  // scratch: the clocks a push reports
  // Written by the compute thread, read by the receive thread for heartbeats.
  std::atomic<uint64_t> rows_trained_{0};
  std::atomic<double> loss_trained_{0};
  double last_heartbeat_ = 0;  // receive thread only

  // Figures for /metrics, updated by the compute thread (relaxed atomics).
  std::unique_ptr<MetricsRegistry> own_metrics_;  // when options_.metrics is null
  MetricsRegistry* metrics_;
  Counter *train_rows_, *test_rows_, *read_rows_, *read_bytes_, *minibatches_;
  Counter *pulls_sent_, *pushes_done_, *pulled_keys_, *pushed_keys_;
  Histogram* minibatch_seconds_;
};

}  // namespace fmps

#endif  // FMPS_WORKER_WORKER_H_
