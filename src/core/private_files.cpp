#include <jeweler/core/private_files.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace jeweler::files {

namespace fs = std::filesystem;

namespace {

std::error_code last_error() {
  return {errno, std::generic_category()};
}

}  // namespace

std::error_code make_private_dirs(const fs::path& dir) {
  if (dir.empty()) return {};
  // The missing components, outermost first.
  std::vector<fs::path> missing;
  std::error_code ec;
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    if (fs::exists(p, ec)) break;
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), kPrivateDirMode) != 0) {
      if (errno == EEXIST) continue;  // created meanwhile (another process)
      return last_error();
    }
    // mkdir's mode is filtered by the umask: set it exactly.
    if (::chmod(it->c_str(), kPrivateDirMode) != 0) return last_error();
  }
  if (!fs::is_directory(dir, ec)) return ec ? ec : std::make_error_code(std::errc::not_a_directory);
  return {};
}

int create_private_file(const fs::path& path, std::error_code& ec) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kPrivateFileMode);
  if (fd < 0) {
    ec = last_error();
    return -1;
  }
  if (::fchmod(fd, kPrivateFileMode) != 0) {
    ec = last_error();
    ::close(fd);
    ::unlink(path.c_str());
    return -1;
  }
  ec.clear();
  return fd;
}

std::error_code write_private_file(const fs::path& path, std::string_view bytes) {
  std::error_code ec;
  int fd = create_private_file(path, ec);
  if (fd < 0) return ec;
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      ec = last_error();
      break;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (!ec && ::fsync(fd) != 0) ec = last_error();
  if (::close(fd) != 0 && !ec) ec = last_error();
  if (ec) ::unlink(path.c_str());
  return ec;
}

bool ensure_private_file(const fs::path& path, std::error_code& ec) {
  int fd = create_private_file(path, ec);
  if (fd < 0) {
    if (ec == std::errc::file_exists) ec.clear();
    return false;
  }
  ::close(fd);
  return true;
}

bool readable_by_others(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  return (st.st_mode & 077) != 0;
}

}  // namespace jeweler::files
