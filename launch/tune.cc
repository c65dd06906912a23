#include "launch/tune.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>

#include "config/params.h"
#include "ps/base/env.h"

namespace fmps {
namespace {

struct Trial {
  std::vector<std::string> flags;  // the candidate's settings
  std::vector<size_t> pick;        // its value index on each axis of Space()
  bool embed_all = false;          // every feature gets an embedding (else the default counts)
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

// What RunTrial adds to every trial besides the candidate's flags.
constexpr const char* kTrialFlags[] = {"epochs", "early_stop", "progress_every"};

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

// One searched setting: its flag and the values tried.
struct Axis {
  std::string flag;
  std::vector<std::string> values;
};

// The space: the axes declared with their parameters (FMPS_TUNED in config/params.def: the update
// settings, the initial scale, the batch), and admission (embed_all below). The anchors below
// name values of the axes in that order.
const std::vector<Axis>& Space() {
  static const std::vector<Axis> space = [] {
    std::vector<Axis> axes;
    for (const params::TunedAxis& t : params::Tuned())
      axes.push_back({std::string("--") + t.name, t.values});
    return axes;
  }();
  return space;
}

// Admission: every feature gets an embedding at once, or the table's thresholds.
const std::vector<std::string>& EmbedAllFlags() {
  static const std::vector<std::string> flags{"--v_min_count=0", "--rank_mid_count=0",
                                              "--rank_head_count=0"};
  return flags;
}

Trial MakeTrial(const std::vector<size_t>& pick, bool embed_all) {
  Trial t;
  t.pick = pick;
  t.embed_all = embed_all;
  for (size_t a = 0; a < Space().size(); ++a)
    t.flags.push_back(Space()[a].flag + "=" + Space()[a].values[pick[a]]);
  if (embed_all) {
    t.flags.insert(t.flags.end(), EmbedAllFlags().begin(), EmbedAllFlags().end());
  } else {
    // The table's counts given, not left to adapt to the data: the axis compares the two.
    t.flags.push_back("--v_min_count=" + std::to_string(params::kDefault.v_min_count));
    t.flags.push_back("--rank_mid_count=" + std::to_string(params::kDefault.rank_mid_count));
    t.flags.push_back("--rank_head_count=" + std::to_string(params::kDefault.rank_head_count));
  }
  return t;
}

// The candidates: two anchors (today's defaults' neighbourhood for large logs, the small-data
// corner that won on Frappe) and a fixed-seed random sample of the rest, so a search is repeatable.
std::vector<Trial> Candidates(size_t random_count) {
  std::vector<Trial> trials;
  auto index = [](size_t axis, const char* value) {
    const auto& v = Space()[axis].values;
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i] == value) return i;
    LOG(FATAL) << "tune: " << value << " is not a value of " << Space()[axis].flag;
    return size_t{0};
  };
  // Large logs: v_l2 0.1, dense_lr 0.1, v_lr 0.05, scale 0.01, l1 5, alpha 0.05, batch 1000.
  trials.push_back(MakeTrial({index(0, "0.1"), index(1, "0.1"), index(2, "0.05"), index(3, "0.01"),
                              index(4, "5"), index(5, "0.05"), index(6, "1000")},
                             false));
  // Small data: v_l2 0.3, dense_lr 0.3, v_lr 0.1, scale 0.1, l1 0, alpha 0.1, batch 256.
  trials.push_back(MakeTrial({index(0, "0.3"), index(1, "0.3"), index(2, "0.1"), index(3, "0.1"),
                              index(4, "0"), index(5, "0.1"), index(6, "256")},
                             true));
  std::mt19937_64 rng(20261207);
  std::set<std::vector<std::string>> seen;
  for (const Trial& t : trials) seen.insert(t.flags);
  for (size_t tries = 0; trials.size() < random_count + 2 && tries < 100 * random_count; ++tries) {
    std::vector<size_t> pick;
    for (const Axis& a : Space()) pick.push_back(rng() % a.values.size());
    Trial t = MakeTrial(pick, rng() % 2 == 0);
    if (seen.insert(t.flags).second) trials.push_back(t);
  }
  return trials;
}

// Runs one trial (again once if it fails: a trial is a whole local cluster, and a port taken by
// another program in between fails it) and logs its figures and settings. A trial that fails twice
// ends the search while none has succeeded (the job's own flags are wrong); later, it is dropped
// with a warning (a candidate that diverges must not end a search that has a winner).
Status RunAndLog(const TuneOptions& o, int epochs, bool any_succeeded, Trial* t) {
  Status st = RunTrial(o, epochs, t);
  if (!st.ok()) st = RunTrial(o, epochs, t);
  if (!st.ok()) {
    if (!any_succeeded) return st;
    LOG(WARNING) << "tune: dropping a candidate: " << st.ToString();
    t->val_logloss = 1e300;
    t->best_epoch = 0;
    return st;
  }
  LOG(INFO) << "tune: " << epochs << " epochs, val_logloss " << t->val_logloss << " (best epoch "
            << t->best_epoch << ") with";
  for (const std::string& f : t->flags) LOG(INFO) << "  " << f;
  return Status::OK();
}

}  // namespace

std::vector<std::string> FlagsTheSearchSets() {
  std::vector<std::string> names(std::begin(kTrialFlags), std::end(kTrialFlags));
  for (const Axis& a : Space()) names.push_back(a.flag.substr(2));
  for (const std::string& f : EmbedAllFlags()) names.push_back(f.substr(2, f.find('=') - 2));
  return names;
}

Result<std::string> RunTune(const TuneOptions& o) {
  const double start = NowSeconds();
  std::vector<Trial> trials = Candidates(34);
  int succeeded = 0;
  // Successive halving: 2 epochs for all, 6 for the best third, a full run for the best three.
  const std::vector<std::pair<int, size_t>> rounds = {{2, 12}, {6, 3}, {30, 1}};
  for (const auto& [epochs, keep] : rounds) {
    std::vector<Trial> done;
    for (Trial& t : trials) {
      if (NowSeconds() - start > o.budget_s) break;
      Status st = RunAndLog(o, epochs, succeeded > 0, &t);
      if (!st.ok()) {
        if (succeeded == 0) return st;
        continue;
      }
      ++succeeded;
      done.push_back(t);
    }
    if (done.empty()) break;
    std::sort(done.begin(), done.end(),
              [](const Trial& a, const Trial& b) { return a.val_logloss < b.val_logloss; });
    done.resize(std::min(done.size(), keep));
    trials = done;
    if (NowSeconds() - start > o.budget_s) break;
  }
  // Refinement: steepest descent from the winner until no neighbour (one step along an axis, or
  // the other admission) improves, each a full run: a random sample rarely holds the best point.
  if (!trials.empty() && trials[0].best_epoch > 0) {
    Trial& best = trials[0];
    std::set<std::vector<std::string>> tried = {best.flags};
    for (bool improved = true; improved && NowSeconds() - start <= o.budget_s;) {
      std::vector<Trial> neighbours = {MakeTrial(best.pick, !best.embed_all)};
      for (size_t a = 0; a < Space().size(); ++a) {
        for (int step : {-1, 1}) {
          const long v = static_cast<long>(best.pick[a]) + step;
          if (v < 0 || v >= static_cast<long>(Space()[a].values.size())) continue;
          std::vector<size_t> pick = best.pick;
          pick[a] = static_cast<size_t>(v);
          neighbours.push_back(MakeTrial(pick, best.embed_all));
        }
      }
      Trial winner = best;
      for (Trial& t : neighbours) {
        if (NowSeconds() - start > o.budget_s) break;
        if (!tried.insert(t.flags).second) continue;
        if (!RunAndLog(o, 30, true, &t).ok()) continue;
        if (t.best_epoch > 0 && t.val_logloss < winner.val_logloss) winner = t;
      }
      improved = winner.flags != best.flags;
      best = winner;
    }
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
