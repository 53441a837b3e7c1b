// Logging for the CLI layer: to stderr, and to the journal when one is listening.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace guard::base {

enum class LogLevel { debug, info, warning, error };

// Extra structured journal fields, e.g. {{"UG_RUN_ID", "12"}, {"UG_PHASE", "command"}}.
using LogFields = std::vector<std::pair<std::string, std::string>>;

struct LogConfig {
  LogLevel stderr_level = LogLevel::warning;  // what reaches the terminal
  bool journal = true;                        // also send to the journal when its socket exists
};

void configure_logging(const LogConfig& config);

// Logs one message. `message_id` is a 128-bit id in hex (journal MESSAGE_ID), or empty.
// e.g. log(LogLevel::info, kRunFinishedId, "run 12 passed", {{"UG_RUN_ID", "12"}}).
void log(LogLevel level, std::string_view message_id, std::string_view message, const LogFields& fields = {});

}  // namespace guard::base
