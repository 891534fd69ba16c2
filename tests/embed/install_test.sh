#!/bin/sh
# tests/embed/install_test.sh -- the installed toolkit as its users meet it
# (`make test-embed` runs it; offline, loopback only):
#   1. `make install PREFIX=tmp` lays out headers, both libraries, pkg-config,
#      the Lua module and files, prompts and the executable -- and no internal
#      header; librlaif.so has its soname, exports only rlaif_* and links the
#      shared liblua5.4; core.so links no liblua;
#   2. the examples build with `cc ... $(pkg-config --cflags --libs rlaif)`
#      (label_tool also against librlaif.a) and work: the game against the
#      fake LLM server (the budget cuts tick 4, the labeler picks the lines the
#      server prefers), label_tool's AI labels equal the server's hidden rule
#      and its reward-model preferences equal the Lua API's;
#   3. the same two programs under ASan+UBSan with the instrumented library
#      (the game offline, on the local backend);
#   4. `luarocks make` into a fresh tree; `lua5.4 -e 'require "rlaif"'` from it;
#   5. `make uninstall` leaves only the directories that were there before.
set -eu
cd "$(dirname "$0")/../.."
MAKE=${MAKE:-make}
BUILD=${BUILD:-build}
CC=${CC:-cc}
tmp=$(mktemp -d /tmp/rlaif-install-XXXXXX)
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
    echo "install_test: $*" >&2
    exit 1
}
t0=$(date +%s)
lap() { [ -n "${RLAIF_TEST_TIMES:-}" ] && echo "install_test: $1 at $(($(date +%s) - t0)) s" >&2 || true; }

# ---- 1. install ----
prefix=$tmp/prefix
mkdir -p "$prefix/bin" "$prefix/share/doc"   # there before: uninstall must keep them
$MAKE -s install PREFIX="$prefix" BUILD="$BUILD" > "$tmp/install.log" || { cat "$tmp/install.log"; fail "make install"; }
for f in bin/rlaif lib/librlaif.a lib/librlaif.so lib/librlaif.so.0 lib/pkgconfig/rlaif.pc include/rlaif.h \
    include/rlaif/state.h lib/lua/5.4/rlaif/core.so share/lua/5.4/rlaif/init.lua share/lua/5.4/rlaif/cli/label.lua \
    share/rlaif/prompts/helpful-base.txt share/rlaif/prompts/exemplars/helpful.txt; do
    [ -e "$prefix/$f" ] || fail "make install did not install $f"
done
headers=$(cd "$prefix/include" && find . -type f | sort | tr '\n' ' ')
[ "$headers" = "./rlaif.h ./rlaif/common.h ./rlaif/llm.h ./rlaif/model.h ./rlaif/state.h ./rlaif/tensor.h ./rlaif/tokenizer.h " ] ||
    fail "installed headers are not exactly the public ones: $headers"
so=$prefix/lib/librlaif.so
readelf -d "$so" | grep -q 'SONAME.*\[librlaif\.so\.0\]' || fail "librlaif.so has no soname librlaif.so.0"
readelf -d "$so" | grep -q 'NEEDED.*\[liblua5\.4\.so\.0\]' || fail "librlaif.so does not link the shared liblua5.4"
other=$(nm -D --defined-only "$so" | awk '{ print $3 }' | grep -v '^rlaif_' || true)
[ -z "$other" ] || fail "librlaif.so exports more than the API: $other"
n_api=$(nm -D --defined-only "$so" | wc -l)
if readelf -d "$prefix/lib/lua/5.4/rlaif/core.so" | grep -q 'NEEDED.*liblua'; then fail "core.so links liblua"; fi

lap "before 2"
# ---- 2. the examples against the prefix ----
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cflags=$(pkg-config --cflags rlaif)
libs=$(pkg-config --libs rlaif)
case " $cflags " in *" -I$prefix/include "*) ;; *) fail "pkg-config --cflags rlaif: '$cflags'" ;; esac
case " $libs " in *" -L$prefix/lib -lrlaif "*) ;; *) fail "pkg-config --libs rlaif: '$libs'" ;; esac
[ "$(pkg-config --modversion rlaif)" = "$(sed -n 's/^#define RLAIF_VERSION "\(.*\)"/\1/p' include/rlaif/common.h)" ] ||
    fail "pkg-config --modversion rlaif"
# shellcheck disable=SC2086
$CC -std=c11 -Wall -Wextra -Werror -o "$tmp/game" examples/host/game.c $cflags $libs
# shellcheck disable=SC2086
$CC -std=c11 -Wall -Wextra -Werror -o "$tmp/label_tool" examples/host/label_tool.c $cflags $libs -lm
# the static library: the same program, nothing of librlaif.so needed at run time
# shellcheck disable=SC2046,SC2086
$CC -std=c11 -o "$tmp/label_tool_static" examples/host/label_tool.c $cflags "$prefix/lib/librlaif.a" \
    $(pkg-config --static --libs rlaif | sed 's/ -lrlaif / /') -lm
if readelf -d "$tmp/label_tool_static" | grep -q 'NEEDED.*librlaif'; then fail "label_tool_static needs librlaif.so"; fi

# the fake LLM server (loopback): prefers the response with the higher "qN" tag
node tests/servers/fake_labeler.mjs --port 0 --port-file "$tmp/port" --ttl 120 > "$tmp/server.log" 2>&1 &
server=$!
for _ in $(seq 1 200); do [ -s "$tmp/port" ] && break; sleep 0.05; done
[ -s "$tmp/port" ] || fail "the fake LLM server did not start: $(cat "$tmp/server.log")"
url="http://127.0.0.1:$(cat "$tmp/port")/v1"

mkdir "$tmp/game_root"
cp examples/host/game.lua "$tmp/game_root/"
cp tests/fixtures/tokenizer/trained.json "$tmp/game_root/tokenizer.json"
LD_LIBRARY_PATH="$prefix/lib" RLAIF_GAME_BASE_URL="$url" RLAIF_GAME_MODEL=m "$tmp/game" "$tmp/game_root" 6 \
    > "$tmp/game.out" 2>&1 || { cat "$tmp/game.out"; fail "game (fake server) failed"; }
grep -q '^tick 4: cut by the instruction budget after .*game.lua:[0-9]*: instruction budget of 4000000 exceeded' \
    "$tmp/game.out" || { cat "$tmp/game.out"; fail "game: tick 4 was not cut by the budget"; }
grep -q '^game: 6 ticks, 5 ok .* 1 cut by the budget .* 0 failed' "$tmp/game.out" || fail "game: summary"
# q2 over q0, q3 over q1, q3 over q0: the lines the server's hidden rule prefers
for line in 'Halt! State your business' 'Put that sword away' 'You look hurt'; do
    [ "$(grep -c "$line" "$tmp/game.out")" -eq 5 ] || { cat "$tmp/game.out"; fail "game: the labeler did not pick '$line'"; }
done

# label_tool: a random reward model saved with the installed rlaif executable
tok=tests/fixtures/tokenizer/trained.json
"$prefix/bin/rlaif" -e "local rlaif = require 'rlaif'
local tok = assert(rlaif.tokenizer.load('$tok'))
local m = rlaif.model.new{arch = 'llama', vocab_size = tok:vocab_size(), n_layer = 1, n_head = 2, d_model = 32,
  d_ff = 64, head = 'reward', seed = 3}
m:param('score.weight'):copy_(rlaif.tensor.randn({1, 32}, 5))
assert(m:save('$tmp/rm'))"
printf '%s\t%s\t%s\n' 'The player is hurt.' 'Sit down, let me see the wound. q3' 'Go away. q0' \
    'A stranger asks the way.' 'The inn is north of the square. q2' 'No idea. q1' > "$tmp/pairs.tsv"
for tool in label_tool label_tool_static; do
    LD_LIBRARY_PATH="$prefix/lib" "$tmp/$tool" --tokenizer "$tok" --reward-model "$tmp/rm" --base-url "$url" \
        --model m "$tmp/pairs.tsv" > "$tmp/$tool.out" 2> "$tmp/$tool.err" || { cat "$tmp/$tool.err"; fail "$tool"; }
done
cmp -s "$tmp/label_tool.out" "$tmp/label_tool_static.out" || fail "label_tool: shared and static builds differ"
# the references: the server's rule sigmoid(0.5 (q1 - q2)), and rm:reward through the Lua API
"$prefix/bin/rlaif" -e "local rlaif = require 'rlaif'
local json = rlaif.core.json
local tok = assert(rlaif.tokenizer.load('$tok'))
local rm = rlaif.model.load('$tmp/rm', {head = 'reward'})
local pairs_ = {{'The player is hurt.', 'Sit down, let me see the wound. q3', 'Go away. q0', 3},
                {'A stranger asks the way.', 'The inn is north of the square. q2', 'No idea. q1', 1}}
local n = 0
for line in io.lines('$tmp/label_tool.out') do
  n = n + 1
  local got, p = json.decode(line), pairs_[n]
  local a, b = tok:encode(p[1] .. '\n' .. p[2]), tok:encode(p[1] .. '\n' .. p[3])
  local r = rm:reward({a}):item() - rm:reward({b}):item()
  local p_rm, p_ai = 1 / (1 + math.exp(-r)), 1 / (1 + math.exp(-0.5 * p[4]))
  assert(got.tokens[1] == #a and got.tokens[2] == #b, 'token counts')
  assert(math.abs(got.p_rm - p_rm) < 2e-5, ('p_rm %.6f, the Lua API says %.6f'):format(got.p_rm, p_rm))
  assert(math.abs(got.p_ai - p_ai) < 2e-6, ('p_ai %.6f, the server rule says %.6f'):format(got.p_ai, p_ai))
end
assert(n == 2, 'two pairs')" || { cat "$tmp/label_tool.out"; fail "label_tool's numbers"; }

lap "before 3"
# ---- 3. under ASan+UBSan, with the instrumented library (same soname) ----
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g"
# shellcheck disable=SC2086
$CC -std=c11 $san -o "$tmp/game_asan" examples/host/game.c $cflags $libs
# shellcheck disable=SC2086
$CC -std=c11 $san -o "$tmp/label_tool_asan" examples/host/label_tool.c $cflags $libs -lm
asan_lib=$(cd "$BUILD/asan" && pwd)
ASAN_OPTIONS=detect_leaks=1 LD_LIBRARY_PATH="$asan_lib" "$tmp/game_asan" "$tmp/game_root" 5 > "$tmp/game_asan.out" 2>&1 ||
    { cat "$tmp/game_asan.out"; fail "game under ASan (local backend)"; }
grep -q '^game: 5 ticks, 4 ok .* 1 cut by the budget .* 0 failed' "$tmp/game_asan.out" ||
    { cat "$tmp/game_asan.out"; fail "game under ASan: summary"; }
ASAN_OPTIONS=detect_leaks=1 LD_LIBRARY_PATH="$asan_lib" "$tmp/label_tool_asan" --tokenizer "$tok" \
    --reward-model "$tmp/rm" --base-url "$url" --model m "$tmp/pairs.tsv" > "$tmp/label_tool_asan.out" \
    2> "$tmp/label_tool_asan.err" || { cat "$tmp/label_tool_asan.err"; fail "label_tool under ASan"; }
cmp -s "$tmp/label_tool.out" "$tmp/label_tool_asan.out" || fail "label_tool under ASan gave other numbers"

lap "before 4"
# ---- 4. luarocks make into a fresh tree ----
mkdir "$tmp/home"
HOME=$tmp/home luarocks --lua-version 5.4 --tree "$tmp/rocks" make rlaif-scm-1.rockspec \
    CFLAGS="-O2 -g" > "$tmp/rock.log" 2>&1 || { cat "$tmp/rock.log"; fail "luarocks make"; }
(
    eval "$(HOME=$tmp/home luarocks --lua-version 5.4 --tree "$tmp/rocks" path)"
    cd "$tmp"
    lua5.4 -e "local rlaif = require 'rlaif'
assert(package.searchpath('rlaif.core', package.cpath):find('$tmp/rocks', 1, true), 'rlaif.core from the tree')
assert(package.searchpath('rlaif', package.path):find('$tmp/rocks', 1, true), 'rlaif from the tree')
assert(rlaif.tensor.ones{2, 3}:sum():item() == 6)
assert(rlaif.prompts.find('helpful-base'):find('$tmp/rocks', 1, true), 'prompts from the tree')"
) || fail "lua5.4 -e 'require \"rlaif\"' from the luarocks tree"

lap "before 5"
# ---- 5. uninstall ----
$MAKE -s uninstall PREFIX="$prefix" > /dev/null
left=$(cd "$prefix" && find . -mindepth 1 | sort | tr '\n' ' ')
[ "$left" = "./bin ./share ./share/doc " ] || fail "make uninstall left: $left"

echo "install_test: install ($n_api exported functions, all rlaif_*), pkg-config, game + label_tool" \
    "(shared, static, ASan+UBSan), luarocks make, uninstall: ok ($(($(date +%s) - t0)) s)"
