#!/bin/sh
# scripts/fuzz.sh -- run the libFuzzer harnesses (make fuzz) or replay their
# corpora through the gcc ASan builds (make test).
#
#   sh scripts/fuzz.sh run BUILD SECONDS NAME...   fuzz each harness SECONDS s
#   sh scripts/fuzz.sh replay BUILD NAME...        replay seeds + crash fixtures
#   sh scripts/fuzz.sh lua BUILD ARGS...           tests/fuzz/lua_bindings.lua under the
#                                                  ASan module, in a scratch folder
#
# Corpus folders per harness: the working corpus build/fuzz/corpus/NAME (new
# inputs land there; not committed), tests/fuzz/seeds/NAME (small seeds we
# wrote), tests/fuzz/regress/NAME (crashes the fuzzers found, committed, each
# replayed by `make test`), the test fixtures that fit, and ../shared/data
# samples when that folder is present (read only). A crash stops `run` with its
# input saved as build/fuzz/artifacts/NAME/crash-*; move it into
# tests/fuzz/regress/NAME with the fix. `run` ends with one summary line per
# harness: executions (libFuzzer's final stats), corpus size, result.
set -u
mode=$1 build=$2
shift 2
if [ "$mode" = lua ]; then
    root=$(pwd) scratch=$(mktemp -d /tmp/rlaif-luafuzz-XXXXXX)
    cc=${CC:-cc}
    rt="$($cc -print-file-name=libasan.so) $($cc -print-file-name=libubsan.so)"
    (cd "$scratch" && RLAIF_NUM_THREADS=1 OMP_NUM_THREADS=1 LD_PRELOAD="$rt" \
        ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=256 \
        ${LUA:-lua5.4} "$root/tests/fuzz/lua_bindings.lua" --root "$root" "$@" 2>"$scratch/stderr")
    rc=$?
    grep -v 'AddressSanitizer failed to allocate' "$scratch/stderr" >&2   # refused huge sizes: expected
    rm -rf "$scratch"
    exit $rc
fi
secs=0
if [ "$mode" = run ]; then secs=$1; shift; fi

extra_dirs() {   # fixtures and shared samples that make good seeds for $1
    case $1 in
        safetensors) echo tests/fixtures/model/gpt2 tests/fixtures/model/llama_gqa tests/fixtures/dtypes.safetensors ;;
        tokenizer_json) echo tests/fixtures/tokenizer/trained.json ;;
        gguf) echo tests/fixtures/gguf/ref.gguf ;;
        llm_*) [ -d ../shared/data/api-samples ] && [ "$mode" = run ] && echo ../shared/data/api-samples ;;
        gz) [ "$mode" = run ] && echo tests/fixtures/tokenizer/corpus.jsonl ;;
    esac
}

alloc_mb() {   # allocations above this fail (RLAIF_ENOMEM paths are fuzzed too); a
    # model that passes its checks is initialised element by element, so keep it small
    case $1 in model|gguf) echo 64 ;; *) echo 256 ;; esac   # BLIS itself takes ~16 MB
}

export RLAIF_NUM_THREADS=1 OMP_NUM_THREADS=1
status=0
summary=""
for name in "$@"; do
    seeds=tests/fuzz/seeds/$name regress=tests/fuzz/regress/$name
    if [ "$mode" = replay ]; then
        ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:max_allocation_size_mb=$(alloc_mb "$name") \
            "$build/fuzz/replay/replay" "$name" "$seeds" "$regress" $(extra_dirs "$name") || status=1
        continue
    fi
    corpus=$build/fuzz/corpus/$name art=$build/fuzz/artifacts/$name extra=$build/fuzz/extra/$name
    mkdir -p "$corpus" "$art"
    dirs=""
    for p in $(extra_dirs "$name"); do   # libFuzzer takes folders: single files go into one
        if [ -d "$p" ]; then dirs="$dirs $p"; else mkdir -p "$extra" && cp "$p" "$extra/" && dirs="$dirs $extra"; fi
    done
    log=$build/fuzz/$name.log tmp=$(pwd)/$build/fuzz/tmp
    mkdir -p "$tmp"
    # inputs up to 64 KB; allocations over 256 MB fail (and are tested as such)
    TMPDIR=$tmp ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=$(alloc_mb "$name"):detect_leaks=1 \
        "$build/fuzz/bin/fuzz_$name" -max_total_time="$secs" -print_final_stats=1 -max_len=65536 \
        -timeout=30 -rss_limit_mb=2048 -artifact_prefix="$art/" "$corpus" \
        $( [ -d "$seeds" ] && echo "$seeds" ) $( [ -d "$regress" ] && echo "$regress" ) $(echo $dirs | tr ' ' '\n' | sort -u) \
        >"$log" 2>&1
    rc=$?
    rm -rf "$tmp"   # the harness's files, also when it crashed
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    size=$(ls "$corpus" | wc -l)
    if [ $rc -eq 0 ]; then result=clean; else result="FAILED (exit $rc, see $log and $art)"; status=1; fi
    line=$(printf '%-28s %10s execs  %6s corpus  %s' "fuzz_$name" "${execs:-?}" "$size" "$result")
    echo "$line"
    summary="$summary$line
"
done
if [ "$mode" = run ]; then printf '\n== fuzz summary (%s s each)\n%s' "$secs" "$summary"; fi
exit $status
