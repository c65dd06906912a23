#include "ps/job_id.h"

#include <cstdio>
#include <random>

#include "ps/base/keys.h"

namespace fmps {

uint64_t RandomNonzero64() {
  std::random_device rd;
  const uint64_t r = (uint64_t{rd()} << 32) ^ rd();
  return Mix64(r ^ (uint64_t{rd()} << 16)) | 1;
}

std::string NewJobId() {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(RandomNonzero64()));
  return buf;
}

Status CheckJobId(std::string_view job_id) {
  if (job_id.empty() || job_id.size() > 64)
    return Status::InvalidArgument("a job id has 1 to 64 characters, not " +
                                   std::to_string(job_id.size()));
  for (char c : job_id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok)
      return Status::InvalidArgument("job id '" + std::string(job_id) +
                                     "': only letters, digits, '.', '_' and '-'");
  }
  return Status::OK();
}

uint64_t JobTag(std::string_view job_id) {
  if (job_id.empty()) return 0;
  const uint64_t tag = Checksum64(job_id.data(), job_id.size());
  return tag != 0 ? tag : 1;
}

}  // namespace fmps
