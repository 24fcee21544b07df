# SPDX-License-Identifier: Apache-2.0
# The CRI's API (runtime.v1) from the Go module k8s.io/cri-api at a pinned version, fetched at configure time
# with the go tool into the build dir (never copied into the tree), as cmake/BerthGoApi.cmake does for
# containerd's API.
#
# Sets BERTH_CRIAPI_DIR (the module root) and BERTH_CRIAPI_FOUND; without the go tool or the module proxy it
# says why (BERTH_CRIAPI_REASON) and the cri module is skipped.
set(BERTH_CRIAPI_MODULE k8s.io/cri-api)
set(BERTH_CRIAPI_VERSION v0.37.2)
set(BERTH_CRIAPI_PROTO pkg/apis/runtime/v1/api.proto)
set(BERTH_GO /usr/local/go/bin/go CACHE FILEPATH "The Go toolchain that fetches Go modules (go mod download)")
set(BERTH_CRIAPI_FOUND OFF)
set(BERTH_CRIAPI_REASON "")

function(_berth_criapi_fetch)
  set(gopath ${PROJECT_BINARY_DIR}/gomod)
  if(NOT EXISTS ${BERTH_GO})
    set(BERTH_CRIAPI_REASON "no go tool at ${BERTH_GO}" PARENT_SCOPE)
    return()
  endif()
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env GOPATH=${gopath} GOMODCACHE=${gopath}/pkg/mod GOFLAGS=-modcacherw
            GOTOOLCHAIN=local GO111MODULE=on
            ${BERTH_GO} mod download -json ${BERTH_CRIAPI_MODULE}@${BERTH_CRIAPI_VERSION}
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
    set(BERTH_CRIAPI_REASON "go mod download failed: ${why}" PARENT_SCOPE)
    return()
  endif()
  string(JSON dir ERROR_VARIABLE jerr GET "${out}" Dir)
  if(jerr OR NOT EXISTS ${dir}/${BERTH_CRIAPI_PROTO})
    set(BERTH_CRIAPI_REASON "go mod download gave no module directory" PARENT_SCOPE)
    return()
  endif()
  set(BERTH_CRIAPI_DIR ${dir} PARENT_SCOPE)
endfunction()

if(BERTH_CRIAPI_DIR AND EXISTS ${BERTH_CRIAPI_DIR}/${BERTH_CRIAPI_PROTO})
  set(BERTH_CRIAPI_FOUND ON)
else()
  unset(BERTH_CRIAPI_DIR)
  _berth_criapi_fetch()
  if(BERTH_CRIAPI_DIR)
    set(BERTH_CRIAPI_DIR ${BERTH_CRIAPI_DIR} CACHE INTERNAL "k8s.io/cri-api module root")
    set(BERTH_CRIAPI_FOUND ON)
    message(STATUS "CRI API module ${BERTH_CRIAPI_VERSION}: ${BERTH_CRIAPI_DIR}")
  endif()
endif()

# berth_criapi_proto_library(<target>): runtime.v1 as "runtime/v1/api.pb-c.h" (C names Runtime__V1__...).
# protoc-c (1.4) knows neither the field option debug_redact (a logging hint on credentials) nor proto3
# `optional`: the proto is staged into the build dir without them; the wire format is unchanged.
function(berth_criapi_proto_library target)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/proto)
  set(stage ${CMAKE_CURRENT_BINARY_DIR}/proto-src)
  file(READ ${BERTH_CRIAPI_DIR}/${BERTH_CRIAPI_PROTO} text)
  string(REGEX REPLACE " *\\[debug_redact *= *true\\]" "" text "${text}")
  string(REGEX REPLACE "\n( *)optional " "\n\\1" text "${text}")
  set(old "")
  if(EXISTS ${stage}/runtime/v1/api.proto)
    file(READ ${stage}/runtime/v1/api.proto old)
  endif()
  if(NOT old STREQUAL text)
    file(WRITE ${stage}/runtime/v1/api.proto "${text}")
  endif()
  add_custom_command(
    OUTPUT ${out}/runtime/v1/api.pb-c.c ${out}/runtime/v1/api.pb-c.h
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
    COMMAND ${PROTOC_C} --c_out=${out} -I${stage} runtime/v1/api.proto
    DEPENDS ${stage}/runtime/v1/api.proto ${CMAKE_CURRENT_LIST_FILE}
    COMMENT "protoc-c: ${target} (k8s.io/cri-api ${BERTH_CRIAPI_VERSION})"
    VERBATIM)
  add_library(${target} STATIC ${out}/runtime/v1/api.pb-c.c)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
  target_include_directories(${target} SYSTEM PUBLIC ${out})
  target_link_libraries(${target} PUBLIC PkgConfig::PROTOBUF_C)
  target_compile_options(${target} PRIVATE -w)
  # gnu11 predefines `linux` as 1, and runtime.v1 has fields named linux: every user of the header needs it off
  target_compile_options(${target} PUBLIC -Ulinux)
endfunction()
