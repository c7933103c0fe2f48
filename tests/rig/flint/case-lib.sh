# What the rig's flint cases share (sourced, not run: /rig/lib/case-lib.sh in L1, added by
# tests/rig/flint.mk): L2's kernel command line, a config in Firecracker's schema, flint
# run to L2's answer on the exit port, and for the cases that drive a flint in the
# background (its pid in $pid): fail, req, wait_for, field.
# A case sets, before it needs them: log (L2's console file), sock (flint's API socket),
# pid (flint's, once started), errs (the files fail shows first, a glob).
# shellcheck shell=sh

# L2's kernel command line; a case adds pci=off (no PCI bus), flint.check=NAME (the check
# L2's init runs: tests/rig/l2/checks/NAME.sh) and what its check reads.
l2_cmdline='console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd rdinit=/init'

# l2_config NAME 'BOOT ARGS' 'MEMBERS': /tmp/NAME.json, Firecracker's schema: the rig
# kernel and L2's initramfs, $l2_cmdline and BOOT ARGS, 1 vCPU and 128 MiB (said to L2's
# init as flint.want_cpus and flint.want_mem_mib), and MEMBERS (top-level members, e.g.
# '"entropy": {}'; "drives" added when they have none: Firecracker has no default for it).
l2_config() {
    _members=$3
    case $3 in
    *'"drives"'*) ;;
    *) _members="\"drives\": [], $3" ;;
    esac
    cat >"/tmp/$1.json" <<JSON
{
  "boot-source": {
    "kernel_image_path": "/rig/l2/bzImage",
    "initrd_path": "/rig/l2/initramfs.cpio.gz",
    "boot_args": "$l2_cmdline flint.want_cpus=1 flint.want_mem_mib=128 $2"
  },
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
  $_members
}
JSON
}

# l2_run NAME SHOW WHAT [FLINT ARGS...]: flint boots /tmp/NAME.json with the CI exit port
# (0xf4) and --timeout 240, L2's console in /tmp/NAME.log, its own stderr in /tmp/NAME.err
# (shown); then L2's lines matching SHOW (an ERE) with "  l2| " before them. Unless flint
# exits 1 (L2's check wrote 0 to the exit port): "flint exited N, want 1 (WHAT)", the
# console's last 40 lines, exit 1.
l2_run() {
    _name=$1 _show=$2 _what=$3
    shift 3
    _rc=0
    /bin/flint --config-file "/tmp/$_name.json" "$@" --exit-port 0xf4 --timeout 240 \
        --serial-log "/tmp/$_name.log" --no-console 2>"/tmp/$_name.err" || _rc=$?
    cat "/tmp/$_name.err"
    sed 's/^/  l2| /' "/tmp/$_name.log" | grep -E "$_show" || true
    if [ "$_rc" -ne 1 ]; then
        echo "flint exited $_rc, want 1 ($_what)"
        tail -n 40 "/tmp/$_name.log"
        exit 1
    fi
}

# stop_flint: SIGKILL to flint ($pid) and its children (the jail's VM), which would
# otherwise run on to their --timeout and hold the case open that long.
stop_flint() {
    [ -n "${pid:-}" ] || return 0
    for _st in /proc/[0-9]*/status; do
        if grep -q "^PPid:[[:space:]]*$pid\$" "$_st" 2>/dev/null; then
            _c=${_st#/proc/}
            kill -9 "${_c%/status}" 2>/dev/null || true
        fi
    done
    kill -9 "$pid" 2>/dev/null || true
}

# fail MESSAGE: the message, the files in $errs, L2's console's last 30 lines; flint
# stopped; exit 1.
fail() {
    echo "$*"
    # shellcheck disable=SC2086 # $errs: file names and globs
    [ -z "${errs:-}" ] || cat $errs 2>/dev/null || true
    [ -z "${log:-}" ] || tail -n 30 "$log" 2>/dev/null || true
    stop_flint
    exit 1
}

# req METHOD PATH [BODY]: one request to flint's API at $sock (tests/rig/flint/apireq.c).
# shellcheck disable=SC2154 # sock: the case sets it
req() { /rig/bin/apireq "$sock" "$@"; }

# wait_for TEXT TRIES: up to TRIES tries of 0.2 s for TEXT in L2's console ($log); fails
# at once when flint ($pid, if set) is gone without it (its --timeout, a crash).
wait_for() {
    _n=0
    until grep -q "$1" "$log" 2>/dev/null; do
        if [ -n "${pid:-}" ] && ! kill -0 "$pid" 2>/dev/null; then
            grep -q "$1" "$log" 2>/dev/null
            return
        fi
        _n=$((_n + 1))
        [ "$_n" -lt "$2" ] || return 1
        sleep 0.2
    done
}

# field KEY FILE: KEY's value in a /proc status file.
field() { awk -v k="$1:" '$1 == k { print $2 }' "$2"; }
