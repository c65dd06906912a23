// The text body of POST /rank: the first line is the context, each further line one candidate.
// Tokens are separated by spaces (or tabs), each `field:feature[:value]` as in libffm (value 1
// when omitted). Keys are made by the libffm training reader's own parser (ParseLibffmLine), so
// a served feature hashes exactly as it did in training. A final newline ends the last line; an
// empty candidate line is a candidate with no features.
#ifndef FMPS_SERVING_RANK_REQUEST_H_
#define FMPS_SERVING_RANK_REQUEST_H_

#include <cstdint>
#include <string_view>

#include "ps/base/status.h"
#include "serving/ranker.h"
#include "worker/minibatch.h"

namespace fmps {

struct RankRequest {
  Minibatch context;     // one row
  Minibatch candidates;  // one row per candidate line

  FeatureSpan Context() const { return {context.keys, context.values}; }
  size_t num_candidates() const { return candidates.offsets.size() - 1; }
};

// Parses body into *out (cleared first). InvalidArgument naming the line (1-based) and the token
// for an empty body, a malformed token, or a field id >= num_fields; and for more than
// max_candidates candidate lines.
Status ParseRankRequest(std::string_view body, int num_fields, uint64_t hash_seed, RankRequest* out,
                        size_t max_candidates = SIZE_MAX);

}  // namespace fmps

#endif  // FMPS_SERVING_RANK_REQUEST_H_
