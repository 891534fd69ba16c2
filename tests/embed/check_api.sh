#!/bin/sh
# tests/embed/check_api.sh LIB -- `make check-embed`: the public C API is what
# it says it is.
#   1. LIB (librlaif.so) exports exactly the functions declared in
#      include/rlaif/*.h, and src/embed/rlaif.map lists exactly those;
#   2. each public header compiles on its own, as C99 and as C++;
#   3. every src/core function that opens, creates, truncates or stats a file
#      calls rlaif_path_gate (the sandbox's file policy, src/core/scope.c) first.
set -eu
lib=${1:?usage: check_api.sh path/to/librlaif.so}
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# the function names declared in the public headers (comments stripped first)
for h in include/rlaif/*.h; do ${CC:-cc} -fpreprocessed -dD -E -P "$h"; done | tr '\n' ' ' |
    grep -oE '\brlaif_[a-z0-9_]+ *\(' | grep -oE 'rlaif_[a-z0-9_]+' | sort -u > "$tmp/declared"
nm -D --defined-only "$lib" | awk '{ print $3 }' | sed 's/@.*//' | sort -u > "$tmp/exported"
grep -oE '^ +rlaif_[a-z0-9_]+;' src/embed/rlaif.map | tr -d ' ;' | sort -u > "$tmp/mapped"
if ! diff -u "$tmp/declared" "$tmp/exported" > "$tmp/d1"; then
    echo "check-embed: $lib exports differ from include/rlaif/*.h (- declared only, + exported only):"
    grep '^[-+]rlaif' "$tmp/d1"
    fail=1
fi
if ! diff -u "$tmp/declared" "$tmp/mapped" > "$tmp/d2"; then
    echo "check-embed: src/embed/rlaif.map differs from include/rlaif/*.h (- declared only, + mapped only):"
    grep '^[-+]rlaif' "$tmp/d2"
    fail=1
fi

for h in include/rlaif.h include/rlaif/*.h; do
    printf '#include "%s"\nint main(void) { return 0; }\n' "$PWD/$h" > "$tmp/h.c"
    if ! ${CC:-cc} -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only "$tmp/h.c" 2> "$tmp/err"; then
        echo "check-embed: $h does not compile on its own as C99:"; cat "$tmp/err"; fail=1
    fi
    if ! ${CXX:-c++} -x c++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only "$tmp/h.c" 2> "$tmp/err"; then
        echo "check-embed: $h does not compile as C++:"; cat "$tmp/err"; fail=1
    fi
done

# per function: an opener before any rlaif_path_gate in the same function is flagged
# (functions start at a line "type name(...) {" in column 0 and end at "}")
gaps=$(awk '
    /^[A-Za-z].*\) *\{$/ { fn = $0; gated = 0 }
    /rlaif_path_gate/ { gated = 1 }
    /(^|[^A-Za-z_])(fopen|open|gzopen|sqlite3_open_v2|mkdir|truncate|opendir|stat|lstat|realpath) *\(|CURLOPT_CAINFO/ {
        if (!gated && FILENAME != "src/core/scope.c" && !/gated: /) print FILENAME ":" FNR ": " $0
    }' src/core/*.c)
if [ -n "$gaps" ]; then
    echo "check-embed: file access in src/core before the sandbox's file policy (rlaif_path_gate):"
    echo "$gaps"
    fail=1
fi

[ $fail -eq 0 ] && echo "check-embed: $(wc -l < "$tmp/declared") public functions, all exported and nothing else;" \
    "headers stand alone (C99, C++); every file opener in src/core is gated"
exit $fail
