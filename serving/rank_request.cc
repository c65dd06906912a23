#include "serving/rank_request.h"

#include <string>
#include <vector>

#include "ps/base/keys.h"
#include "data/line_parser.h"

namespace fmps {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string Quote(std::string_view s) {
  constexpr size_t kMax = 60;
  if (s.size() <= kMax) return "'" + std::string(s) + "'";
  return "'" + std::string(s.substr(0, kMax)) + "...'";
}

// Splits a line into tokens.
void Tokens(std::string_view line, std::vector<std::string_view>* tokens) {
  tokens->clear();
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    const size_t begin = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    if (i > begin) tokens->push_back(line.substr(begin, i - begin));
  }
}

// Appends `token` in libffm syntax (field:feature:value) to *line: a missing value is 1.
void AppendLibffmToken(std::string_view token, std::string* line) {
  line->push_back(' ');
  line->append(token);
  const size_t colon = token.find(':');
  if (colon != std::string_view::npos && token.find(':', colon + 1) == std::string_view::npos) {
    line->append(":1");
  }
}

// One line -> one row of *batch: the syntax through the libffm reader's parser with a dummy label,
// then (for formats whose readers do not hash every field as text) the keys from FieldKey.
Status ParseLine(std::string_view line, size_t line_no, const RankRequestOptions& options,
                 std::vector<std::string_view>* tokens, std::string* scratch, Minibatch* batch) {
  const int num_fields = options.num_fields;
  const uint64_t hash_seed = options.hash_seed;
  Tokens(line, tokens);
  scratch->assign("0");
  for (std::string_view token : *tokens) AppendLibffmToken(token, scratch);
  const size_t first = batch->keys.size();
  std::string error;
  if (!ParseLibffmLine(*scratch, hash_seed, batch, &error)) {
    // Find the token at fault, so the message names it as the client wrote it.
    Minibatch one;
    std::string single;
    for (size_t i = 0; i < tokens->size(); ++i) {
      single.assign("0");
      AppendLibffmToken((*tokens)[i], &single);
      std::string why;
      if (!ParseLibffmLine(single, hash_seed, &one, &why)) {
        return Status::InvalidArgument("line " + std::to_string(line_no) + ", token " +
                                       std::to_string(i + 1) + " " + Quote((*tokens)[i]) + ": " +
                                       why + " (tokens are field:feature[:value])");
      }
    }
    return Status::InvalidArgument("line " + std::to_string(line_no) + ": " + error);
  }
  for (size_t e = first; e < batch->keys.size(); ++e) {
    const uint32_t field = KeyField(batch->keys[e]);
    if (field >= uint32_t(num_fields)) {
      return Status::InvalidArgument(
          "line " + std::to_string(line_no) + ", token " + std::to_string(e - first + 1) + " " +
          Quote((*tokens)[e - first]) + ": field " + std::to_string(field) + " >= num_fields " +
          std::to_string(num_fields) + " of the model");
    }
  }
  // ParseLibffmLine hashed every field's text; the fields the training reader keyed otherwise
  // (Criteo's integers, Avazu's hour and weekday) are keyed again as it did.
  for (size_t i = 0; i < tokens->size(); ++i) {
    uint64_t& key = batch->keys[first + i];
    if (FieldIsText(options.format, KeyField(key))) continue;
    const std::string_view token = (*tokens)[i];
    const size_t c1 = token.find(':');  // the syntax is checked: field:feature[:value]
    const size_t c2 = token.find(':', c1 + 1);
    const std::string_view feature =
        token.substr(c1 + 1, c2 == std::string_view::npos ? std::string_view::npos : c2 - c1 - 1);
    Result<uint64_t> made = FieldKey(options.format, KeyField(key), feature, hash_seed);
    if (!made.ok()) {
      return Status::InvalidArgument("line " + std::to_string(line_no) + ", token " +
                                     std::to_string(i + 1) + " " + Quote(token) + ": " +
                                     made.status().message());
    }
    key = made.value();
  }
  return Status::OK();
}

}  // namespace

RankRequestOptions RequestOptionsFor(const ModelSnapshot& snapshot, size_t max_candidates) {
  RankRequestOptions o;
  o.num_fields = snapshot.num_fields();
  o.hash_seed = snapshot.hash_seed();
  o.format = snapshot.format();
  o.max_candidates = max_candidates;
  return o;
}

Status ParseRankRequest(std::string_view body, const RankRequestOptions& options,
                        RankRequest* out) {
  const size_t max_candidates = options.max_candidates;
  out->context.Clear();
  out->candidates.Clear();
  if (body.empty()) {
    return Status::InvalidArgument(
        "empty body: the first line is the context, each further line a candidate");
  }
  std::vector<std::string_view> tokens;
  std::string scratch;
  size_t line_no = 0, pos = 0;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    ++line_no;
    if (line_no > 1 && line_no - 1 > max_candidates) {
      return Status::InvalidArgument("line " + std::to_string(line_no) + ": more than " +
                                     std::to_string(max_candidates) + " candidates");
    }
    Minibatch* target = line_no == 1 ? &out->context : &out->candidates;
    FMPS_RETURN_IF_ERROR(
        ParseLine(body.substr(pos, end - pos), line_no, options, &tokens, &scratch, target));
    pos = end + 1;
  }
  return Status::OK();
}

}  // namespace fmps
