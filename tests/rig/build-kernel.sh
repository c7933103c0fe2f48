#!/usr/bin/env bash
# Build (or reuse) the rig kernel: Debian's linux-source-7.3 from
# trixie-backports, `tinyconfig` + tests/rig/kernel.config, built-in only.
#
# Output, in ${FLINT_RIG_CACHE:-$HOME/.cache/flint-rig}/<key>/ where <key>
# hashes the source package version, the config fragment and this script:
#   bzImage        the kernel (L1 host under QEMU, and L2 guest under flint)
#   vmlinux        the same kernel as ELF (PVH entry note), for VMMs that want it
#   usr/include    `make headers_install` (7.3 uapi headers for rig programs)
#   config         the final .config;  build.log  the build output
# The last line of stdout is the bzImage path. A second run with the same
# inputs only prints that path.
#
# Env: FLINT_RIG_CACHE (cache root), RIG_KERNEL_JOBS (make -j, default 3:
# the machine has 2 cores shared with other builds).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

pkg=linux-source-7.3
fragment=$here/kernel.config
cache_root=${FLINT_RIG_CACHE:-$HOME/.cache/flint-rig}
jobs=${RIG_KERNEL_JOBS:-3}

apt_src=/etc/apt/sources.list.d/flint-rig-trixie-backports.sources
apt_pin=/etc/apt/preferences.d/flint-rig-trixie-backports
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# write_if_changed FILE: replace FILE by stdin only when the content differs,
# so repeated runs touch nothing.
write_if_changed() {
    local f=$1 new
    new=$(cat)
    if [ ! -f "$f" ] || [ "$(cat "$f")" != "$new" ]; then
        [ "$(id -u)" -eq 0 ] || rig_die "need root to write $f"
        printf '%s\n' "$new" >"$f"
    fi
}

# Apt options that make apt look at the backports source alone: refreshing
# it must not refresh (or fail on) every other source on the machine.
apt_only_bpo=(-o "Dir::Etc::sourcelist=$apt_src" -o "Dir::Etc::sourceparts=-"
              -o "APT::Get::List-Cleanup=0")

# Make trixie-backports known to apt for linux-source-7.3 only.
setup_apt_source() {
    # bookworm's debian-archive-keyring gained the trixie keys in a point
    # release (2023.3+deb12u2); an older one cannot verify trixie-backports.
    # (The package ships each release's keys also as a file of its own.)
    if [ ! -f /usr/share/keyrings/debian-archive-trixie-automatic.gpg ]; then
        rig_log "updating debian-archive-keyring for the trixie keys"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debian-archive-keyring >/dev/null
    fi
    write_if_changed "$apt_src" <<EOF
# Added by flint tests/rig/build-kernel.sh: only for linux-source-7.3 (see
# $apt_pin, which keeps every other package of this suite out).
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie-backports
Components: main
Signed-By: $keyring
EOF
    # Priority -1 for the whole suite means "never install from here"; the
    # source package we download gets a normal backports priority.
    write_if_changed "$apt_pin" <<'EOF'
Package: *
Pin: release n=trixie-backports
Pin-Priority: -1

Package: linux-source-7.3
Pin: release n=trixie-backports
Pin-Priority: 100
EOF
}

candidate_version() {
    apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}'
}

refresh_bpo_list() {
    rig_log "refreshing the trixie-backports package list"
    apt-get update -qq "${apt_only_bpo[@]}" >/dev/null
}

setup_apt_source
version=$(candidate_version)
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    refresh_bpo_list
    version=$(candidate_version)
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
        rig_die "apt knows no $pkg in trixie-backports"
    fi
fi

# The cache key: what decides the kernel we get. The script is included so a
# change in how we build also invalidates old kernels.
cache_key() {
    { printf '%s %s\n' "$pkg" "$1"; cat "$fragment" "${BASH_SOURCE[0]}"; } \
        | sha256sum | cut -c1-16
}
key=$(cache_key "$version")
out=$cache_root/$key

if [ -f "$out/bzImage" ]; then
    echo "$out/bzImage"
    exit 0
fi

mkdir -p "$cache_root"
# One build at a time per cache: a second concurrent caller waits, then finds
# the finished kernel. Holding the lock also makes any tmp.* left behind by a
# killed build safe to delete.
exec 9>"$cache_root/.lock"
if ! flock -n 9; then
    rig_log "another kernel build holds $cache_root/.lock; waiting"
    flock 9
fi
if [ -f "$out/bzImage" ]; then
    echo "$out/bzImage"
    exit 0
fi
rm -rf "$cache_root"/tmp.*

rig_need_pkgs build-essential flex bison bc libelf-dev rsync cpio xz-utils

# Everything is built under a temp dir in the cache root (same filesystem),
# and only a complete result is renamed into place: an interrupted build never
# leaves a half cache entry.
tmp=$(mktemp -d "$cache_root/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Turn INT/TERM into a normal exit so the EXIT trap cleans up (anything a
# harder kill leaves behind is removed by the next build, under the lock).
trap 'exit 130' INT
trap 'exit 143' TERM

rig_log "fetching $pkg $version"
fetch() {
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root \
        "${apt_only_bpo[@]}" "$pkg=$version" >/dev/null 2>&1)
}
if ! fetch; then
    # Backports keeps only the newest version: our list may name one the
    # mirror no longer has. Refresh, and rekey on the version we really get.
    refresh_bpo_list
    version=$(candidate_version)
    key=$(cache_key "$version")
    out=$cache_root/$key
    if [ -f "$out/bzImage" ]; then
        echo "$out/bzImage"
        exit 0
    fi
    fetch || rig_die "apt-get download $pkg=$version failed"
fi

rig_log "unpacking the kernel source"
# The .deb carries /usr/src/linux-source-7.3.tar.xz; pull out just that and
# unpack it, without installing the package.
dpkg-deb --fsys-tarfile "$tmp"/${pkg}_*.deb \
    | tar -xO "./usr/src/$pkg.tar.xz" \
    | xz -dc -T0 | tar -x -C "$tmp"
rm -f "$tmp"/${pkg}_*.deb
src=$tmp/$pkg
obj=$tmp/obj
res=$tmp/result
mkdir -p "$obj" "$res"
[ -f "$src/Makefile" ] || rig_die "no kernel tree in $pkg"

# ARCH=x86_64 (not x86): tinyconfig would otherwise produce a 32-bit kernel.
# Fixed build user/host keep `uname -v` free of this machine's name.
kmake() {
    make -C "$src" O="$obj" ARCH=x86_64 KBUILD_BUILD_USER=flint KBUILD_BUILD_HOST=rig "$@"
}
log=$res/build.log

rig_log "configuring (tinyconfig + $(basename "$fragment"))"
kmake tinyconfig >>"$log" 2>&1
cat "$fragment" >>"$obj/.config"
kmake olddefconfig >>"$log" 2>&1

# olddefconfig silently drops an option whose dependencies are unmet (or that
# no longer exists): check every line of the fragment made it.
missing=()
while IFS= read -r line; do
    case $line in
        CONFIG_*=*|"# CONFIG_"*" is not set")
            grep -qxF "$line" "$obj/.config" || missing+=("$line") ;;
    esac
done <"$fragment"
if [ ${#missing[@]} -gt 0 ]; then
    echo "rig: error: these lines of $fragment did not survive olddefconfig" \
         "(unmet dependency, or no such option in $pkg $version):" >&2
    printf '  %s\n' "${missing[@]}" >&2
    exit 1
fi
cp "$obj/.config" "$res/config"

rig_log "building bzImage with -j$jobs (about 13 minutes on 2 cores; log: $log)"
start=$SECONDS
if ! kmake -j"$jobs" bzImage >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rig_die "kernel build failed"
fi
kmake headers_install INSTALL_HDR_PATH="$res/usr" >>"$log" 2>&1
cp "$obj/arch/x86/boot/bzImage" "$res/bzImage"
cp "$obj/vmlinux" "$res/vmlinux"
printf '%s %s\n' "$pkg" "$version" >"$res/version"
rig_log "kernel built in $((SECONDS - start)) s"

mv -T "$res" "$out"
echo "$out/bzImage"
