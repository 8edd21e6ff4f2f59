# Sourced by the bench scripts: stops the server whose pid is in $spid (TERM, then KILL
# after $1 tenths of a second, default 30; valgrind'd servers need longer to write their
# output) and reaps it. A no-op when $spid is empty.
stop_server() {
  [ -n "$spid" ] || return 0
  kill -TERM "$spid" 2>/dev/null
  for _ in $(seq "${1:-30}"); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
  spid=""
}
