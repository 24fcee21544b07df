# SPDX-License-Identifier: Apache-2.0
# berth_add_module(<name> SOURCES ... [LIBS ...] [OUTPUT_DIR dir] [NO_INSTALL])
# Builds <name>.so against the public ABI only: hidden visibility, no link against berthd.
function(berth_add_module name)
  cmake_parse_arguments(M "NO_INSTALL" "OUTPUT_DIR" "SOURCES;LIBS" ${ARGN})
  if(NOT M_OUTPUT_DIR)
    set(M_OUTPUT_DIR ${BERTH_MODULE_OUTPUT_DIR})
  endif()
  set(target berth_module_${name})
  add_library(${target} MODULE ${M_SOURCES})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME ${name} PREFIX "" SUFFIX ".so"
    LIBRARY_OUTPUT_DIRECTORY ${M_OUTPUT_DIR}
    C_VISIBILITY_PRESET hidden)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/abi)
  target_link_libraries(${target} PRIVATE PkgConfig::UV ${M_LIBS})
  target_link_options(${target} PRIVATE -Wl,--gc-sections) # (docs/footprint.md)
  if(NOT BERTH_SANITIZE)
    # every symbol must resolve without berthd: modules talk to the core through the api table only
    target_link_options(${target} PRIVATE -Wl,-z,defs)
  endif()
  # its manifest, read by berthd without opening the file (abi/berth/module.h, "On demand")
  if(TARGET berthd)
    add_dependencies(${target} berthd)
    add_custom_command(TARGET ${target} POST_BUILD
      COMMAND sh ${PROJECT_SOURCE_DIR}/cmake/embed_manifest.sh $<TARGET_FILE:berthd>
              $<TARGET_FILE:${target}> ${CMAKE_OBJCOPY}
      VERBATIM)
  endif()
  if(NOT M_NO_INSTALL)
    install(TARGETS ${target} LIBRARY DESTINATION ${BERTH_INSTALL_MODULEDIR})
  endif()
endfunction()
