#!/bin/sh
# scripts/install.sh -- `make install` and `make uninstall` with a manifest, so
# that uninstall removes exactly what install put under the prefix: the files,
# the links, and the directories install itself created (never one that was
# there before, such as PREFIX/bin).
#
#   sh scripts/install.sh install DEST ITEM...
#   sh scripts/install.sh uninstall DEST
#
# DEST is $(DESTDIR)$(PREFIX). An ITEM is one of
#   MODE:SOURCE:TARGET   a file, installed with that mode (644, 755)
#   tree:SOURCE:TARGET   every file under the directory SOURCE (mode 644)
#   link:VALUE:TARGET    a symbolic link TARGET -> VALUE
# with TARGET relative to DEST. The manifest, DEST/share/rlaif/install.manifest,
# lists "d DIR" (created), "f FILE" and "l LINK" relative to DEST; a second
# install over the first merges into it. Paths must not contain ':' or newlines.
set -eu

cmd=${1:?usage: install.sh install|uninstall DEST [ITEM...]}
dest=${2:?usage: install.sh install|uninstall DEST [ITEM...]}
shift 2
manifest_rel=share/rlaif/install.manifest
manifest="$dest/$manifest_rel"

case "$cmd" in
install)
    new=$(mktemp)
    trap 'rm -f "$new"' EXIT
    [ -f "$manifest" ] && grep -v "^f $manifest_rel\$" "$manifest" > "$new" || true
    # mkdir -p that records each directory it creates (relative to dest)
    mkdirs() {   # (positional parameters: the only locals POSIX sh has)
        [ -z "$1" ] || [ "$1" = . ] && return 0
        [ -d "$dest/$1" ] && return 0
        mkdirs "$(dirname "$1")"
        mkdir "$dest/$1"
        echo "d $1" >> "$new"
    }
    [ -d "$dest" ] || { mkdir -p "$dest"; }
    put() {   # put MODE SOURCE TARGET
        mkdirs "$(dirname "$3")"
        rm -f "$dest/$3"
        install -m "$1" "$2" "$dest/$3"
        echo "f $3" >> "$new"
    }
    for item in "$@"; do
        kind=${item%%:*}
        rest=${item#*:}
        src=${rest%%:*}
        target=${rest#*:}
        case "$kind" in
        tree)   # directories one by one (to record the new ones), files in one copy
            mkdirs "$target"
            (cd "$src" && find . -mindepth 1 -type d | sort) | while IFS= read -r d; do
                mkdirs "$target/${d#./}"
            done
            cp -R "$src/." "$dest/$target/"
            (cd "$src" && find . -type f) | sed "s|^\./|f $target/|" >> "$new"
            (cd "$dest/$target" && find . -type f -exec chmod 644 {} +)
            ;;
        link)
            mkdirs "$(dirname "$target")"
            rm -f "$dest/$target"
            ln -s "$src" "$dest/$target"
            echo "l $target" >> "$new"
            ;;
        *)
            put "$kind" "$src" "$target"
            ;;
        esac
    done
    mkdirs "$(dirname "$manifest_rel")"
    echo "f $manifest_rel" >> "$new"
    # unique lines, first occurrence kept (directories stay in creation order)
    awk '!seen[$0]++' "$new" > "$new.u" && mv "$new.u" "$new"
    install -m 644 "$new" "$manifest"
    echo "installed into $dest ($(grep -c '^[fl] ' "$manifest") files and links)"
    ;;
uninstall)
    if [ ! -f "$manifest" ]; then
        echo "uninstall: no $manifest: nothing of rlaif's is installed in $dest" >&2
        exit 1
    fi
    list=$(mktemp)
    trap 'rm -f "$list"' EXIT
    cp "$manifest" "$list"
    while IFS= read -r line; do
        case "$line" in
        "f "*|"l "*) rm -f "$dest/${line#? }" ;;
        esac
    done < "$list"
    # created directories, deepest first; only if empty (a user's file stays)
    grep '^d ' "$list" | cut -c3- | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2- |
        while IFS= read -r d; do
            rmdir "$dest/$d" 2>/dev/null || true
        done
    echo "uninstalled from $dest"
    ;;
*)
    echo "install.sh: unknown command '$cmd'" >&2
    exit 2
    ;;
esac
