// A job's identity: the id the scheduler (or the launcher) makes at start and every node is given,
// and its 64-bit tag stamped on every message, so that a node checks a message's job with one
// integer compare. An id, not a secret: keys (--keys) keep strangers out.
#ifndef FMPS_PS_JOB_ID_H_
#define FMPS_PS_JOB_ID_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "ps/base/status.h"

namespace fmps {

// 16 random hex digits.
std::string NewJobId();
// OK for 1-64 characters of [A-Za-z0-9._-]; else says what is wrong.
Status CheckJobId(std::string_view job_id);
// The id's tag on the wire: 0 for no id (refused everywhere), otherwise nonzero.
uint64_t JobTag(std::string_view job_id);
// A random nonzero 64-bit number (node tokens, incarnations).
uint64_t RandomNonzero64();

}  // namespace fmps

#endif  // FMPS_PS_JOB_ID_H_
