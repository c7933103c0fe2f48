# L2 check: the MMDS (version 2) on eth0, answered by flint itself, and eth0's ordinary
# traffic still reaching L1's TAP fltap1 (172.16.1.1/24). /bin/mmds (tests/rig/l2/mmds.c)
# does what a guest's curl does. The metadata is the case's (74-l2-mmds.sh, --metadata).
fail() { echo "flint-l2: $*"; exit 1; }
ip link set lo up
ip addr add 172.16.1.2/24 dev eth0 || exit 1
ip link set eth0 up || exit 1
# The MMDS address is link-local: on eth0 itself, so the kernel ARPs for it there.
ip route add 169.254.169.254/32 dev eth0 || exit 1
# V2: a GET without a token is 401; with one, the value; IMDS text lists a directory.
if mmds GET /latest/meta-data/ami-id >/tmp/m.out 2>/tmp/m.err; then
    fail "a GET without a token was answered: $(cat /tmp/m.out)"
fi
grep -q 'HTTP 401' /tmp/m.err || fail "no 401 without a token: $(cat /tmp/m.err)"
v=$(mmds -t 60 GET /latest/meta-data/ami-id) || fail "GET ami-id with a token: $(cat /tmp/m.err)"
[ "$v" = "ami-flint-rig" ] || fail "ami-id: '$v'"
mmds -t 60 GET /latest/meta-data/ >/tmp/m.dir || fail "GET the directory"
grep -qx 'ami-id' /tmp/m.dir && grep -qx 'tags/' /tmp/m.dir || fail "the directory: $(cat /tmp/m.dir)"
mmds -t 60 -H 'Accept: application/json' GET /latest/meta-data/tags >/tmp/m.json ||
    fail "GET JSON"
grep -q '"team":"vmm"' /tmp/m.json || fail "JSON: $(cat /tmp/m.json)"
# A value larger than many segments (the stack cuts it to the MSS and the window).
mmds -t 60 GET /latest/blob >/tmp/m.blob || fail "GET the blob"
n=$(wc -c </tmp/m.blob)
[ "$n" = 30000 ] || fail "the blob: $n bytes, want 30000"
tr -d x </tmp/m.blob | grep -q . && fail "the blob is not all x"
# A token made up by the guest is refused.
if mmds -H 'X-metadata-token: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' \
    GET /latest/meta-data/ami-id >/dev/null 2>/tmp/m.err; then
    fail "a forged token was taken"
fi
grep -q 'HTTP 401' /tmp/m.err || fail "no 401 for a forged token: $(cat /tmp/m.err)"
echo "flint-l2: MMDS V2 answered (401 without a token, values, directory, JSON, 30000-byte blob)"
# Everything else on eth0 still goes to the TAP.
ping -c 2 -A -W 20 172.16.1.1 >/dev/null || fail "no ping answer from 172.16.1.1"
echo "flint-l2: eth0's other traffic reaches the TAP"
