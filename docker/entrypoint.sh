#!/bin/sh
# PID 1 of a simtwin container: runs the command given as arguments, forwards SIGTERM/SIGINT to
# it, and (with SIMTWIN_STDIN_GUARD=1) stops it when stdin closes. The docker backend keeps the
# container's stdin attached (stdin_once) from the pytest worker, so a worker killed with SIGKILL
# closes it and its container stops within seconds, then auto-removes (the Ryuk idea without a
# sidecar).
set -u
if [ "$#" -eq 0 ]; then
  echo "simtwin-entrypoint: expected a command to run, found none" >&2
  exit 64
fi
# An asynchronous command's stdin is /dev/null in sh: keep the real stdin on fd 3 for the guard.
exec 3<&0
"$@" </dev/null 3<&- &
child=$!
stop_child() {
  kill -TERM "$child" 2>/dev/null
}
trap stop_child TERM INT HUP
if [ "${SIMTWIN_STDIN_GUARD:-0}" = 1 ]; then
  (
    cat <&3 >/dev/null
    echo "simtwin-entrypoint: stdin closed (the test process is gone); stopping the simulator" >&2
    kill -TERM "$child" 2>/dev/null
    sleep "${SIMTWIN_STOP_GRACE:-3}"
    kill -KILL "$child" 2>/dev/null
  ) &
fi
# `wait` returns early when a trapped signal arrives: keep waiting until the child is gone.
rc=0
while :; do
  wait "$child"
  rc=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$rc"
