# The dependency rule of docs/ARCHITECTURE.md, checked on the sources: each folder may include
# only the folders listed for it. Included by the top CMakeLists.txt (a violation fails the
# configure step) and run by ctest as `layering` (cmake -DUG_SOURCE_DIR=... -P CheckLayers.cmake).
#
#   folder|may include, comma-separated (besides itself; system and library headers always)
set(UG_LAYERS
  "base|"
  "policies|base"
  "formats|base"
  "checks|base,formats,policies"
  "snapshots|base,formats,policies"
  "guard/state|base,formats,checks,policies"
  "guard/gate|base,guard/state,checks,policies"
  "guard/core|base,formats,checks,snapshots,policies,guard/state,guard/gate"
  "guard/boot|base,formats,checks,snapshots,policies,guard/state,guard/gate,guard/core"
  "guard/audit|base,checks,policies,guard/state,guard/gate,guard/core"
  "guard/run|base,formats,checks,snapshots,policies,guard/state,guard/gate,guard/core,guard/boot"
  "guard/bus|base,guard/gate,guard/boot,guard/state,guard/core,checks,policies,snapshots"
  "guard/cli|base,formats,checks,snapshots,policies,guard/state,guard/gate,guard/core,guard/boot,guard/audit,guard/run,guard/bus"
)

if(NOT UG_SOURCE_DIR)
  set(UG_SOURCE_DIR ${CMAKE_CURRENT_LIST_DIR}/..)
endif()

set(ug_layer_violations "")
foreach(entry IN LISTS UG_LAYERS)
  string(REPLACE "|" ";" parts "${entry}")
  string(REPLACE "," ";" parts "${parts}")
  list(GET parts 0 folder)
  list(LENGTH parts n)
  set(allowed ${folder})
  if(n GREATER 1)
    list(SUBLIST parts 1 -1 rest)
    list(APPEND allowed ${rest})
  endif()
  file(GLOB files ${UG_SOURCE_DIR}/${folder}/*.h ${UG_SOURCE_DIR}/${folder}/*.cc)
  foreach(file IN LISTS files)
    file(STRINGS ${file} includes REGEX "^#include \"")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" header "${line}")
      get_filename_component(header_dir ${header} DIRECTORY)
      set(ok FALSE)
      foreach(a IN LISTS allowed)
        if(header_dir STREQUAL a)
          set(ok TRUE)
        endif()
      endforeach()
      if(NOT ok)
        file(RELATIVE_PATH rel ${UG_SOURCE_DIR} ${file})
        string(APPEND ug_layer_violations "  ${rel} includes \"${header}\"\n")
      endif()
    endforeach()
  endforeach()
endforeach()

if(ug_layer_violations)
  message(FATAL_ERROR "upgrade-guard layering broken (see docs/ARCHITECTURE.md):\n${ug_layer_violations}")
endif()
