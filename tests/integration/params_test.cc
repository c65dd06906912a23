// The parameter table seen from outside: a job trained with every default writes those defaults,
// as `fmps train --help` prints them (those that adapt to the data: as `fmps profile` prints them
// for its data), into its manifest; and a flag out of its range (NaN, an impossible port, a zero
// timeout) is one clear error before any process starts.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "ps/checkpoint.h"
#include "tests/integration/process_util.h"
#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

const std::string kBinary = FMPS_BINARY;
const std::string kCriteo = std::string(FMPS_SHARED_DIR) + "/data/criteo-8k";
const std::string kFrappe = std::string(FMPS_SHARED_DIR) + "/data/frappe/frappe.validation.libfm";
constexpr double kTimeout = 90;

// flag -> default text, from lines "  --name   help [default; range]" of `fmps CMD --help`.
std::map<std::string, std::string> HelpDefaults(const std::string& command) {
  TempDir dir;
  testing::RunResult r = testing::Run(kBinary, {command, "--help"}, dir.path(), kTimeout);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, std::string> defaults;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  --", 0) != 0 || line.back() != ']') continue;
    const size_t dashes = 2;
    const size_t name_end = line.find(' ', dashes);
    const size_t open = line.rfind('[');
    std::string def = line.substr(open + 1, line.size() - open - 2);
    def = def.substr(0, def.find("; "));
    if (def == "\"\"") def.clear();
    defaults[line.substr(dashes + 2, name_end - dashes - 2)] = def;
  }
  return defaults;
}

// flag -> value, from the "--name=value" lines of `fmps profile ARGS` (the adaptive defaults).
std::map<std::string, std::string> ProfileDefaults(const std::vector<std::string>& args) {
  TempDir dir;
  std::vector<std::string> all{"profile"};
  all.insert(all.end(), args.begin(), args.end());
  testing::RunResult r = testing::Run(kBinary, all, dir.path(), kTimeout);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, std::string> values;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    const size_t eq = line.find('=');
    if (line.rfind("--", 0) != 0 || eq == std::string::npos) continue;
    values[line.substr(2, eq - 2)] = line.substr(eq + 1);
  }
  EXPECT_EQ(values.size(), 10u) << r.out;
  return values;
}

// The field's value as --help writes a default, for comparison.
bool SameValue(const google::protobuf::Message& m, const google::protobuf::FieldDescriptor* f,
               const std::string& text, std::string* shown) {
  using FD = google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m.GetReflection();
  if (f->is_repeated()) {
    std::string joined;
    for (int i = 0; i < r->FieldSize(m, f); ++i)
      joined += (i ? "," : "") + std::to_string(r->GetRepeatedInt32(m, f, i));
    *shown = joined;
    return joined == text;
  }
  switch (f->cpp_type()) {
    case FD::CPPTYPE_INT32:
      *shown = std::to_string(r->GetInt32(m, f));
      return r->GetInt32(m, f) == std::stol(text);
    case FD::CPPTYPE_INT64:
      *shown = std::to_string(r->GetInt64(m, f));
      return r->GetInt64(m, f) == std::stoll(text);
    case FD::CPPTYPE_UINT64:
      *shown = std::to_string(r->GetUInt64(m, f));
      return r->GetUInt64(m, f) == std::stoull(text);
    case FD::CPPTYPE_FLOAT:
      *shown = std::to_string(r->GetFloat(m, f));
      return r->GetFloat(m, f) == static_cast<float>(std::stod(text));
    case FD::CPPTYPE_DOUBLE:
      *shown = std::to_string(r->GetDouble(m, f));
      return r->GetDouble(m, f) == std::stod(text);
    case FD::CPPTYPE_BOOL:
      *shown = r->GetBool(m, f) ? "true" : "false";
      return *shown == text;
    case FD::CPPTYPE_STRING:
      *shown = r->GetString(m, f);
      return *shown == text;
    default:
      *shown = "(unexpected type)";
      return false;
  }
}

TEST(ParamsTest, TrainingWithDefaultsRecordsEveryHelpDefaultInTheManifest) {
  TempDir dir;
  const std::string data = kCriteo + "/train.txt", model_dir = dir.File("model");
  testing::RunResult r = testing::Run(
      kBinary, {"train", "--data=" + data, "--model_dir=" + model_dir}, dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Result<proto::Manifest> manifest = FindNewestGoodManifest(model_dir);
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  const proto::JobConfig& config = manifest->config();

  const std::map<std::string, std::string> train = HelpDefaults("train");
  const std::map<std::string, std::string> scheduler = HelpDefaults("scheduler");
  ASSERT_GT(train.size(), 40u) << "cannot read fmps train --help";
  // The rule's output for this data (Criteo-8k: sparse, so the table's defaults).
  const std::map<std::string, std::string> adaptive = ProfileDefaults({"--data=" + data});
  // What the run gave, and what the launcher resolves: criteo has 39 fields.
  const std::map<std::string, std::string> given{
      {"data", data}, {"model_dir", model_dir}, {"num_fields", "39"}};
  const google::protobuf::Descriptor* d = config.GetDescriptor();
  int checked = 0;
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    auto it = train.find(f->name());
    ASSERT_NE(it, train.end()) << "config field " << f->name() << " is no flag of fmps train";
    if (f->name() == "job_id") {  // made at start when not given
      EXPECT_EQ(it->second, "");
      EXPECT_EQ(config.job_id().size(), 16u) << config.job_id();
      ++checked;
      continue;
    }
    const std::string expected = given.count(f->name())      ? given.at(f->name())
                                 : adaptive.count(f->name()) ? adaptive.at(f->name())
                                                             : it->second;
    std::string shown;
    EXPECT_TRUE(SameValue(config, f, expected, &shown))
        << f->name() << ": manifest " << shown << ", expected " << expected;
    ++checked;
  }
  // Every flag of the job (what `fmps scheduler` takes, but the scheduler process's own: its
  // address, metrics, logging, key directory and an old flag name) is in the config.
  const std::set<std::string> own{
      "host", "port",    "metrics_port", "metrics_out", "metrics_linger", "log_dir",
      "v",    "vmodule", "minloglevel",  "keys",        "max_memory_mb"};
  int job_flags = 0;
  for (const auto& [name, def] : scheduler) {
    if (own.count(name)) continue;
    ++job_flags;
    EXPECT_NE(d->FindFieldByName(name), nullptr) << "--" << name << " is not in the job config";
  }
  EXPECT_EQ(checked, job_flags);
}

// Field `name` of the config as text (SameValue's rendering), or "" when absent.
std::string ConfigValue(const proto::JobConfig& config, const std::string& name,
                        const std::string& expected) {
  const google::protobuf::FieldDescriptor* f = config.GetDescriptor()->FindFieldByName(name);
  if (f == nullptr) return "(no field " + name + ")";
  std::string shown;
  return SameValue(config, f, expected, &shown) ? expected : shown;
}

// A dense data set (Frappe: ~100 occurrences per feature) trained with the defaults gets the dense
// settings: logged in one line, in the manifest, and the same as `fmps profile` prints; a flag
// given keeps its value and is not in the line.
TEST(ParamsTest, DenseDataGetsTheDenseDefaultsAndAGivenFlagWins) {
  TempDir dir;
  const std::string model_dir = dir.File("model");
  testing::RunResult r = testing::Run(kBinary,
                                      {"train", "--data=" + kFrappe, "--format=libsvm",
                                       "--model=fwfm", "--v_lr=0.07", "--model_dir=" + model_dir},
                                      dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const size_t at = r.err.find("defaults from the data (");
  ASSERT_NE(at, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("defaults from the data (", at + 1), std::string::npos) << "logged twice:\n"
                                                                               << r.err;
  const std::string line = r.err.substr(at, r.err.find('\n', at) - at);
  EXPECT_NE(line.find("50,000 rows sampled"), std::string::npos) << line;
  EXPECT_NE(line.find("denseness 1)"), std::string::npos) << line;
  EXPECT_EQ(line.find("--v_lr"), std::string::npos) << line;

  const std::map<std::string, std::string> profile =
      ProfileDefaults({"--data=" + kFrappe, "--format=libsvm", "--model=fwfm"});
  EXPECT_EQ(profile.at("v_l2"), "0.3");
  EXPECT_EQ(profile.at("batch_size"), "256");
  EXPECT_EQ(profile.at("v_min_count"), "0");
  Result<proto::Manifest> manifest = FindNewestGoodManifest(model_dir);
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  for (const auto& [name, value] : profile) {
    if (name == "v_lr") continue;
    EXPECT_NE(line.find(" --" + name + "=" + value), std::string::npos) << name << ": " << line;
    EXPECT_EQ(ConfigValue(manifest->config(), name, value), value) << name;
  }
  EXPECT_EQ(ConfigValue(manifest->config(), "v_lr", "0.07"), "0.07");
}

// Sparse data (Criteo-8k) keeps the table's defaults, and so does a stream, which cannot be
// sampled: the line says so.
TEST(ParamsTest, SparseDataAndStreamsGetTheTablesDefaults) {
  TempDir dir;
  const std::string data = kCriteo + "/train.txt";
  testing::RunResult sparse =
      testing::Run(kBinary, {"train", "--data=" + data, "--model=fwfm"}, dir.path(), kTimeout);
  ASSERT_EQ(sparse.exit_code, 0) << sparse.err;
  EXPECT_NE(sparse.err.find("per feature; denseness 0): --v_min_count=200 --rank_mid_count=500 "
                            "--rank_head_count=1000 --v_init_scale=0.01 --ftrl_alpha=0.05 "
                            "--ftrl_l1=5 --v_lr=0.05 --v_l2=0.0001 --dense_lr=0.05 "
                            "--batch_size=1000\n"),
            std::string::npos)
      << sparse.err;

  // Frappe's dense rows through a FIFO: not sampled, so the sparse settings.
  const std::string fifo = dir.File("rows");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string rows = testing::ReadText(kFrappe);
  ::signal(SIGPIPE, SIG_IGN);  // a reader that closes early is the job's failure, not ours
  std::thread writer([&] {
    // Non-blocking open, retried: a job that fails before reading must not hang the test.
    for (int tries = 0; tries < 600; ++tries) {
      int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd < 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      ::fcntl(fd, F_SETFL, 0);
      for (size_t done = 0; done < rows.size();) {
        ssize_t n = ::write(fd, rows.data() + done, rows.size() - done);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      ::close(fd);
      return;
    }
  });
  testing::RunResult stream = testing::Run(
      kBinary, {"train", "--data=" + fifo, "--format=libsvm", "--num_fields=10", "--model=fwfm"},
      dir.path(), kTimeout);
  writer.join();
  ASSERT_EQ(stream.exit_code, 0) << stream.err;
  EXPECT_NE(stream.err.find("defaults from the data (a stream, not sampled: the sparse-data "
                            "settings; denseness 0): --v_min_count=200"),
            std::string::npos)
      << stream.err;
}

struct BadFlag {
  std::vector<std::string> args;
  std::string expected;  // in the error
};

TEST(ParamsTest, FlagsOutOfRangeAreOneClearErrorBeforeAnyProcessStarts) {
  TempDir dir;
  const std::string data = "--data=" + kCriteo + "/train.txt";
  const std::vector<BadFlag> cases{
      {{"train", data, "--ftrl_alpha=nan"}, "--ftrl_alpha=nan: must be a finite number > 0"},
      {{"train", data, "--ftrl_l1=inf"}, "--ftrl_l1=inf: must be a finite number >= 0"},
      {{"train", data, "--v_lr=-0.1"}, "--v_lr=-0.1: must be a finite number >= 0"},
      {{"train", data, "--max_delay=-1"}, "--max_delay=-1: must be in 0..1000"},
      {{"train", data, "--part_mb=0"}, "--part_mb=0: must be a finite number > 0, <= 1048576"},
      {{"train", data, "--heartbeat_timeout=0"}, "--heartbeat_timeout=0: must be a finite"},
      {{"train", data, "--join_timeout=-5"}, "--join_timeout=-5: must be a finite"},
      {{"train", data, "--k=2000"}, "--k=2000: must be in 1..1024"},
      {{"train", data, "--port=70000"}, "--port=70000: must be in 0..65535"},
      {{"scheduler", data, "--port=70000", "--join_timeout=2"},
       "--port=70000: must be in 0..65535"},
      {{"server", "--scheduler=127.0.0.1:1", "--port=70000", "--join_timeout=2"},
       "--port=70000: must be in 0..65535"},
      {{"serve", "--model_dir=" + dir.path(), "--reload_every=nan"}, "--reload_every=nan"},
      {{"gen", "--missing=1.5"}, "--missing=1.5: must be a finite number in 0..0.999999"},
  };
  for (const BadFlag& c : cases) {
    std::string line;
    for (const std::string& a : c.args) line += a + " ";
    testing::RunResult r = testing::Run(kBinary, c.args, dir.path(), 30);
    EXPECT_NE(r.exit_code, 0) << line;
    EXPECT_NE(r.exit_code, -1) << line << ": timed out";
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << line << "\n" << r.err;
    // No role started: a launcher would have started a scheduler, which logs its pid.
    if (c.args[0] != "scheduler") {
      EXPECT_EQ(r.err.find("fmps scheduler pid"), std::string::npos) << line << "\n" << r.err;
    }
    EXPECT_EQ(r.err.find("listening"), std::string::npos) << line << "\n" << r.err;
  }
}

TEST(ParamsTest, HelpShowsEachFlagsDefaultAndRange) {
  const std::map<std::string, std::string> train = HelpDefaults("train");
  EXPECT_EQ(train.at("ftrl_l1"), "5.0");
  EXPECT_EQ(train.at("k"), "8");
  EXPECT_EQ(train.at("rafm_ranks"), "4,8,16");
  EXPECT_EQ(train.at("format"), "criteo");
  EXPECT_EQ(train.count("port"), 0u);          // the launcher picks the scheduler's port
  EXPECT_EQ(train.count("reload_every"), 0u);  // serve's
  EXPECT_EQ(HelpDefaults("serve").at("reload_every"), "0.25");
  EXPECT_EQ(HelpDefaults("export").at("model_version"), "0");
  const std::map<std::string, std::string> dump = HelpDefaults("dump");
  EXPECT_EQ(dump.size(), 3u);
  EXPECT_EQ(dump.at("by"), "w");
  // A model's own parameters are grouped under it.
  TempDir dir;
  const std::string help = testing::Run(kBinary, {"train", "--help"}, dir.path(), kTimeout).out;
  const size_t dplr = help.find("\nonly --model=dplr:\n  --rank ");
  const size_t rafm = help.find("\nonly --model=rafm:\n  --rafm_count_scale ");
  EXPECT_NE(dplr, std::string::npos) << help;
  EXPECT_NE(rafm, std::string::npos) << help;
  EXPECT_LT(help.find("  --ftrl_l1 "), dplr);  // every model's first
  const std::map<std::string, std::string> server = HelpDefaults("server");
  EXPECT_EQ(server.at("port"), "0");
  EXPECT_EQ(server.count("ftrl_l1"), 0u);  // a server takes the job's parameters from the scheduler
}

}  // namespace
}  // namespace fmps
