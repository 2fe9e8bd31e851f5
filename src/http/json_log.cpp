#include <jeweler/http/json_log.hpp>
#include <jeweler/redis/log.hpp>

#include <spdlog/formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <string>

namespace jeweler::http {

namespace {

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto t = msg.time;
    auto secs = time_point_cast<seconds>(t);
    auto ms = duration_cast<milliseconds>(t - secs).count();
    std::time_t tt = system_clock::to_time_t(secs);
    if (tt != cached_second_) {
      std::tm tm{};
      gmtime_r(&tt, &tm);
      char buf[32];
      std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
      cached_ = buf;
      cached_second_ = tt;
    }
    const char frac[5] = {'.', char('0' + ms / 100), char('0' + ms / 10 % 10), char('0' + ms % 10),
                          'Z'};
    dest.append(std::string_view("{\"time\":\""));
    dest.append(cached_.data(), cached_.data() + cached_.size());
    dest.append(frac, frac + 5);
    dest.append(std::string_view("\",\"level\":\""));
    auto level = spdlog::level::to_string_view(msg.level);
    dest.append(level.begin(), level.end());
    dest.push_back('"');
    if (msg.logger_name.size() > 0) {
      dest.append(std::string_view(",\"logger\":\""));
      dest.append(msg.logger_name.begin(), msg.logger_name.end());
      dest.push_back('"');
    }
    std::string_view payload(msg.payload.data(), msg.payload.size());
    if (payload.size() >= 2 && payload.front() == '{' && payload.back() == '}') {
      if (payload.size() > 2) {
        dest.push_back(',');
        dest.append(payload.substr(1));
      } else {
        dest.push_back('}');
      }
    } else {
      dest.append(std::string_view(",\"msg\":\""));
      for (char c : payload) {
        if (c == '"' || c == '\\') {
          dest.push_back('\\');
          dest.push_back(c);
        } else if (c == '\n') {
          dest.append(std::string_view("\\n"));
        } else if (static_cast<unsigned char>(c) < 0x20) {
          dest.push_back(' ');
        } else {
          dest.push_back(c);
        }
      }
      dest.append(std::string_view("\"}"));
    }
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  std::time_t cached_second_ = -1;
  std::string cached_;
};

/// stdout without a write(2) per line (spdlog's stdout sink flushes every
/// message): lines collect in a 64 KiB buffer written out when full, by
/// spdlog::flush_every (once a second), on warnings (flush_on), explicitly
/// after the start-up line, and when the sink goes away.
class BufferedStdoutSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  BufferedStdoutSink() { pending_.reserve(kCapacity); }
  ~BufferedStdoutSink() override {
    std::lock_guard<std::mutex> lock(mutex_);
    write_out();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    if (pending_.size() + buf.size() > kCapacity) write_out();
    pending_.append(buf.data(), buf.size());
  }
  void flush_() override { write_out(); }

 private:
  static constexpr std::size_t kCapacity = 64 * 1024;
  void write_out() {
    if (!pending_.empty()) std::fwrite(pending_.data(), 1, pending_.size(), stdout);
    std::fflush(stdout);
    pending_.clear();
  }
  std::string pending_;
};

}  // namespace

std::unique_ptr<spdlog::formatter> make_json_formatter() {
  return std::make_unique<JsonFormatter>();
}

void setup_json_logging(const std::string& level_name) {
  auto level = spdlog::level::from_str(level_name);
  if (level == spdlog::level::off && level_name != "off")
    throw std::invalid_argument("LOG_LEVEL: '" + level_name +
                                "' is not one of trace, debug, info, warn, error, critical, off");
  auto sink = std::make_shared<BufferedStdoutSink>();
  sink->set_formatter(make_json_formatter());
  auto main_logger = std::make_shared<spdlog::logger>("", sink);
  main_logger->set_level(level);
  main_logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(main_logger);
  auto access = std::make_shared<spdlog::logger>("access", sink);
  access->set_level(level);
  access->flush_on(spdlog::level::warn);
  spdlog::drop("access");
  spdlog::register_logger(access);
  // The libraries' own logger (jeweler::logger()): the same JSON lines,
  // "logger":"jeweler", at the same level.
  auto library = std::make_shared<spdlog::logger>("jeweler", sink);
  library->set_level(level);
  library->flush_on(spdlog::level::warn);
  jeweler::set_logger(library);
}

}  // namespace jeweler::http
