// `fmps serve` as a process, against `fmps predict` on the same rows: a DPLR model trained on
// generated libffm rows; an FM trained on Criteo rows, queried with raw column values; and a
// checkpoint written while serving, picked up without a restart. SIGTERM stops the service with
// exit code 0.
#include <signal.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <tuple>

#include "gtest/gtest.h"
#include "tests/integration/process_util.h"

namespace fmps {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr int kFields = 10;  // context fields 0..5, item fields 6..9

// One HTTP request on a fresh connection; nullopt when the service does not answer.
std::optional<http::response<http::string_body>> Request(int port, http::verb verb,
                                                         const std::string& target,
                                                         const std::string& body) {
  try {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(20));
    stream.connect(tcp::endpoint(asio::ip::address_v4::loopback(), static_cast<uint16_t>(port)));
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return res;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Writes `request` as is on a fresh connection and returns all the service writes back until it
// closes the connection ("" when nothing answers).
std::string RawExchange(int port, const std::string& request) {
  try {
    asio::io_context ioc;
    tcp::socket socket(ioc);
    socket.connect(tcp::endpoint(asio::ip::address_v4::loopback(), static_cast<uint16_t>(port)));
    asio::write(socket, asio::buffer(request));
    std::string answer;
    boost::system::error_code ec;
    asio::read(socket, asio::dynamic_buffer(answer), ec);  // to the end of the stream
    return answer;
  } catch (const std::exception&) {
    return "";
  }
}

// A scratch directory, removed with what it holds at the end of the test.
struct ScratchDir {
  explicit ScratchDir(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

// `fmps predict` of dir/rows with the model in model_dir (extra flags appended): its exit code and
// error output, and the probabilities it wrote, one per row.
struct Predicted {
  int exit_code = -1;
  std::string err;
  std::vector<double> probs;
};
Predicted Predict(const std::string& dir, const std::string& model_dir,
                  const std::vector<std::string>& flags = {}) {
  std::vector<std::string> args = {"predict", "--model_dir=" + model_dir, "--data=" + dir + "/rows",
                                   "--out=" + dir + "/probs"};
  args.insert(args.end(), flags.begin(), flags.end());
  testing::RunResult run = testing::Run(FMPS_BINARY, args, dir, 60);
  Predicted predicted{run.exit_code, run.err, {}};
  std::ifstream in(dir + "/probs");
  for (std::string line; std::getline(in, line);) predicted.probs.push_back(std::stod(line));
  return predicted;
}

// `fmps gen` rows (Criteo TSV) into each file: {path, rows, seed}.
int Generate(const std::string& dir, const std::vector<std::tuple<std::string, int, int>>& files) {
  std::string script;
  for (const auto& [path, rows, seed] : files) {
    script += (script.empty() ? "" : " && ") + std::string(FMPS_BINARY) +
              " gen --rows=" + std::to_string(rows) + " --seed=" + std::to_string(seed) + " > " +
              path;
  }
  return testing::Run("/bin/sh", {"-c", script}, dir, 60).exit_code;
}

// `fmps serve` as a process on a free loopback port; up() once /healthz answers.
class ServeProcess {
 public:
  ServeProcess(const std::string& dir, const std::string& model_dir,
               const std::vector<std::string>& flags = {})
      : dir_(dir), port_(testing::FreePort()) {
    std::vector<std::string> args = {"serve", "--model_dir=" + model_dir,
                                     "--listen=127.0.0.1:" + std::to_string(port_)};
    args.insert(args.end(), flags.begin(), flags.end());
    child_ = testing::Spawn(FMPS_BINARY, args, dir + "/serve.out", dir + "/serve.err");
  }
  ~ServeProcess() { testing::KillAndReap(&child_); }
  int port() const { return port_; }
  bool up() const {
    for (int i = 0; i < 300; ++i) {
      if (Request(port_, http::verb::get, "/healthz", "")) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string log() const { return testing::ReadText(dir_ + "/serve.err"); }
  // SIGTERM; the exit code (nullopt: still running after 30 s).
  std::optional<int> Stop() {
    ::kill(child_.pid, SIGTERM);
    std::optional<int> code = testing::Wait(child_, 30);
    if (code) child_.pid = -1;
    return code;
  }

 private:
  std::string dir_;
  int port_;
  testing::Child child_;
};

// Tokens of fields [first, last) of a row: token ids skewed to small ones; t99 never trained.
std::string Tokens(std::mt19937_64* rng, int first, int last, bool serving) {
  std::ostringstream out;
  for (int f = first; f < last; ++f) {
    const int id = static_cast<int>((*rng)() % 6) * static_cast<int>((*rng)() % 3);
    const bool unknown = serving && (*rng)() % 10 == 0;
    out << ' ' << f << ":t" << (unknown ? 99 : id);
    if (!serving) {
      out << ":1";
    } else if ((*rng)() % 5 == 0) {
      out << ":0.5";
    }
  }
  return out.str();
}

TEST(ServeProcessTest, ServeAnswersAsPredict) {
  ScratchDir scratch("fmps_serve_test");
  ASSERT_FALSE(scratch.path.empty());
  const std::string& dir = scratch.path;
  const std::string binary = FMPS_BINARY;

  // Training rows: the label depends on field 0 x field 7 (an interaction) and field 3 alone.
  std::mt19937_64 rng(17);
  {
    std::ofstream train(dir + "/train");
    for (int r = 0; r < 4000; ++r) {
      const std::string ctx = Tokens(&rng, 0, 6, false), item = Tokens(&rng, 6, kFields, false);
      const bool a = ctx.find(" 0:t0:") != std::string::npos;
      const bool b = item.find(" 7:t0:") != std::string::npos;
      const bool c = ctx.find(" 3:t0:") != std::string::npos;
      const double p = 0.15 + 0.6 * (a == b) + 0.2 * c;
      const int label = std::uniform_real_distribution<double>(0, 1)(rng) < std::min(p, 0.95);
      train << label << ctx << item << '\n';
    }
  }
  const std::string model_dir = dir + "/model";
  testing::RunResult trained =
      testing::Run(binary,
                   {"train", "--data=" + dir + "/train", "--format=libffm", "--num_fields=10",
                    "--model=dplr", "--rank=2", "--k=4", "--epochs=2", "--batch_size=200",
                    "--v_min_count=0", "--rank_mid_count=0", "--rank_head_count=0", "--ftrl_l1=0",
                    "--v_init_scale=0.1", "--inprocess", "--model_dir=" + model_dir},
                   dir, 120);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;

  // Three contexts x 60 candidates as /rank bodies, and the same rows as libffm lines.
  std::vector<std::string> bodies;
  {
    std::ofstream rows(dir + "/rows");
    for (int c = 0; c < 3; ++c) {
      const std::string ctx = Tokens(&rng, 0, 6, true);
      std::string body = ctx.substr(1) + "\n";
      for (int i = 0; i < 60; ++i) {
        const std::string item = i % 20 == 7 ? std::string() : Tokens(&rng, 6, kFields, true);
        body += (item.empty() ? item : item.substr(1)) + "\n";
        // predict reads libffm: every token needs its value.
        std::istringstream tokens(ctx + item);
        rows << "0";
        for (std::string t; tokens >> t;)
          rows << ' ' << t << (std::count(t.begin(), t.end(), ':') == 1 ? ":1" : "");
        rows << '\n';
      }
      bodies.push_back(body);
    }
  }
  const Predicted predicted = Predict(dir, model_dir);
  ASSERT_EQ(predicted.exit_code, 0) << predicted.err;
  const std::vector<double>& want = predicted.probs;
  ASSERT_EQ(want.size(), 180u);

  ServeProcess serve(dir, model_dir, {"--serve_threads=2"});
  ASSERT_TRUE(serve.up()) << serve.log();
  const int port = serve.port();
  auto health = Request(port, http::verb::get, "/healthz", "");
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->body().rfind("ok model=dplr version=", 0), 0u) << health->body();

  double lo = 1, hi = 0;
  for (size_t c = 0; c < bodies.size(); ++c) {
    auto res = Request(port, http::verb::post, "/rank", bodies[c]);
    ASSERT_TRUE(res.has_value());
    ASSERT_EQ(res->result(), http::status::ok) << res->body();
    std::istringstream lines(res->body());
    std::string line;
    for (size_t i = 0; i < 60; ++i) {
      ASSERT_TRUE(std::getline(lines, line)) << "context " << c << ": only " << i << " answers";
      const double got = std::stod(line), expect = want[c * 60 + i];
      EXPECT_NEAR(got, expect, 1e-5 * expect) << "context " << c << " candidate " << i;
      lo = std::min(lo, got);
      hi = std::max(hi, got);
    }
    EXPECT_FALSE(std::getline(lines, line)) << "more answers than candidates";
  }
  EXPECT_GT(hi - lo, 0.1) << "the trained model scores every row alike";
  auto bad = Request(port, http::verb::post, "/rank", "0:t1\n6:t1 10:t2\n");
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->result(), http::status::bad_request);

  EXPECT_EQ(serve.Stop(), std::optional<int>(0)) << serve.log();
}

// A model trained on Criteo rows (integer columns bucketed by the reader) serves requests that name
// raw column values: field:value for I1..I13 and field:text for C1..C26, as in the training file.
// One context (the integer columns and C1..C10 of one row) with the item columns (C11..C26) of 40
// rows as candidates scores as `fmps predict` scores the 40 rows put together.
TEST(ServeProcessTest, ServesCriteoModelsFromRawColumns) {
  ScratchDir scratch("fmps_serve_criteo");
  ASSERT_FALSE(scratch.path.empty());
  const std::string& dir = scratch.path;
  const std::string binary = FMPS_BINARY;
  ASSERT_EQ(Generate(dir, {{dir + "/train", 30000, 3}, {dir + "/items", 40, 4}}), 0);
  const std::string model_dir = dir + "/model";
  testing::RunResult trained =
      testing::Run(binary,
                   {"train", "--data=" + dir + "/train", "--format=criteo", "--model=fm", "--k=4",
                    "--epochs=1", "--inprocess", "--model_dir=" + model_dir},
                   dir, 120);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;

  constexpr int kContextFields = 23;  // I1..I13, C1..C10
  auto columns = [](const std::string& line) {
    std::vector<std::string> out(1);
    for (char c : line) {
      if (c == '\t') {
        out.emplace_back();
      } else {
        out.back().push_back(c);
      }
    }
    return out;  // out[0] is the label, out[1 + f] field f
  };
  std::vector<std::vector<std::string>> items;
  {
    std::ifstream in(dir + "/items");
    for (std::string line; std::getline(in, line);) items.push_back(columns(line));
  }
  ASSERT_EQ(items.size(), 40u);
  ASSERT_EQ(items[0].size(), 40u);
  auto tokens = [](const std::vector<std::string>& row, int from, int to) {
    std::string out;
    for (int f = from; f < to; ++f) {
      if (!row[1 + f].empty()) out += std::to_string(f) + ":" + row[1 + f] + " ";
    }
    return out;
  };
  const std::vector<std::string>& context = items[0];
  std::string body = tokens(context, 0, kContextFields) + "\n";
  {
    std::ofstream rows(dir + "/rows");
    for (const auto& item : items) {
      body += tokens(item, kContextFields, 39) + "\n";
      rows << "0";
      for (int f = 0; f < 39; ++f) rows << '\t' << (f < kContextFields ? context : item)[1 + f];
      rows << '\n';
    }
  }
  const Predicted predicted = Predict(dir, model_dir, {"--format=criteo"});
  ASSERT_EQ(predicted.exit_code, 0) << predicted.err;
  const std::vector<double>& want = predicted.probs;
  ASSERT_EQ(want.size(), 40u);

  ServeProcess serve(dir, model_dir);
  ASSERT_TRUE(serve.up()) << serve.log();
  const int port = serve.port();
  auto res = Request(port, http::verb::post, "/rank", body);
  ASSERT_TRUE(res.has_value());
  ASSERT_EQ(res->result(), http::status::ok) << res->body();
  std::istringstream lines(res->body());
  std::string line;
  double lo = 1, hi = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(std::getline(lines, line)) << "only " << i << " answers";
    const double got = std::stod(line);
    EXPECT_NEAR(got, want[i], 1e-5 * want[i]) << "candidate " << i;
    lo = std::min(lo, got);
    hi = std::max(hi, got);
  }
  EXPECT_GT(hi - lo, 0.05) << "the trained model scores every candidate alike";
  // An integer column with text is refused, naming the token.
  auto bad = Request(port, http::verb::post, "/rank", "0:5 1:abc\n13:x\n");
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->result(), http::status::bad_request);
  EXPECT_NE(bad->body().find("token 2 '1:abc': Criteo field 1"), std::string::npos) << bad->body();
  EXPECT_EQ(serve.Stop(), std::optional<int>(0)) << serve.log();
}

// A newer checkpoint in --model_dir (training resumed into it) is served without a restart, and
// answers as `fmps predict` with it; a newer manifest that does not verify is reported once and the
// good checkpoint stays in service.
TEST(ServeProcessTest, ReloadsNewerCheckpointsWithoutARestart) {
  ScratchDir scratch("fmps_serve_reload");
  ASSERT_FALSE(scratch.path.empty());
  const std::string& dir = scratch.path;
  const std::string binary = FMPS_BINARY;
  const std::string model_dir = dir + "/model";
  ASSERT_EQ(Generate(dir, {{dir + "/train", 20000, 5}, {dir + "/rows", 30, 6}}), 0);
  auto train = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"train",       "--data=" + dir + "/train",
                                     "--model=fm",  "--k=4",
                                     "--inprocess", "--model_dir=" + model_dir};
    args.insert(args.end(), extra.begin(), extra.end());
    return testing::Run(binary, args, dir, 120);
  };
  testing::RunResult first = train({"--epochs=1"});
  ASSERT_EQ(first.exit_code, 0) << first.err;

  // One /rank body: an empty context, each row's 39 columns as a candidate.
  std::string body = "\n";
  {
    std::ifstream in(dir + "/rows");
    for (std::string line; std::getline(in, line);) {
      std::istringstream cols(line);
      std::string col;
      std::getline(cols, col, '\t');  // the label
      for (int f = 0; std::getline(cols, col, '\t'); ++f) {
        if (!col.empty()) body += std::to_string(f) + ":" + col + " ";
      }
      body += "\n";
    }
  }
  auto rank = [&](int port) {
    std::vector<double> probs;
    auto res = Request(port, http::verb::post, "/rank", body);
    if (!res || res->result() != http::status::ok) return probs;
    std::istringstream lines(res->body());
    for (std::string line; std::getline(lines, line);) probs.push_back(std::stod(line));
    return probs;
  };
  auto version = [&](int port) {
    auto res = Request(port, http::verb::get, "/healthz", "");
    if (!res) return std::string("none");
    const size_t at = res->body().find("version=");
    return at == std::string::npos ? res->body()
                                   : res->body().substr(at + 8, res->body().size() - at - 9);
  };

  ServeProcess serve(dir, model_dir, {"--reload_every=0.2"});
  ASSERT_TRUE(serve.up()) << serve.log();
  const int port = serve.port();
  std::string v = version(port);
  ASSERT_EQ(v, "1") << serve.log();
  const std::vector<double> before = rank(port);
  ASSERT_EQ(before.size(), 30u);

  testing::RunResult second = train({"--epochs=3", "--resume"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  for (int i = 0; i < 100 && (v = version(port)) == "1"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(v, "1") << "still serving checkpoint 1: " << serve.log();
  const std::vector<double> after = rank(port);
  ASSERT_EQ(after.size(), 30u);
  const Predicted predicted = Predict(dir, model_dir, {"--format=criteo"});
  ASSERT_EQ(predicted.exit_code, 0) << predicted.err;
  ASSERT_EQ(predicted.probs.size(), after.size());
  double moved = 0;
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_NEAR(after[i], predicted.probs[i], 1e-5 * after[i]) << "row " << i;
    moved = std::max(moved, std::abs(after[i] - before[i]));
  }
  EXPECT_GT(moved, 1e-3) << "the reloaded model scores as the first one did";

  // A newer manifest that does not verify: reported once, the good checkpoint stays.
  std::ofstream(model_dir + "/MANIFEST-000099") << "not a manifest";
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(version(port), v);
  EXPECT_EQ(rank(port), after);
  const std::string log = serve.log();
  auto count = [&log](const std::string& what) {
    size_t n = 0;
    for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("checkpoint 99 of"), 1u) << log;        // our report
  EXPECT_EQ(count("skipping checkpoint 99"), 1u) << log;  // read once, not at every look
  auto metrics = Request(port, http::verb::get, "/metrics", "");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(metrics->body().find("fmps_serve_reloads_total 1\n"), std::string::npos)
      << metrics->body();

  EXPECT_EQ(serve.Stop(), std::optional<int>(0)) << serve.log();
}

// --auth_token_file: POST /rank needs "Authorization: Bearer TOKEN" (raw HTTP over a socket, so
// the test sees exactly what is sent); /healthz and /metrics stay open; refusals are counted. A
// token file that is missing or empty stops `fmps serve` with an error naming it.
TEST(ServeProcessTest, RankNeedsTheBearerTokenOfAuthTokenFile) {
  ScratchDir scratch("fmps_serve_auth");
  ASSERT_FALSE(scratch.path.empty());
  const std::string& dir = scratch.path;
  const std::string binary = FMPS_BINARY;
  const std::string model_dir = dir + "/model";
  ASSERT_EQ(Generate(dir, {{dir + "/train", 5000, 8}}), 0);
  testing::RunResult trained =
      testing::Run(binary,
                   {"train", "--data=" + dir + "/train", "--model=fm", "--k=4", "--epochs=1",
                    "--inprocess", "--model_dir=" + model_dir},
                   dir, 120);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  std::ofstream(dir + "/token") << "s3cr3t-T0ken\n";

  ServeProcess serve(dir, model_dir, {"--auth_token_file=" + dir + "/token"});
  ASSERT_TRUE(serve.up()) << serve.log();
  const int port = serve.port();
  // An empty context and three candidates (Criteo columns by field number).
  const std::string body = "\n0:3 13:68fd1e64\n1:7 14:80e26c9b 20:fb936136\n2:1\n";
  auto rank = [&](const std::string& authorization) {
    return RawExchange(
        port, "POST /rank HTTP/1.1\r\nHost: 127.0.0.1\r\n" + authorization +
                  "Content-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nConnection: close\r\n\r\n" + body);
  };
  auto status_line = [](const std::string& answer) { return answer.substr(0, answer.find('\r')); };
  auto body_of = [](const std::string& answer) {
    const size_t at = answer.find("\r\n\r\n");
    return at == std::string::npos ? std::string() : answer.substr(at + 4);
  };

  const std::vector<std::string> refused = {
      "",                                           // no header
      "Authorization: Bearer wrong-token\r\n",      // another token
      "Authorization: Bearer s3cr3t-T0ke\r\n",      // a prefix of it
      "Authorization: Bearer s3cr3t-T0ken2\r\n",    // it and more
      "Authorization: Basic czNjcjN0LVQwa2Vu\r\n",  // another scheme
      "Authorization: Bearer s3cr3t-t0ken\r\n",     // the token's case matters
  };
  for (const std::string& authorization : refused) {
    const std::string answer = rank(authorization);
    EXPECT_EQ(status_line(answer), "HTTP/1.1 401 Unauthorized") << authorization << answer;
    EXPECT_NE(answer.find("\r\nWWW-Authenticate: Bearer realm=\"fmps\""), std::string::npos)
        << answer;
    EXPECT_EQ(answer.find("0."), std::string::npos) << "scores sent without the token: " << answer;
  }
  // The right token (the scheme's case does not matter) is scored.
  for (const std::string scheme : {"Bearer", "bearer"}) {
    const std::string answer = rank("Authorization: " + scheme + " s3cr3t-T0ken\r\n");
    ASSERT_EQ(status_line(answer), "HTTP/1.1 200 OK") << answer;
    std::istringstream lines(body_of(answer));
    int scores = 0;
    for (std::string line; std::getline(lines, line); ++scores) {
      const double p = std::stod(line);
      EXPECT_TRUE(p > 0 && p < 1) << line;
    }
    EXPECT_EQ(scores, 3) << answer;
  }
  // Probes and scrapers need no token.
  const std::string health =
      RawExchange(port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_line(health), "HTTP/1.1 200 OK") << health;
  EXPECT_EQ(body_of(health).rfind("ok model=fm version=", 0), 0u) << health;
  const std::string metrics =
      RawExchange(port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_line(metrics), "HTTP/1.1 200 OK") << metrics;
  EXPECT_NE(metrics.find("\nfmps_serve_unauthorized_total 6\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nfmps_serve_candidates_total 6\n"), std::string::npos) << metrics;
  EXPECT_EQ(serve.Stop(), std::optional<int>(0)) << serve.log();

  // A token file that is missing, or empty but for a newline: no service, an error naming it.
  std::ofstream(dir + "/empty_token") << "\n";
  for (const std::string& file : {dir + "/no_such_token", dir + "/empty_token"}) {
    testing::RunResult run = testing::Run(
        binary,
        {"serve", "--model_dir=" + model_dir, "--listen=127.0.0.1:0", "--auth_token_file=" + file},
        dir, 60);
    EXPECT_NE(run.exit_code, 0) << run.err;
    EXPECT_NE(run.err.find("--auth_token_file=" + file), std::string::npos) << run.err;
  }
}

}  // namespace
}  // namespace fmps
