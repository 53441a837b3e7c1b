#include "base/log.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

namespace guard::base {
namespace {

LogConfig g_config;
std::mutex g_mutex;

bool journal_available() {
  struct stat st {};
  return ::stat("/run/systemd/journal/socket", &st) == 0;
}

int priority(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return LOG_DEBUG;
    case LogLevel::info: return LOG_INFO;
    case LogLevel::warning: return LOG_WARNING;
    case LogLevel::error: return LOG_ERR;
  }
  return LOG_INFO;
}

const char* prefix(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "debug: ";
    case LogLevel::info: return "";
    case LogLevel::warning: return "warning: ";
    case LogLevel::error: return "error: ";
  }
  return "";
}

}  // namespace

void configure_logging(const LogConfig& config) {
  std::lock_guard lock(g_mutex);
  g_config = config;
}

void log(LogLevel level, std::string_view message_id, std::string_view message, const LogFields& fields) {
  std::lock_guard lock(g_mutex);
  if (level >= g_config.stderr_level) {
    std::fprintf(stderr, "upgrade-guard: %s%.*s\n", prefix(level), static_cast<int>(message.size()), message.data());
  }
  if (!g_config.journal || !journal_available()) return;
  std::vector<std::string> items;
  items.push_back("MESSAGE=" + std::string(message));
  items.push_back("PRIORITY=" + std::to_string(priority(level)));
  items.push_back("SYSLOG_IDENTIFIER=upgrade-guard");
  if (!message_id.empty()) items.push_back("MESSAGE_ID=" + std::string(message_id));
  for (const auto& [key, value] : fields) items.push_back(key + "=" + value);
  std::vector<struct iovec> iov;
  iov.reserve(items.size());
  for (auto& item : items) iov.push_back({item.data(), item.size()});
  sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

}  // namespace guard::base
