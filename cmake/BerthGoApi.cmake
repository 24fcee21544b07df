# SPDX-License-Identifier: Apache-2.0
# containerd's API Go module at the version containerd 2.4.x pins, fetched at configure time with the go tool
# into the build dir (never copied into the tree). Its protos import each other as "types/platform.proto",
# so they compile against the module root (berth_goapi_proto_library below).
#
# Sets BERTH_GOAPI_DIR (the module root) and BERTH_GOAPI_FOUND. When the go tool or the module proxy is
# unavailable, prints why and leaves BERTH_GOAPI_FOUND off: the modules that need it are skipped.
set(BERTH_GOAPI_MODULE github.com/containerd/containerd/api)
set(BERTH_GOAPI_VERSION v1.12.0)
set(BERTH_GO /usr/local/go/bin/go CACHE FILEPATH "The Go toolchain that fetches Go modules (go mod download)")
set(BERTH_GOAPI_FOUND OFF)
set(BERTH_GOAPI_REASON "")

function(_berth_goapi_fetch)
  set(gopath ${PROJECT_BINARY_DIR}/gomod)
  if(NOT EXISTS ${BERTH_GO})
    set(BERTH_GOAPI_REASON "no go tool at ${BERTH_GO}" PARENT_SCOPE)
    return()
  endif()
  # GOFLAGS=-modcacherw: the module cache is writable, so removing the build dir works
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env GOPATH=${gopath} GOMODCACHE=${gopath}/pkg/mod GOFLAGS=-modcacherw
            GOTOOLCHAIN=local GO111MODULE=on
            ${BERTH_GO} mod download -json ${BERTH_GOAPI_MODULE}@${BERTH_GOAPI_VERSION}
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
    RESULT_VARIABLE rc
    OUTPUT_VARIABLE out
    ERROR_VARIABLE errout
    TIMEOUT 300)
  if(NOT rc EQUAL 0)
    string(REGEX MATCH "\"Error\": \"[^\"]*\"" why "${out}")
    if(NOT why)
      set(why "${errout}")
    endif()
    string(STRIP "${why}" why)
    set(BERTH_GOAPI_REASON "go mod download failed: ${why}" PARENT_SCOPE)
    return()
  endif()
  string(JSON dir ERROR_VARIABLE jerr GET "${out}" Dir)
  if(jerr OR NOT EXISTS ${dir}/types/platform.proto)
    set(BERTH_GOAPI_REASON "go mod download gave no module directory" PARENT_SCOPE)
    return()
  endif()
  set(BERTH_GOAPI_DIR ${dir} PARENT_SCOPE)
endfunction()

if(BERTH_GOAPI_DIR AND EXISTS ${BERTH_GOAPI_DIR}/types/platform.proto)
  set(BERTH_GOAPI_FOUND ON)
else()
  unset(BERTH_GOAPI_DIR)
  _berth_goapi_fetch()
  if(BERTH_GOAPI_DIR)
    set(BERTH_GOAPI_DIR ${BERTH_GOAPI_DIR} CACHE INTERNAL "containerd API module root")
    set(BERTH_GOAPI_FOUND ON)
    message(STATUS "containerd API module ${BERTH_GOAPI_VERSION}: ${BERTH_GOAPI_DIR}")
  endif()
endif()

# berth_goapi_proto_library(<target> COMPILE <protos...>)
# Protos named relative to the module root ("types/platform.proto") or as google's ("google/protobuf/any.proto").
#
# protoc-c (1.4) refuses proto3 `optional`. The module uses it only on message fields (images.proto's
# DeleteImageRequest.target), where it changes neither the wire format nor presence, so the protos are
# staged into the build dir without the keyword and compiled from there.
function(berth_goapi_proto_library target)
  cmake_parse_arguments(P "" "" "COMPILE" ${ARGN})
  set(out ${CMAKE_CURRENT_BINARY_DIR}/proto)
  set(stage ${CMAKE_CURRENT_BINARY_DIR}/proto-src)
  set(sources)
  set(outputs)
  foreach(proto ${P_COMPILE})
    string(REGEX REPLACE "\\.proto$" "" stem ${proto})
    list(APPEND outputs ${out}/${stem}.pb-c.c ${out}/${stem}.pb-c.h)
    list(APPEND sources ${out}/${stem}.pb-c.c)
    # google/rpc/status.proto (introspection's import) is not in the module: Debian's googleapis has it
    set(src ${BERTH_GOAPI_DIR}/${proto})
    if(NOT EXISTS ${src} AND EXISTS /usr/share/gocode/src/github.com/gogo/googleapis/${proto})
      set(src /usr/share/gocode/src/github.com/gogo/googleapis/${proto})
    endif()
    if(EXISTS ${src})
      file(READ ${src} text)
      string(REGEX REPLACE "\n( *)optional " "\n\\1" text "${text}")
      set(old "")
      if(EXISTS ${stage}/${proto})
        file(READ ${stage}/${proto} old)
      endif()
      if(NOT old STREQUAL text) # unchanged files keep their time: no rebuild at each configure
        file(WRITE ${stage}/${proto} "${text}")
      endif()
    endif()
  endforeach()
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
    COMMAND ${PROTOC_C} --c_out=${out} -I${stage} -I/usr/include ${P_COMPILE}
    DEPENDS ${CMAKE_CURRENT_LIST_FILE}
    COMMENT "protoc-c: ${target} (containerd API ${BERTH_GOAPI_VERSION})"
    VERBATIM)
  add_library(${target} STATIC ${sources})
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
  target_include_directories(${target} SYSTEM PUBLIC ${out})
  target_link_libraries(${target} PUBLIC PkgConfig::PROTOBUF_C)
  target_compile_options(${target} PRIVATE -w)
endfunction()
