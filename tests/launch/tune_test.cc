// RunTune against a stand-in for the fmps binary: a script that prints a trial's JSON line, its
// validation logloss a function of its flags, and fails where a test says so. Each call's
// arguments are appended to a log, so the calls are counted exactly.
#include "launch/tune.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

// A fake fmps: logs its arguments to LOG, runs `fail` (a shell condition on $args; true = exit 1),
// else prints {"best_val_logloss":0.4 with --v_l2=0.3, 0.5 otherwise,"best_epoch":3}.
std::string FakeBinary(const TempDir& dir, const std::string& fail) {
  const std::string path = dir.File("fake-fmps"), log = dir.File("calls.log");
  std::ofstream f(path);
  f << "#!/bin/sh\n"
    << "args=\" $* \"\n"
    << "echo \"$args\" >> '" << log << "'\n"
    << "if " << fail << "; then exit 1; fi\n"
    << "loss=0.5\n"
    << "case \"$args\" in *' --v_l2=0.3 '*) loss=0.4 ;; esac\n"
    << "echo '{\"best_val_logloss\":'$loss',\"best_epoch\":3}'\n";
  f.close();
  ::chmod(path.c_str(), 0755);
  return path;
}

std::vector<std::string> Calls(const TempDir& dir) {
  std::ifstream f(dir.File("calls.log"));
  std::vector<std::string> calls;
  for (std::string line; std::getline(f, line);) calls.push_back(line);
  return calls;
}

size_t CountWith(const std::vector<std::string>& calls, const std::string& part) {
  size_t n = 0;
  for (const std::string& c : calls) n += c.find(part) != std::string::npos;
  return n;
}

TEST(TuneTest, ACandidateThatFailsIsTriedTwiceThenDroppedAndTheSearchGoesOn) {
  TempDir dir;
  TuneOptions o;
  o.binary = FakeBinary(dir, "case \"$args\" in *' --v_lr=0.2 '*) true ;; *) false ;; esac");
  o.job_args = {"--data=x"};
  Result<std::string> flagfile = RunTune(o);
  ASSERT_TRUE(flagfile.ok()) << flagfile.status().ToString();
  EXPECT_NE(flagfile->find("--v_l2=0.3\n"), std::string::npos) << *flagfile;
  EXPECT_EQ(flagfile->find("--v_lr=0.2"), std::string::npos) << *flagfile;
  EXPECT_NE(flagfile->find("--epochs=3\n"), std::string::npos) << *flagfile;
  // Every failing call is made twice in a row (one retry), and failures never end the search.
  const std::vector<std::string> calls = Calls(dir);
  size_t failing = 0;
  for (size_t i = 0; i < calls.size(); ++i) {
    if (calls[i].find(" --v_lr=0.2 ") == std::string::npos) continue;
    ASSERT_LT(i + 1, calls.size());
    EXPECT_EQ(calls[i + 1], calls[i]) << "call " << i << " was not retried";
    ++failing;
    ++i;
  }
  EXPECT_GT(failing, 0u);
  EXPECT_EQ(CountWith(calls, " --v_lr=0.2 "), 2 * failing);
}

TEST(TuneTest, AFailureThatPassesOnItsRetryCostsNothing) {
  TempDir dir;
  TuneOptions o;
  // Only the very first call fails (a port taken for a moment, say).
  o.binary = FakeBinary(dir, "[ $(wc -l < '" + dir.File("calls.log") + "') -eq 1 ]");
  o.job_args = {"--data=x"};
  Result<std::string> flagfile = RunTune(o);
  ASSERT_TRUE(flagfile.ok()) << flagfile.status().ToString();
  const std::vector<std::string> calls = Calls(dir);
  ASSERT_GE(calls.size(), 2u);
  EXPECT_EQ(calls[1], calls[0]);
}

TEST(TuneTest, AJobWhoseTrialsAllFailEndsAtTheFirstTrialNamingItsCommand) {
  TempDir dir;
  TuneOptions o;
  o.binary = FakeBinary(dir, "true");
  o.job_args = {"--data=/no/such/file"};
  Result<std::string> flagfile = RunTune(o);
  ASSERT_FALSE(flagfile.ok());
  EXPECT_NE(flagfile.status().ToString().find("--data=/no/such/file"), std::string::npos)
      << flagfile.status().ToString();
  EXPECT_EQ(Calls(dir).size(), 2u);  // the first trial and its retry, then the search ends
}

}  // namespace
}  // namespace fmps
