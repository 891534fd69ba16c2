#!/usr/bin/env bash
# scripts/check_repl.sh -- drive the rlaif REPL in a real pseudo-terminal (tmux)
# and check what it shows: expressions, multi-line chunks, tables, tensors,
# errors with tracebacks, Ctrl-C in a Lua loop, in a loop of C matmuls and at
# the prompt, help(), Ctrl-D and the history file (written as lines are entered).
#
# Usage: scripts/check_repl.sh   (from anywhere; needs tmux and build/bin/rlaif,
#        or RLAIF=/path/to/rlaif scripts/check_repl.sh for another build)
# Prints the captured screen; exits 0 when every expectation holds, 1 when one
# is missing (each is listed), 2 when it cannot run. Uses a private tmux socket
# and a temporary HOME, so neither your tmux sessions nor ~/.rlaif_history are
# touched. Takes about 5 seconds.

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RLAIF="${RLAIF:-$ROOT/build/bin/rlaif}"   # override to check another build
SOCK="rlaif-check-$$"
TMPHOME=$(mktemp -d)
TMUX_CMD=(tmux -L "$SOCK")

command -v tmux >/dev/null || { echo "check_repl: tmux not found" >&2; exit 2; }
[ -x "$RLAIF" ] || { echo "check_repl: $RLAIF not built (run make)" >&2; exit 2; }

cleanup() {
  "${TMUX_CMD[@]}" kill-server 2>/dev/null
  rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$SOCK"   # kill-server leaves the socket file
  rm -rf "$TMPHOME"
}
trap cleanup EXIT

capture() { "${TMUX_CMD[@]}" capture-pane -p -t repl -S -2000; }

# type a line literally (send-keys -l: "end" is not the End key), then Enter
type_line() {
  "${TMUX_CMD[@]}" send-keys -t repl -l "$1"
  "${TMUX_CMD[@]}" send-keys -t repl Enter
}

# wait_for REGEX [COUNT]: until the screen has COUNT lines matching REGEX (5 s max)
wait_for() {
  local want=${2:-1} i
  for i in $(seq 50); do
    [ "$(capture | grep -cE -- "$1")" -ge "$want" ] && return 0
    sleep 0.1
  done
  return 1
}

"${TMUX_CMD[@]}" -f /dev/null new-session -d -s repl -x 120 -y 40 \
  "cd '$ROOT' && HOME='$TMPHOME' '$RLAIF'; echo \"REPL-EXITED rc=\$?\"; sleep 60"

wait_for 'help\(\) lists the API'

type_line '1+1'
wait_for '^2$'

type_line 'for i = 1, 3 do'
type_line '  io.write(i * 10, " ")'
type_line 'end'
wait_for '^10 20 30'

type_line '{1, 2, 3, x = 4, nested = {5}}'
wait_for 'nested = \{\.\.\.\}'

type_line 'rlaif.tensor.arange(6):reshape({2,3})'
wait_for '\[3\., 4\., 5\.\]\]\)'

type_line 'error("boom")'
wait_for 'stack traceback'
type_line '"alive" .. 1'
wait_for '^"alive1"$'

# Ctrl-C in a pure Lua loop: the hook raises "interrupted!"
type_line 'while true do end'
sleep 0.5
"${TMUX_CMD[@]}" send-keys -t repl C-c
wait_for 'interrupted' 1
type_line '"alive" .. 2'
wait_for '^"alive2"$'

# Ctrl-C in a loop of large matmuls: the core's cancel flag or the hook
type_line 'for i = 1, 1e9 do rlaif.tensor.ones({512, 512}):matmul(rlaif.tensor.ones({512, 512})) end'
sleep 1
"${TMUX_CMD[@]}" send-keys -t repl C-c
wait_for 'interrupted' 2
type_line '"alive" .. 3'
wait_for '^"alive3"$'

# Ctrl-C at the prompt discards the line, also inside a multi-line chunk
"${TMUX_CMD[@]}" send-keys -t repl -l 'discard me'
sleep 0.2
"${TMUX_CMD[@]}" send-keys -t repl C-c
type_line 'for i = 1, 2 do'
sleep 0.2
"${TMUX_CMD[@]}" send-keys -t repl C-c
type_line '"alive" .. 4'
wait_for '^"alive4"$'

# the history file grows as lines are entered, not only at exit (a killed REPL keeps it)
HIST_LIVE=0
grep -qx '1+1' "$TMPHOME/.rlaif_history" 2>/dev/null && HIST_LIVE=1

type_line 'help()'
wait_for '^tensor methods'

"${TMUX_CMD[@]}" send-keys -t repl C-d
wait_for 'REPL-EXITED'

SCREEN=$(capture)
printf '%s\n' "---- tmux capture ----" "$SCREEN" "----------------------"

status=0
expect() {  # expect DESCRIPTION REGEX [COUNT]
  if [ "$(printf '%s\n' "$SCREEN" | grep -cE -- "$2")" -lt "${3:-1}" ]; then
    echo "MISSING: $1 (/$2/)"
    status=1
  fi
}
reject() {  # reject DESCRIPTION REGEX
  if printf '%s\n' "$SCREEN" | grep -qE -- "$2"; then
    echo "UNEXPECTED: $1 (/$2/)"
    status=1
  fi
}

expect "banner" '^rlaif .* help\(\) lists the API'
expect "1+1 prints 2" '^2$'
expect "continuation prompt" '^>> '
expect "multi-line for loop ran" '^10 20 30'
expect "table printed one level deep" '^\{1, 2, 3, nested = \{\.\.\.\}, x = 4\}$'
expect "tensor printed, row 1" '^tensor\(\[\[0\., 1\., 2\.\],$'
expect "tensor printed, row 2" '^ +\[3\., 4\., 5\.\]\]\)$'
expect "error message" '^stdin:1: boom$'
expect "error traceback" '^stack traceback:' 2
expect "alive after error" '^"alive1"$'
expect "Lua loop interrupted" '^\^Cinterrupted!$|^\^Cstdin:1: interrupted!$'
expect "alive after Lua interrupt" '^"alive2"$'
expect "matmul loop interrupted" 'interrupted' 2
expect "alive after matmul interrupt" '^"alive3"$'
expect "Ctrl-C at the prompt shows ^C" '^> discard me\^C$'
expect "Ctrl-C in a continuation line" '^>> \^C$'
expect "alive after prompt Ctrl-C" '^"alive4"$'
reject "discarded line was run" "near 'me'"
expect "help() lists modules" '^module rlaif\.tensor: '
expect "help() lists documented functions" 'rlaif\.get_threads\(\) ->'
expect "Ctrl-D exits with status 0" '^REPL-EXITED rc=0$'

if grep -qx '1+1' "$TMPHOME/.rlaif_history" 2>/dev/null; then :; else
  echo "MISSING: ~/.rlaif_history with the session's lines"
  status=1
fi
if [ $HIST_LIVE -ne 1 ]; then
  echo "MISSING: ~/.rlaif_history written while the REPL runs"
  status=1
fi
if [ "$(grep -cx '1+1' "$TMPHOME/.rlaif_history" 2>/dev/null)" != 1 ]; then
  echo "UNEXPECTED: '1+1' is not in ~/.rlaif_history exactly once"
  status=1
fi

if [ $status -eq 0 ]; then echo "check_repl: all expectations met"; fi
exit $status
