// Files and directories readable by the process's user alone (API.md section
// 6: everything the server creates is 0600/0700, whatever the umask). The
// modes are set explicitly (mkdir/open with the mode, then chmod/fchmod), so
// a permissive umask (000) cannot widen them; existing paths are left as
// they are (an operator's own choice).
#pragma once

#include <filesystem>
#include <string_view>
#include <system_error>

namespace jeweler::files {

inline constexpr unsigned kPrivateDirMode = 0700;
inline constexpr unsigned kPrivateFileMode = 0600;

/// Creates `dir` and any missing parent, each new one with mode 0700. A
/// directory that already exists keeps its mode. Returns the error of the
/// first step that failed.
std::error_code make_private_dirs(const std::filesystem::path& dir);

/// Creates a new file with mode 0600 (O_CREAT | O_EXCL: fails with
/// file_exists when it is there) and returns its descriptor (O_WRONLY,
/// O_CLOEXEC), or -1 with `ec` set.
int create_private_file(const std::filesystem::path& path, std::error_code& ec);

/// Writes `bytes` to a new 0600 file (see create_private_file); the file is
/// removed again when the write fails.
std::error_code write_private_file(const std::filesystem::path& path, std::string_view bytes);

/// Creates an empty 0600 file at `path` when nothing is there (so that a
/// library which creates the file itself with 0644, such as SQLite, finds it
/// private). An existing file is left alone. Returns true when it created it.
bool ensure_private_file(const std::filesystem::path& path, std::error_code& ec);

/// True when `path` exists and its group or other permission bits are set.
bool readable_by_others(const std::filesystem::path& path);

}  // namespace jeweler::files
