// The text body of POST /rank: the first line is the context, each further line one candidate.
// Tokens are separated by spaces (or tabs), each `field:feature[:value]` as in libffm (value 1
// when omitted). The syntax is checked by the libffm training reader's own parser
// (ParseLibffmLine); a feature's key is what the reader of the model's training format made of
// that field's text (FieldKey: Criteo's integer columns bucketed, Avazu's hour and weekday as
// integers, every other field hashed as text), so a served feature hashes exactly as it did in
// training. A final newline ends the last line; an empty candidate line is a candidate with no
// features.
#ifndef FMPS_SERVING_RANK_REQUEST_H_
#define FMPS_SERVING_RANK_REQUEST_H_

#include <cstdint>
#include <string_view>

#include "ps/base/status.h"
#include "serving/ranker.h"
#include "data/minibatch.h"
#include "data/reader.h"

namespace fmps {

struct RankRequest {
  Minibatch context;     // one row
  Minibatch candidates;  // one row per candidate line

  FeatureSpan Context() const { return {context.keys, context.values}; }
  size_t num_candidates() const { return candidates.offsets.size() - 1; }
};

struct RankRequestOptions {
  int num_fields = 0;                       // the model's: larger field ids are refused
  uint64_t hash_seed = 0;                   // the training readers' (ReaderOptions::hash_seed)
  DataFormat format = DataFormat::kLibffm;  // the training data's: how field:text becomes a key
  size_t max_candidates = SIZE_MAX;         // more candidate lines are refused
};

// The options that parse requests for the model in `snapshot`.
RankRequestOptions RequestOptionsFor(const ModelSnapshot& snapshot,
                                     size_t max_candidates = SIZE_MAX);

// Parses body into *out (cleared first). InvalidArgument naming the line (1-based) and the token
// for an empty body, a malformed token, a field id >= num_fields or a value the training format
// never had in that field (FieldKey); and for more than max_candidates candidate lines.
Status ParseRankRequest(std::string_view body, const RankRequestOptions& options, RankRequest* out);

}  // namespace fmps

#endif  // FMPS_SERVING_RANK_REQUEST_H_
