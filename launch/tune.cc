#include "launch/tune.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "ps/base/env.h"

namespace fmps {
namespace {

struct Trial {
  std::vector<std::string> flags;  // the candidate's settings
  double val_logloss = 1e300;      // best validation logloss of its last run
  int best_epoch = 0;
};

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The number after "name": in a JSON line, or nullopt.
bool JsonField(const std::string& json, const std::string& name, double* value) {
  const std::string key = "\"" + name + "\":";
  size_t at = json.find(key);
  if (at == std::string::npos) return false;
  char* end = nullptr;
  *value = std::strtod(json.c_str() + at + key.size(), &end);
  return end != json.c_str() + at + key.size();
}

// Trains one candidate for `epochs` (early stopping on) and reads its JSON line.
Status RunTrial(const TuneOptions& o, int epochs, Trial* trial) {
  std::string cmd = Quote(o.binary) + " train";
  for (const std::string& a : o.job_args) cmd += " " + Quote(a);
  for (const std::string& f : trial->flags) cmd += " " + Quote(f);
  cmd += " --epochs=" + std::to_string(epochs) + " --early_stop=2 --progress_every=1000";
  cmd += " 2>/dev/null";
  FILE* out = ::popen(cmd.c_str(), "r");
  if (out == nullptr) return Status::IOError("cannot run " + o.binary);
  std::string text, last;
  char buf[4096];
  while (std::fgets(buf, sizeof(buf), out) != nullptr) text += buf;
  const int rc = ::pclose(out);
  for (size_t end = text.size(); end > 0;) {
    size_t begin = text.rfind('\n', end - 1);
    begin = begin == std::string::npos ? 0 : begin + 1;
    if (text.compare(begin, 1, "{") == 0) {
      last = text.substr(begin, end - begin);
      break;
    }
    end = begin > 0 ? begin - 1 : 0;
  }
  double loss = 0, epoch = 0;
  if (rc != 0 || !JsonField(last, "best_val_logloss", &loss) ||
      !JsonField(last, "best_epoch", &epoch)) {
    return Status::Aborted("a trial failed (" + cmd + "); run it by hand to see why");
  }
  trial->val_logloss = loss;
  trial->best_epoch = static_cast<int>(epoch);
  return Status::OK();
}

}  // namespace

Result<std::string> RunTune(const TuneOptions& o) {
  const double start = NowSeconds();
  std::vector<Trial> trials;
  for (const char* admission : {"0", "default"}) {
    for (const char* v_l2 : {"0.1", "0.3", "1"}) {
      for (const char* dense_lr : {"0.1", "0.3", "1"}) {
        Trial t;
        t.flags = {std::string("--v_l2=") + v_l2, std::string("--dense_lr=") + dense_lr};
        if (std::string(admission) == "0") {
          t.flags.insert(t.flags.end(),
                         {"--v_min_count=0", "--rank_mid_count=0", "--rank_head_count=0"});
        }
        trials.push_back(t);
      }
    }
  }
  // Successive halving: 2 epochs for all, 6 for the best third, a full run for the best two.
  const std::vector<std::pair<int, size_t>> rounds = {{2, 6}, {6, 2}, {30, 1}};
  for (const auto& [epochs, keep] : rounds) {
    std::vector<Trial> done;
    for (Trial& t : trials) {
      if (NowSeconds() - start > o.budget_s) break;
      Status st = RunTrial(o, epochs, &t);
      if (!st.ok()) return st;
      LOG(INFO) << "tune: " << epochs << " epochs, val_logloss " << t.val_logloss << " (best epoch "
                << t.best_epoch << ") with";
      for (const std::string& f : t.flags) LOG(INFO) << "  " << f;
      done.push_back(t);
    }
    if (done.empty()) break;
    std::sort(done.begin(), done.end(),
              [](const Trial& a, const Trial& b) { return a.val_logloss < b.val_logloss; });
    done.resize(std::min(done.size(), keep));
    trials = done;
    if (NowSeconds() - start > o.budget_s) break;
  }
  if (trials.empty() || trials[0].best_epoch == 0)
    return Status::Timeout("--tune_budget_s=" + std::to_string(o.budget_s) +
                           " ended the search before any trial finished");
  std::string flagfile;
  for (const std::string& f : trials[0].flags) flagfile += f + "\n";
  flagfile += "--epochs=" + std::to_string(trials[0].best_epoch) + "\n";
  return flagfile;
}

}  // namespace fmps
