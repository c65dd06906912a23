// The cluster's ZeroMQ CURVE key: one key pair shared by every node of a job (written once by
// `fmps keygen`, read with --keys=DIR). Every node listens as a CURVE server with it and connects
// as a CURVE client with it, and admits only peers that prove they hold it: whoever has the file
// is a member of the cluster, whoever has not cannot send a byte that reaches a node's logic.
#ifndef FMPS_PS_CURVE_KEYS_H_
#define FMPS_PS_CURVE_KEYS_H_

#include <string>

#include "ps/base/env.h"
#include "ps/base/status.h"

namespace fmps {

struct CurveKeys {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
  bool empty() const { return public_key.empty(); }
};

// The key file's name inside the --keys directory.
inline constexpr const char* kCurveKeyFile = "cluster.key";

// A fresh key pair from libzmq (libsodium's randomness).
Result<CurveKeys> NewCurveKeys();
// DIR/cluster.key; refuses to replace an existing one (that would lock out running jobs' nodes).
// The caller makes DIR and the file private (umask), this writes and syncs.
Status WriteCurveKeys(Env* env, const std::string& dir, const CurveKeys& keys);
// Reads and checks DIR/cluster.key: both keys are Z85 of 32 bytes and the public one is the secret
// one's. Errors name the file.
Result<CurveKeys> ReadCurveKeys(Env* env, const std::string& dir);

}  // namespace fmps

#endif  // FMPS_PS_CURVE_KEYS_H_
