#!/bin/sh
# scripts/bench/setup.sh -- install the references `make bench` compares against,
# only what is missing: Debian's python3-torch (the model reference) and wrk (the
# LLM fake server's ceiling), and the npm tokenizer references in build/npm.
# Benchmarks that still lack a reference print a "skipped" line instead.
set -u
cd "$(dirname "$0")/../.." || exit 1

missing=""
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || missing="$missing python3-torch"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "bench setup: installing$missing" >&2
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $missing \
        >/dev/null 2>&1 || echo "bench setup: could not install$missing" >&2
fi

if [ ! -f build/npm/node_modules/tiktoken/package.json ] && command -v npm >/dev/null 2>&1; then
    echo "bench setup: installing the npm tokenizer references into build/npm" >&2
    mkdir -p build/npm && cp scripts/package.json build/npm/package.json &&
        (cd build/npm && npm install --no-audit --no-fund --silent >/dev/null 2>&1) ||
        echo "bench setup: npm install failed; the tokenizer references will be skipped" >&2
fi
exit 0
