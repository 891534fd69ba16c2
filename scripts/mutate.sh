#!/usr/bin/env bash
# scripts/mutate.sh -- mutation check: plant each small bug of
# scripts/mutations.txt in a temporary copy of the tree, run the tests the
# list names for it, and report which bugs no test noticed (survivors).
#
#   bash scripts/mutate.sh                 # every mutation (make mutate)
#   bash scripts/mutate.sh name1 name2     # only these (make mutate MUTATE_ONLY="name1 name2")
#   bash scripts/mutate.sh -l              # list the names
#   MUTATE_KEEP=1 bash scripts/mutate.sh   # keep the copy (its path is printed)
#
# How it works: the tracked and untracked-but-not-ignored files of this tree
# (uncommitted edits included) and build/ are copied to /tmp/rlaif-mutate.XXXX;
# every test a mutation names is run once unmutated (the baseline must pass);
# then, one mutation at a time, the exact text `from` is replaced by `to` in
# `file`, the tests run in the listed order until one fails (the mutant is
# killed), and the file is restored. Exit status 0 only when every mutation was
# killed; a survivor, a stale entry (`from` not found exactly once), a mutant
# that does not build, or a failing baseline make it 1. Not part of `make test`:
# a full run takes minutes. Run it before calling a numeric or parsing feature
# done, and after changing the code a mutation points into.
#
# The list (scripts/mutations.txt): stanzas separated by blank lines or new
# headers; `#` starts a comment line.
#
#   [sampler-temperature-ignored]            a unique name
#   gap  = 2                                 optional: the issue/area it guards
#   file = src/core/generate.c               path from the repository root
#   from = buf[v].v = logits[v] / o->temperature     exact text, once in file
#   to   = buf[v].v = logits[v]                      its replacement
#   run  = spec tests/spec/generate_spec.lua         one or more; cheapest first
#
# Values are trimmed and taken literally (no escapes); `from+ = text` and
# `to+ = text` continue the value on a new line (a newline, then text), for
# multi-line edits: there only the one space after `=` is dropped, so the
# indentation written after it is kept. A `run` line is a shell command run in the copy with two
# helpers defined:
#   c NAME            build and run tests/c/NAME.c (ASan+UBSan, as make test)
#   spec PATH [ARGS]  build the module and run busted on PATH (ARGS e.g. --filter=...,
#                     a Lua pattern: write `should.retry`, not `should-retry`); a
#                     filter that selects no test is an error, not a pass
# A leading VAR=value applies to that command, e.g. `RLAIF_KERNELS=scalar c test_model`.
#
# Adding mutations for a new feature (RL losses, evaluation metrics, ...): for
# each formula or branch, plant the bug a slip of the keyboard would make (a sign
# flip, a dropped term or bias correction, swapped operands or order, an off-by-one,
# a wrong constant, an inverted condition), name the spec or C test that must
# catch it, and run `bash scripts/mutate.sh your-names`. A survivor means a test
# is missing or too weak: strengthen the test rather than deleting the mutation.
# A mutation that cannot change behaviour (an equivalent mutant) does not belong
# in the list.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIST=${MUTATIONS:-$ROOT/scripts/mutations.txt}
TIMEOUT=${MUTATE_TIMEOUT:-300}

# ---- parse the list into parallel arrays ----
names=() files=() froms=() tos=() runs=() gaps=()
parse() {
    local line key val raw cur=-1
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
            '#'*|'') continue ;;
            '['*']')
                cur=${#names[@]}
                names+=("${line:1:${#line}-2}"); files+=(""); froms+=(""); tos+=(""); runs+=(""); gaps+=("")
                continue ;;
        esac
        if [ "$cur" -lt 0 ] || [[ "$line" != *=* ]]; then
            echo "mutate: $LIST: cannot read line: $line" >&2; exit 2
        fi
        key=${line%%=*}; key=${key//[[:space:]]/}
        val=${line#*=}; val=${val#"${val%%[![:space:]]*}"}; val=${val%"${val##*[![:space:]]}"}
        case "$key" in
            file) files[cur]=$val ;;
            from) froms[cur]=$val ;;
            to)   tos[cur]=$val ;;
            from+) raw=${line#*=}; froms[cur]+=$'\n'"${raw# }" ;;
            to+)   raw=${line#*=}; tos[cur]+=$'\n'"${raw# }" ;;
            gap)  gaps[cur]=$val ;;
            run)  runs[cur]+="$val"$'\n' ;;
            *) echo "mutate: $LIST: unknown key '$key' in [${names[cur]}]" >&2; exit 2 ;;
        esac
    done < "$LIST"
}
parse

if [ "${1:-}" = "-l" ]; then
    for i in "${!names[@]}"; do printf '%-40s %s\n' "${names[i]}" "${files[i]}"; done
    exit 0
fi

# the selection: names given as arguments (spaces or commas), else all
declare -A want=()
for a in "$@"; do for n in ${a//,/ }; do want[$n]=1; done; done
sel=()
declare -A found=()
for i in "${!names[@]}"; do
    if [ ${#want[@]} -eq 0 ] || [ -n "${want[${names[i]}]:-}" ]; then sel+=("$i"); found[${names[i]}]=1; fi
done
for n in "${!want[@]}"; do
    [ -n "${found[$n]:-}" ] || { echo "mutate: no mutation named '$n' in $LIST" >&2; exit 2; }
done
for i in "${sel[@]}"; do
    if [ -z "${files[i]}" ] || [ -z "${froms[i]}" ] || [ -z "${runs[i]}" ]; then
        echo "mutate: [${names[i]}] needs file, from and at least one run" >&2; exit 2
    fi
done

# ---- the copy ----
WORK=$(mktemp -d /tmp/rlaif-mutate.XXXXXX)
cleanup() { [ -n "${MUTATE_KEEP:-}" ] && echo "mutate: copy kept in $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
(cd "$ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | (cd "$WORK" && tar -xf -)
[ -d "$ROOT/build" ] && cp -a "$ROOT/build" "$WORK/build"
cd "$WORK" || exit 2
[ -e rlaif ] || ln -sf build/bin/rlaif rlaif
LOG=$WORK/.mutate.log

c() {
    make -s -j2 "build/tests/$1" >>"$LOG" 2>&1 || return 3
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 "build/tests/$1" >>"$LOG" 2>&1
}
spec() {
    make -s -j2 build/rlaif/core.so build/bin/rlaif >>"$LOG" 2>&1 || return 3
    local out rc
    out=$(lua5.4 /usr/bin/busted -o utfTerminal "$@" 2>&1); rc=$?
    printf '%s\n' "$out" >>"$LOG"
    # a --filter that matches nothing must not pass for a kill-proof test
    if printf '%s\n' "$out" | grep -q '^0 successes / 0 failures / 0 errors'; then
        echo "mutate: no test ran for: spec $*" | tee -a "$LOG" >&2
        return 4
    fi
    return $rc
}
export -f c spec
export LOG

# Replace the one occurrence of $2 by $3 in file $1;
# prints how many occurrences there were and changes nothing unless exactly one.
substitute() {
    lua5.4 - "$1" "$2" "$3" <<'EOF'
local path, from, to = arg[1], arg[2], arg[3]
local f = assert(io.open(path, "rb")); local src = f:read("a"); f:close()
local n, at = 0, 1
while true do
  local s, e = src:find(from, at, true)
  if not s then break end
  n, at = n + 1, e + 1
end
if n == 1 then
  local s, e = src:find(from, 1, true)
  f = assert(io.open(path, "wb")); f:write(src:sub(1, s - 1), to, src:sub(e + 1)); f:close()
end
print(n)
EOF
}

# Run the run-lines of mutation $1; prints the killing command, returns 0 when killed,
# 1 when every command passed, 3 when the mutant does not build.
run_tests() {
    local cmd rc
    while IFS= read -r cmd; do
        [ -z "$cmd" ] && continue
        echo "---- $cmd" >>"$LOG"
        timeout "$TIMEOUT" bash -c "$cmd" >>"$LOG" 2>&1
        rc=$?
        if [ $rc -eq 3 ] || [ $rc -eq 4 ]; then echo "$cmd"; return $rc; fi
        if [ $rc -ne 0 ]; then
            [ $rc -eq 124 ] && echo "$cmd (timed out)" || echo "$cmd"
            return 0
        fi
    done <<< "$1"
    return 1
}

t0=$(date +%s)
echo "mutate: ${#sel[@]} mutations from ${LIST#"$ROOT"/}, copy in $WORK"

# ---- baseline: every named test passes on the unmutated copy ----
declare -A seen=()
base=""
for i in "${sel[@]}"; do
    while IFS= read -r cmd; do
        [ -n "$cmd" ] && [ -z "${seen[$cmd]:-}" ] && { seen[$cmd]=1; base+="$cmd"$'\n'; }
    done <<< "${runs[i]}"
done
make -s -j2 build/rlaif/core.so build/bin/rlaif >"$LOG" 2>&1 || { echo "mutate: the copy does not build (see $LOG)"; MUTATE_KEEP=1; exit 1; }
while IFS= read -r cmd; do
    [ -z "$cmd" ] && continue
    if ! timeout "$TIMEOUT" bash -c "$cmd" >>"$LOG" 2>&1; then
        echo "mutate: baseline fails without any mutation: $cmd (log: $LOG)"
        MUTATE_KEEP=1
        exit 1
    fi
done <<< "$base"
echo "mutate: baseline passes ($(( $(date +%s) - t0 )) s)"

# ---- one mutation at a time ----
killed=0 survived=() broken=()
for i in "${sel[@]}"; do
    name=${names[i]} file=${files[i]}
    ts=$(date +%s)
    if [ ! -f "$file" ]; then broken+=("$name (no file $file)"); printf 'STALE     %s: no file %s\n' "$name" "$file"; continue; fi
    cp -p "$file" "$WORK/.orig"
    n=$(substitute "$file" "${froms[i]}" "${tos[i]}")
    if [ "$n" != 1 ]; then
        broken+=("$name ('from' found $n times in $file)")
        printf 'STALE     %-38s from found %s times in %s\n' "$name" "$n" "$file"
        continue
    fi
    echo "==== [$name] $file" >>"$LOG"
    by=$(run_tests "${runs[i]}"); rc=$?
    cp -p "$WORK/.orig" "$file"
    touch "$file"   # newer than the mutant's objects: the next build recompiles it
    dt=$(( $(date +%s) - ts ))
    case $rc in
        0) killed=$((killed + 1)); printf 'killed    %-38s %4ss  by: %s\n' "$name" "$dt" "$by" ;;
        1) survived+=("$name"); printf 'SURVIVED  %-38s %4ss  (%s)\n' "$name" "$dt" "$file" ;;
        3) broken+=("$name (does not build)"); printf 'NOBUILD   %-38s %4ss\n' "$name" "$dt" ;;
        *) broken+=("$name (no test ran: $by)"); printf 'NOTEST    %-38s %4ss  %s\n' "$name" "$dt" "$by" ;;
    esac
done

echo "mutate: ${#sel[@]} mutations, $killed killed, ${#survived[@]} survived, ${#broken[@]} stale or broken" \
     "($(( $(date +%s) - t0 )) s)"
for s in "${survived[@]}"; do echo "  survived: $s"; done
for s in "${broken[@]}"; do echo "  broken:   $s"; done
[ ${#survived[@]} -eq 0 ] && [ ${#broken[@]} -eq 0 ]
