# SPDX-License-Identifier: Apache-2.0
# containerd's .proto files come from Debian's golang-github-containerd-containerd-dev at build time (never
# copied into the tree) and are compiled by protoc-c into a PIC static library modules link privately.
find_program(PROTOC_C protoc-c REQUIRED)
pkg_check_modules(PROTOBUF_C REQUIRED IMPORTED_TARGET libprotobuf-c)
set(BERTH_GOCODE /usr/share/gocode/src CACHE PATH "Debian's Go source tree holding containerd's protos")
set(BERTH_PROTO_INCLUDES
    -I${PROJECT_SOURCE_DIR}/abi/proto
    -I${BERTH_GOCODE}
    -I${BERTH_GOCODE}/github.com/gogo/protobuf
    -I/usr/include
    -I${BERTH_GOCODE}/github.com/gogo/googleapis)

# berth_proto_library(<target> COMPILE <protos...> HEADERS_ONLY <protos...>)
# Protos are named as imported ("github.com/containerd/containerd/api/...", "google/protobuf/any.proto").
function(berth_proto_library target)
  cmake_parse_arguments(P "" "" "COMPILE;HEADERS_ONLY" ${ARGN})
  set(out ${CMAKE_CURRENT_BINARY_DIR}/proto)
  set(sources)
  set(outputs)
  foreach(proto ${P_COMPILE} ${P_HEADERS_ONLY})
    string(REGEX REPLACE "\\.proto$" "" stem ${proto})
    list(APPEND outputs ${out}/${stem}.pb-c.c ${out}/${stem}.pb-c.h)
  endforeach()
  foreach(proto ${P_COMPILE})
    string(REGEX REPLACE "\\.proto$" "" stem ${proto})
    list(APPEND sources ${out}/${stem}.pb-c.c)
  endforeach()
  # berth's own protos change with the tree: an edit regenerates (the vendored ones never change)
  set(depends)
  foreach(proto ${P_COMPILE} ${P_HEADERS_ONLY})
    if(EXISTS ${PROJECT_SOURCE_DIR}/abi/proto/${proto})
      list(APPEND depends ${PROJECT_SOURCE_DIR}/abi/proto/${proto})
    endif()
  endforeach()
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
    COMMAND ${PROTOC_C} --c_out=${out} ${BERTH_PROTO_INCLUDES} ${P_COMPILE} ${P_HEADERS_ONLY}
    DEPENDS ${depends}
    COMMENT "protoc-c: ${target}"
    VERBATIM)
  add_library(${target} STATIC ${sources})
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
  target_include_directories(${target} SYSTEM PUBLIC ${out})
  target_link_libraries(${target} PUBLIC PkgConfig::PROTOBUF_C)
  # generated code is not ours to warn about
  target_compile_options(${target} PRIVATE -w)
endfunction()
