// A fixture for tests/CMakeLists.txt's `layering_catches_an_engine_including_the_cli`: an
// engine header that includes the CLI, which cmake/CheckLayers.cmake must reject.
#pragma once

#include "guard/cli/cli.h"
