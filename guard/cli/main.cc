#include <cstdio>
#include <exception>

#include "guard/cli/cli.h"

int main(int argc, char** argv) {
  try {
    return guard::cli::run_cli(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "upgrade-guard: internal error: %s\n", e.what());
    return guard::kExitEnvironment;
  }
}
