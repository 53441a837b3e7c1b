// Subcommands whose issues have not landed yet: they are listed in --help with what they will
// do, and refuse to run (exit 4) rather than pretend.
#include <CLI/CLI.hpp>

#include "guard/cli.h"

namespace guard {
namespace {

void add_pending(CLI::App& app, CliContext& ctx, const std::string& name, const std::string& description) {
  auto* sub = app.add_subcommand(name, description + " (not built yet: exits 4)");
  sub->allow_extras();
  sub->callback([&ctx, name] { ctx.exit_code = not_built_yet("upgrade-guard " + name); });
}

}  // namespace

void add_audit_command(CLI::App& app, CliContext& ctx) {
  add_pending(app, ctx, "audit", "Run every check against the accepted baseline (for a timer)");
}
void add_snapshot_commands(CLI::App& app, CliContext& ctx) {
  add_pending(app, ctx, "snapshot", "List, create, delete or prune snapshots");
  add_pending(app, ctx, "rollback", "Roll the root back to a snapshot");
}

}  // namespace guard
