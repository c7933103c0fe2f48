#!/usr/bin/env bash
# Build a rig initramfs (gzip'd newc cpio): busybox-static, an /init (by
# default tests/rig/init, which runs the cases in /rig/cases), the cases, and
# any extra files.
#
# Usage: mkinitramfs.sh -o OUT.cpio.gz [options]
#   --case FILE[:NAME]   add FILE as case /rig/cases/NAME (NAME defaults to its
#                        basename); cases run in name order           (repeatable)
#   --cases DIR          add every file in DIR as a case              (repeatable)
#   --add SRC:DEST       copy file or directory SRC to DEST in the image (repeatable)
#   --add-bin FILE:DEST  copy executable FILE to DEST and the shared libraries
#                        and loader it needs (from ldd) to their own paths
#                                                                     (repeatable)
#   --init FILE          use FILE as /init instead of tests/rig/init (e.g. for
#                        an L2 guest initramfs)
#   --timeout SECS       per-case timeout for the default /init (default 300)
#   --args-file FILE     read more of these options from FILE, one per line
#                        (FILE may be empty)
# Paths given to --add/--add-bin are copied dereferenced (symlinks followed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

out=
init=$here/init
timeout=300
cases=()
adds=()
bins=()
extra=()
while [ $# -gt 0 ]; do
    case $1 in
        -o|--output) out=$2; shift 2 ;;
        --case) cases+=("$2"); shift 2 ;;
        --cases)
            [ -d "$2" ] || rig_die "--cases: $2 is not a directory"
            for f in "$2"/*; do [ -f "$f" ] && cases+=("$f"); done
            shift 2 ;;
        --add) adds+=("$2"); shift 2 ;;
        --add-bin) bins+=("$2"); shift 2 ;;
        --init) init=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --args-file)
            [ -f "$2" ] || rig_die "--args-file: no file $2"
            mapfile -t more <"$2"
            shift 2
            # Each line is one option and its value ("--case F:N"); split at the first blank.
            for line in "${more[@]+"${more[@]}"}"; do
                [ -n "$line" ] || continue
                extra+=("${line%% *}")
                if [ "${line#* }" != "$line" ]; then extra+=("${line#* }"); fi
            done
            set -- "${extra[@]+"${extra[@]}"}" "$@"
            extra=() ;;
        -h|--help) usage ;;
        *) echo "mkinitramfs.sh: unknown argument: $1" >&2; usage ;;
    esac
done
[ -n "$out" ] || usage
case $timeout in ''|*[!0-9]*) rig_die "--timeout wants whole seconds, got '$timeout'" ;; esac

rig_need_pkgs busybox-static cpio

# split SPEC: "SRC:DEST" -> $src $dest. DEST must be absolute; SRC may not
# contain ':' (the last ':' separates, so SRC paths with ':' are not supported).
split() {
    src=${1%:*}
    dest=${1##*:}
    if [ "$src" = "$1" ] || [ -z "$src" ]; then rig_die "expected SRC:DEST, got '$1'"; fi
    case $dest in /*) ;; *) rig_die "DEST must be absolute in '$1'" ;; esac
    [ -e "$src" ] || rig_die "no such file: $src"
}

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

# put SRC DEST: copy into the image, creating parent dirs. Directories are
# copied recursively; symlinks are followed (the image must be self-contained).
put() {
    mkdir -p "$root$(dirname "$2")"
    if [ -d "$1" ]; then
        mkdir -p "$root$2"
        cp -rL "$1/." "$root$2/"
    else
        cp -L "$1" "$root$2"
    fi
}

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,rig/cases}
put /bin/busybox /bin/busybox
put "$init" /init
chmod 755 "$root/init"
printf 'CASE_TIMEOUT=%s\n' "$timeout" >"$root/rig/config"

for spec in "${cases[@]+"${cases[@]}"}"; do
    # FILE:NAME names the case; NAME is a plain file name, not a path.
    if [ "${spec#*:}" != "$spec" ]; then src=${spec%:*}; name=${spec##*:}; else src=$spec; name=$(basename "$spec"); fi
    [ -f "$src" ] || rig_die "case $src is not a file"
    put "$src" "/rig/cases/${name#/}"
done

for spec in "${adds[@]+"${adds[@]}"}"; do
    split "$spec"
    put "$src" "$dest"
done

for spec in "${bins[@]+"${bins[@]}"}"; do
    split "$spec"
    put "$src" "$dest"
    chmod 755 "$root$dest"
    # ldd lists "name => /path (addr)" for libraries and "/path (addr)" for the
    # loader; a static binary makes it fail ("not a dynamic executable").
    if libs=$(ldd "$src" 2>/dev/null); then
        while read -r lib; do
            put "$lib" "$lib"
        done < <(printf '%s\n' "$libs" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
    fi
done

mkdir -p "$(dirname "$out")"
# Sorted entries, owner root, no timestamps in gzip: same inputs, same image.
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) \
    | gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
