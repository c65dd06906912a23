#include "ps/curve_keys.h"

#include <zmq.h>

#include <sstream>

namespace fmps {
namespace {

constexpr size_t kZ85KeyChars = 40;  // 32 bytes in Z85

bool IsZ85Key(const std::string& s) {
  uint8_t raw[32];
  return s.size() == kZ85KeyChars && zmq_z85_decode(raw, s.c_str()) != nullptr;
}

std::string KeyPath(const std::string& dir) { return dir + "/" + kCurveKeyFile; }

}  // namespace

Result<CurveKeys> NewCurveKeys() {
  char pub[kZ85KeyChars + 1], sec[kZ85KeyChars + 1];
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status::IOError(std::string("cannot make a CURVE key pair: ") +
                           zmq_strerror(zmq_errno()) + " (libzmq built without CURVE?)");
  }
  return CurveKeys{pub, sec};
}

Status WriteCurveKeys(Env* env, const std::string& dir, const CurveKeys& keys) {
  const std::string path = KeyPath(dir);
  if (env->Stat(path).ok()) {
    return Status::InvalidArgument(path +
                                   " exists; running jobs use it, so it is not replaced "
                                   "(remove it first, or choose another --out)");
  }
  Status st = env->CreateDir(dir);
  if (!st.ok()) return st;
  Result<std::unique_ptr<WritableFile>> f = env->NewWritableFile(path);
  if (!f.ok()) return f.status();
  const std::string text =
      "# fmps cluster key: ZeroMQ CURVE, Z85. Every node of a job reads it with --keys=DIR.\n"
      "# Secret: whoever holds this file can join the cluster's jobs. Keep it mode 0600.\n"
      "public-key = " +
      keys.public_key + "\nsecret-key = " + keys.secret_key + "\n";
  if (!(st = (*f)->Append(text)).ok() || !(st = (*f)->Sync()).ok() || !(st = (*f)->Close()).ok())
    return st;
  return env->SyncDir(dir);
}

Result<CurveKeys> ReadCurveKeys(Env* env, const std::string& dir) {
  const std::string path = KeyPath(dir);
  Result<std::unique_ptr<SequentialFile>> f = env->NewSequentialFile(path);
  if (!f.ok()) {
    return Status::IOError("cannot read the cluster key " + path +
                           " (make one with `fmps keygen "
                           "--out=" +
                           dir + "`): " + f.status().ToString());
  }
  std::string text;
  char buf[4096];
  while (text.size() < 64 * 1024) {
    Result<size_t> n = (*f)->Read(buf, sizeof(buf));
    if (!n.ok()) return Status::IOError(path + ": " + n.status().ToString());
    if (*n == 0) break;
    text.append(buf, *n);
  }
  CurveKeys keys;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find(" = ");
    const std::string name = line.substr(0, eq),
                      value = eq == std::string::npos ? "" : line.substr(eq + 3);
    if (name == "public-key" && IsZ85Key(value)) {
      keys.public_key = value;
    } else if (name == "secret-key" && IsZ85Key(value)) {
      keys.secret_key = value;
    } else {
      return Status::InvalidArgument(path + ":" + std::to_string(number) +
                                     ": expected `public-key = KEY` or `secret-key = KEY` (Z85, 40 "
                                     "characters)");
    }
  }
  if (keys.public_key.empty() || keys.secret_key.empty())
    return Status::InvalidArgument(path + ": needs both public-key and secret-key");
  char derived[kZ85KeyChars + 1];
  if (zmq_curve_public(derived, keys.secret_key.c_str()) != 0 || keys.public_key != derived)
    return Status::InvalidArgument(path + ": the public key is not the secret key's");
  return keys;
}

}  // namespace fmps
