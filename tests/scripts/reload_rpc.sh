#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `berthd reload` (berth.services.modules.v1.Modules/Reload) on a real berthd: with two Events.Subscribe
# streams open (`berth events` and ctr's), the config disables the Introspection service and `berthd reload`
# says so; Introspection then answers Unimplemented ("unknown service", as after a start with that config)
# while Version and the streams go on, the streams saw /berth/reload, and `berthd modules --address` shows
# the plugin disabled. Enabled again, it answers again (`berth reload` this time). A config with an unknown
# key makes `berthd reload` exit 1 with the line `berthd config check` prints, and changes nothing (the
# event still reports the refusal). Throughout, the fixture fx_wrap's api.handler-update wrapper of Version
# (PermissionDenied in the namespace "forbidden") holds over the services each reload swaps, and goes
# when its plugin is disabled.
# usage: reload_rpc.sh BERTHD MODULE_DIR SOURCE_DIR GRPCC BERTH_CLI CTR FIXTURE_DIR
set -eu
. "$(dirname "$0")/lib.sh"
BERTHD=$1
export BERTH_MODULE_DIR=$2
export BERTH_SRC=$3
GRPCC=$4
CLI=$5
CTR=$6
FX=$7
work=$(mktemp -d /tmp/berth-reload-XXXXXX)
SOCK=$work/state/berthd.sock
B="$CLI --address $SOCK"
EVENTS_PID=""
CTR_PID=""
cleanup() {
    st=$?
    set +e # (exit $st) below must not end the trap before cleanup_work ran
    for p in $EVENTS_PID $CTR_PID; do kill "$p" 2>/dev/null || true; done
    for p in $EVENTS_PID $CTR_PID; do wait "$p" 2>/dev/null || true; done
    (exit $st)
    cleanup_work
}
trap cleanup EXIT

INTRO=io.containerd.grpc.v1.introspection
PLUGINS=/containerd.services.introspection.v1.Introspection/Plugins
WRAP=test.wrap.v1.version-guard
VERSION=/containerd.services.version.v1.Version/Version
config() { # DISABLED_LIST [EXTRA_LINE]
    {
        echo "version: 1"
        echo "module_dirs: [$FX/wrap]"
        echo "disabled: [$1]"
        [ $# -lt 2 ] || echo "$2"
    } >"$work/berthd.yaml"
}
# status of one call: the grpc-status grpcc saw, then its message
call() { "$GRPCC" "$SOCK" "$1" --expect "${2:-0}" ${3:+--ns "$3"} | sed -n 's/^stream [0-9]* grpc-status \([0-9-]*\) .* grpc-message \(.*\)/\1 \2/p'; }
running() { "$BERTHD" modules --address "$SOCK" | awk -v u="$1" '$2 == u { print $3 }'; }

config ""
start_berthd_cli "$work/berthd.yaml"
[ "$(call $PLUGINS)" = "0 " ] || fail "Introspection before: $(call $PLUGINS)"
[ "$(running $INTRO)" = ok ] || fail "modules --address before: $("$BERTHD" modules --address "$SOCK")"
guarded() { # WHEN: Version is wrapped (PermissionDenied in "forbidden", served elsewhere)
    r=$(call $VERSION 7 forbidden)
    case $r in "7 namespace forbidden may not ask for the version"*) ;; *) fail "Version in forbidden $1: $r" ;; esac
    [ "$(call $VERSION)" = "0 " ] || fail "Version $1: $(call $VERSION 0)"
}
guarded "at the start"

# two Events.Subscribe streams, berth's client and containerd's
$B events --format json >"$work/events" 2>"$work/events.err" &
EVENTS_PID=$!
"$CTR" --address "$SOCK" events >"$work/ctr-events" 2>"$work/ctr-events.err" &
CTR_PID=$!
sleep 0.5
kill -0 $EVENTS_PID 2>/dev/null || fail "berth events ended: $(cat "$work/events.err")"
kill -0 $CTR_PID 2>/dev/null || fail "ctr events ended: $(cat "$work/ctr-events.err")"

# --- disable Introspection (the address from the config and --state, as an operator would) --------------
config "$INTRO"
"$BERTHD" --config "$work/berthd.yaml" --state "$work/state" reload >"$work/out" 2>"$work/err" ||
    fail "berthd reload (disable) exited $?: $(cat "$work/err")"
grep -qx "disabled $INTRO" "$work/out" || fail "berthd reload printed: $(cat "$work/out") $(cat "$work/err")"
r=$(call $PLUGINS 12)
case $r in
"12 unknown service containerd.services.introspection.v1.Introspection"*) ;;
*) fail "Introspection once disabled: $r" ;;
esac
$B version >/dev/null || fail "Version does not answer after the reload"
[ "$(running $INTRO)" = disabled ] || fail "modules --address: $("$BERTHD" modules --address "$SOCK")"
sleep 0.3
kill -0 $EVENTS_PID 2>/dev/null || fail "berth events ended with the reload: $(cat "$work/events.err")"
kill -0 $CTR_PID 2>/dev/null || fail "ctr events ended with the reload: $(cat "$work/ctr-events.err")"
grep '"Topic":"/berth/reload"' "$work/events" | grep -q "$INTRO" ||
    fail "no /berth/reload event naming $INTRO: $(cat "$work/events")"
grep -q '"Namespace":"berth"' "$work/events" || fail "the event is not in namespace berth: $(cat "$work/events")"
guarded "after the reload"

# --- enable it again, through the CLI -----------------------------------------------------------------------
config ""
$B reload >"$work/out" 2>"$work/err" || fail "berth reload (enable) exited $?: $(cat "$work/err")"
grep -qx "enabled $INTRO" "$work/out" || fail "berth reload printed: $(cat "$work/out")"
[ "$(call $PLUGINS)" = "0 " ] || fail "Introspection once enabled again: $(call $PLUGINS 12)"
[ "$(running $INTRO)" = ok ] || fail "modules --address after: $("$BERTHD" modules --address "$SOCK")"
[ "$(grep -c '"Topic":"/berth/reload"' "$work/events")" -eq 2 ] || fail "events: $(cat "$work/events")"

# --- a bad config: refused with config check's words, nothing changes -----------------------------------
"$BERTHD" modules --address "$SOCK" >"$work/table-before"
config "$INTRO" "log_levle: debug"
if "$BERTHD" --config "$work/berthd.yaml" config check >/dev/null 2>"$work/check"; then
    fail "config check accepted the bad config"
fi
if "$BERTHD" --address "$SOCK" reload >"$work/out" 2>"$work/err"; then
    fail "berthd reload accepted the bad config: $(cat "$work/out")"
fi
[ -s "$work/check" ] && cmp -s "$work/check" "$work/err" ||
    fail "berthd reload said: $(cat "$work/err") -- config check says: $(cat "$work/check")"
[ "$(call $PLUGINS)" = "0 " ] || fail "Introspection after the refused reload: $(call $PLUGINS 12)"
"$BERTHD" modules --address "$SOCK" >"$work/table-after"
cmp -s "$work/table-before" "$work/table-after" ||
    fail "the refused reload changed the table: $(diff "$work/table-before" "$work/table-after")"
sleep 0.3
grep '"Topic":"/berth/reload"' "$work/events" | grep -q "log_levle" ||
    fail "no /berth/reload event with the refusal: $(cat "$work/events")"

guarded "after the refused reload"

# --- the wrapper's plugin disabled: Version unwrapped; enabled again: wrapped again ----------------------------
config "$WRAP"
"$BERTHD" --address "$SOCK" reload >"$work/out" 2>"$work/err" || fail "reload (wrap off): $(cat "$work/err")"
grep -qx "disabled $WRAP" "$work/out" || fail "berthd reload printed: $(cat "$work/out")"
[ "$(call $VERSION 0 forbidden)" = "0 " ] || fail "Version still wrapped: $(call $VERSION 7 forbidden)"
config ""
"$BERTHD" --address "$SOCK" reload >"$work/out" 2>"$work/err" || fail "reload (wrap on): $(cat "$work/err")"
guarded "with the wrapper enabled again"

kill -0 $EVENTS_PID 2>/dev/null || fail "berth events ended: $(cat "$work/events.err")"
kill -0 $CTR_PID 2>/dev/null || fail "ctr events ended: $(cat "$work/ctr-events.err")"
echo "ok reload.rpc"
