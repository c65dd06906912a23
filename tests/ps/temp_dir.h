// A fresh temporary directory for one test, removed (with its files) when the test ends.
#ifndef FMPS_TESTS_PS_TEMP_DIR_H_
#define FMPS_TESTS_PS_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace fmps {

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "fmps-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace fmps

#endif  // FMPS_TESTS_PS_TEMP_DIR_H_
