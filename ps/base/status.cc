#include "ps/base/status.h"

namespace fmps {

std::string Status::ToString() const {
  const char* name = "OK";
  switch (code_) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      name = "Invalid argument";
      break;
    case Code::kIOError:
      name = "IO error";
      break;
    case Code::kCorruption:
      name = "Corruption";
      break;
    case Code::kNotFound:
      name = "Not found";
      break;
    case Code::kTimeout:
      name = "Timeout";
      break;
    case Code::kAborted:
      name = "Aborted";
      break;
  }
  return std::string(name) + ": " + message_;
}

}  // namespace fmps
