#include "config/params.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <sstream>

namespace fmps {
namespace params {
namespace {

constexpr Type TypeOf_int32 = Type::kInt32;
constexpr Type TypeOf_int64 = Type::kInt64;
constexpr Type TypeOf_uint64 = Type::kUint64;
constexpr Type TypeOf_double = Type::kDouble;
constexpr Type TypeOf_bool = Type::kBool;
constexpr Type TypeOf_string = Type::kString;
constexpr Type TypeOf_int_list = Type::kIntList;
constexpr Type TypeOf_glog_int32 = Type::kInt32;
constexpr Type TypeOf_glog_string = Type::kString;

// "\"criteo\"" -> "criteo"; numbers and booleans as written in the table.
const char* Unquote(const char* text) {
  // A deque never moves its elements, so the c_str()s handed out stay valid.
  static std::deque<std::string>* kept = new std::deque<std::string>();
  std::string s(text);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  kept->push_back(s);
  return kept->back().c_str();
}

std::string Number(double v) {
  char buf[40] = "";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  // Shortest text that reads back as v.
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace

const std::vector<ParamInfo>& All() {
  static const std::vector<ParamInfo>* all = [] {
    auto* v = new std::vector<ParamInfo>{
#define FMPS_JOB_PARAM(name, type, def, lo, hi, commands, roles, models, help) \
  {#name, TypeOf_##type, Unquote(#def), lo, hi, commands, roles, models, help},
#define FMPS_FLAG(name, type, def, lo, hi, commands, help) \
  {#name, TypeOf_##type, Unquote(#def), lo, hi, commands, 0, "", help},
#include "config/params.def"
#undef FMPS_JOB_PARAM
#undef FMPS_FLAG
    };
    return v;
  }();
  return *all;
}

const std::vector<TunedAxis>& Tuned() {
  static const std::vector<TunedAxis>* tuned = [] {
    auto split = [](const std::string& text) {
      std::vector<std::string> values;
      std::stringstream ss(text);
      for (std::string v; std::getline(ss, v, ',');) values.push_back(v);
      return values;
    };
    // sizeof(Defaults::name): a tuned name that is no parameter does not compile.
    auto* v = new std::vector<TunedAxis>{
#define FMPS_JOB_PARAM(name, type, def, lo, hi, commands, roles, models, help)
#define FMPS_FLAG(name, type, def, lo, hi, commands, help)
#define FMPS_TUNED(name, values) {sizeof(Defaults::name) > 0 ? #name : "", split(values)},
#include "config/params.def"
#undef FMPS_JOB_PARAM
#undef FMPS_FLAG
#undef FMPS_TUNED
    };
    return v;
  }();
  return *tuned;
}

const ParamInfo* Find(const std::string& name) {
  for (const ParamInfo& p : All()) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

std::string RangeText(const ParamInfo& p) {
  const bool open = p.min == kOpen;
  const std::string lo = open ? "0" : Number(p.min);
  // Maxima this large only keep values finite and within the type: not worth printing.
  const bool unbounded = p.max >= (p.type == Type::kDouble ? 1e9 : kMaxInt32);
  if (unbounded) return (open ? "> " : ">= ") + lo;
  if (open) return "> 0, <= " + Number(p.max);
  return lo + ".." + Number(p.max);
}

Status CheckRange(const ParamInfo& p, double value) {
  const bool ok =
      std::isfinite(value) && (p.min == kOpen ? value > 0 : value >= p.min) && value <= p.max;
  if (ok) return Status::OK();
  std::string shown = std::isnan(value) ? "nan" : Number(value);
  const std::string range = RangeText(p);
  return Status::InvalidArgument("--" + std::string(p.name) + "=" + shown + ": must be " +
                                 (p.type == Type::kDouble ? "a finite number " : "") +
                                 (range[0] == '>' ? "" : "in ") + range);
}

Result<std::vector<int>> ParseIntList(const std::string& text, const std::string& flag) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v <= 0 || v > 65535) {
      return Status::InvalidArgument("--" + flag + "=" + text +
                                     ": expected positive integers separated by commas");
    }
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) return Status::InvalidArgument("--" + flag + " is empty");
  return out;
}

}  // namespace params
}  // namespace fmps
