# Shared helpers for the rig scripts (sourced, not executed).
# shellcheck shell=bash

rig_log() { printf 'rig: %s\n' "$*" >&2; }
rig_die() { printf 'rig: error: %s\n' "$*" >&2; exit 1; }

# rig_need_pkgs PKG...: install the Debian packages that are missing, quietly.
# Checking with dpkg-query first keeps repeated runs fast and offline; the
# `apt-get update` only happens when something really has to be installed
# (a fresh machine may have no package lists yet).
rig_need_pkgs() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || rig_die "missing packages (${missing[*]}); run as root or install them"
    rig_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
