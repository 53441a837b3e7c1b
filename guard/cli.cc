#include "guard/cli.h"

#include <CLI/CLI.hpp>

namespace guard {

int run_cli(int argc, char** argv) {
  CLI::App app{"upgrade-guard: guarded package upgrades", "upgrade-guard"};
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  return kExitOk;
}

}  // namespace guard
