// KVClient: a worker's view of the servers. Pull and Push take the batch's unique keys sorted by
// Mix64(key) (so each server's share is one contiguous slice), send one request per server that
// owns some of them, and return a timestamp; Wait(ts) blocks until every server answered.
// Requests are asynchronous: a worker may keep several in flight (bounded staleness).
// Pushes are quiet: a server answers one only if it fails. A server handles one connection's
// requests in the order they were sent, so any answer it gives to a later request acknowledges
// the pushes before it; Wait on a push that no later request will acknowledge sends an empty
// pull to ask. (A worker's next pull follows each push: the acknowledgements cost no messages,
// where one answer per push was a quarter of the messages and their wake-ups.)
//
// Threading: Pull/Push/Wait are called from the worker's compute thread; OnReply from its
// receive thread. mu_ guards the table of pending requests.
#ifndef FMPS_PS_KV_CLIENT_H_
#define FMPS_PS_KV_CLIENT_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "ps/postoffice.h"

namespace fmps {

// The answer to a pull, in key order.
struct PullResult {
  std::vector<float> values;     // per key: w, then widths[i] embedding floats
  std::vector<uint16_t> widths;  // per key
  std::vector<float> dense;      // the dense block, when asked for
  std::vector<uint64_t> clocks;  // per server rank: the server's push clock when it answered
};

// A pull: keys sorted by Mix64 (each server's share is one slice), mixed[i] = Mix64(keys[i]).
struct PullSpec {
  std::span<const uint64_t> keys, mixed;
  bool with_dense = false;
  PullResult* result = nullptr;  // must stay alive until Wait returns
  bool keep_keys = false;        // a push of these keys follows (PushSpec::keys_of_pull)
};

// A push: grads laid out per key as the w gradient then widths[i] embedding gradients; clocks as
// the pull that the gradients were computed from returned them (empty: unknown).
struct PushSpec {
  std::span<const uint64_t> keys, mixed;
  std::span<const float> grads;
  std::span<const uint16_t> widths;
  std::span<const uint32_t> counts;
  std::span<const float> dense_grads;
  std::span<const uint64_t> clocks;
  // >= 0: the timestamp of the pull (with keep_keys) of exactly these keys; the servers take the
  // keys and widths from it, and the push carries neither.
  int64_t keys_of_pull = -1;
};

struct KVClientOptions {
  double timeout_s = 120;  // Wait gives up after this long, naming the silent servers
};

class KVClient {
 public:
  KVClient(Postoffice* po, const KVClientOptions& options) : po_(po), options_(options) {}

  // keys sorted by Mix64; mixed[i] = Mix64(keys[i]). result must stay alive until Wait returns.
  int64_t Pull(const PullSpec& pull);
  int64_t Pull(const std::vector<uint64_t>& keys, const std::vector<uint64_t>& mixed,
               bool with_dense, PullResult* result) {
    return Pull(PullSpec{keys, mixed, with_dense, result});
  }
  int64_t Push(const PushSpec& push);
  int64_t Push(const std::vector<uint64_t>& keys, const std::vector<uint64_t>& mixed,
               std::span<const float> grads, std::span<const uint16_t> widths,
               std::span<const uint32_t> counts, std::span<const float> dense_grads,
               std::span<const uint64_t> clocks = {}) {
    return Push(PushSpec{keys, mixed, grads, widths, counts, dense_grads, clocks});
  }
  // A push and then a pull, in one message to each server that has a share of both (a worker
  // pushes a minibatch and pulls a later one: half the requests). Returns the pull's timestamp,
  // and the push's in *push_ts; each is waited for on its own.
  int64_t PushPull(const PushSpec& push, const PullSpec& pull, int64_t* push_ts);
  Status Wait(int64_t ts);
  size_t InFlight();

  // Receive thread: a PULL_REPLY or PUSH_REPLY arrived.
  void OnReply(Message&& msg);
  // Receive thread: the scheduler declared this server dead. Every pending request that waits
  // for it fails with Status::Aborted, so the compute thread stops waiting at once.
  void FailServer(int server_rank, const std::string& why);
  // Receive thread: the job is over (SHUTDOWN); every pending request fails with `why`.
  void FailAll(const std::string& why);
  // Forgets every pending request (after a failure, before retrying with fresh requests).
  void Clear();

 private:
  struct Pending {
    int remaining = 0;
    PullResult* result = nullptr;
    std::vector<int> servers;        // ranks asked, in key order
    std::map<int, Message> replies;  // by server rank
    std::string error;
    bool sync = false;  // an empty pull sent by Wait: nobody waits for it, dropped when answered
  };
  Status Assemble(Pending* p);
  // What a request expects: an answer from each server, none unless it fails (a push), or an
  // answer nobody waits for (Sync's empty pull).
  enum class Kind { kAnswered, kQuietPush, kSync };
  // A new pending request to `servers` (noted as sent); its timestamp.
  int64_t Register(const std::vector<int>& servers, PullResult* result, Kind kind);
  // Sends to server rank s; if that fails, the pending requests carried fail with the reason.
  void SendTo(int s, Message&& msg, std::initializer_list<int64_t> requests);
  Message PullMessage(const PullSpec& pull, const std::vector<size_t>& slices, int s,
                      int64_t ts) const;
  Message PushMessage(const PushSpec& push, const std::vector<size_t>& slices,
                      const std::vector<size_t>& grad_offsets, int s, int64_t ts) const;
  // Notes request `ts` sent to `servers` (quiet: a push that expects no answer); mu_ held.
  void NoteSent(int64_t ts, const std::vector<int>& servers, bool quiet);
  // Records server `rank`'s answer (or acknowledgement) to pending request `it`; mu_ held.
  void Answer(std::map<int64_t, Pending>::iterator it, int rank, Message&& msg);
  // Sends an empty pull to each server in `ranks` (acknowledging the quiet pushes before it).
  void Sync(const std::vector<int>& ranks);

  Postoffice* po_;
  KVClientOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t next_ts_ = 1;                 // guarded by mu_
  std::map<int64_t, Pending> pending_;  // guarded by mu_
  std::string failed_all_;              // FailAll's reason, given to every later request; mu_
  // Per server rank: quiet pushes not yet acknowledged (oldest first), and the newest request
  // sent that will be answered. Guarded by mu_.
  std::vector<std::deque<int64_t>> quiet_;
  std::vector<int64_t> last_asked_;
};

}  // namespace fmps

#endif  // FMPS_PS_KV_CLIENT_H_
