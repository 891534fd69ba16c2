#!/bin/sh
# scripts/bench/run.sh -- run every scripts/bench/*.lua (what `make bench` does).
# Each benchmark prints one JSON line per measurement on stdout; the name of
# the script being run goes to stderr. Uses ./rlaif when it has been built,
# else a stock lua5.4 with the repository's module paths.
cd "$(dirname "$0")/../.." || exit 1

if [ -x ./rlaif ]; then
  set -- ./rlaif
else
  LUA_PATH='./lua/?.lua;./lua/?/init.lua;;'
  LUA_CPATH='./build/?.so;;'
  export LUA_PATH LUA_CPATH
  set -- lua5.4
fi

status=0
for script in scripts/bench/*.lua; do
  [ -f "$script" ] || continue
  echo "# $script ($1)" >&2
  "$@" "$script" || status=1
done
exit $status
