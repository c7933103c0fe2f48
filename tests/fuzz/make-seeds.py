#!/usr/bin/env python3
"""Writes the hand-made seeds of tests/fuzz/corpus/ (run from the repository root; the
seeds are committed, this is how they were made). Each binary seed follows the input
format its target's header comment describes; the JSON seeds come from configs/ and
tests/configs/firecracker/ (config: whole documents; api: their sections as bodies) and the
loader seeds are the guest payloads (build/guest, `make guest-payloads`)."""

import glob
import json
import os
import shutil
import struct

ROOT = "tests/fuzz/corpus"


def out(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def u8(v):
    return struct.pack("<B", v & 0xFF)


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


# --- config and api ------------------------------------------------------------------

def json_seeds():
    docs = sorted(glob.glob("configs/*.json") + glob.glob("tests/configs/firecracker/*.json"))
    bodies = {}
    for p in docs:
        name = os.path.basename(p)
        if name.startswith("metadata"):
            continue
        with open(p, "rb") as f:
            raw = f.read()
        out("config", name, raw)
        try:
            doc = json.loads(raw)
        except ValueError:
            continue  # docs_entropy.json: Firecracker's doc has a syntax error, kept as is
        for key, v in doc.items():
            items = v if isinstance(v, list) else [v]
            for item in items:
                text = json.dumps(item, sort_keys=True)
                bodies.setdefault(text, "%s-%s" % (key, name))
    for text, name in bodies.items():
        out("api", name, text.encode())
    # flint's own sections, which no Firecracker config has.
    flint = {
        "boot-source": {"kernel_image_path": "k", "initrd_path": "i", "boot_args": "console=ttyS0"},
        "drives": [{"drive_id": "root", "path_on_host": "d", "is_root_device": True,
                    "is_read_only": True, "cache_type": "Writeback",
                    "rate_limiter": {"bandwidth": {"size": 1048576, "refill_time": 100,
                                                   "one_time_burst": 4096},
                                     "ops": {"size": 100, "refill_time": 1000}}}],
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
                                "guest_mac": "06:00:AC:10:00:02",
                                "rx_rate_limiter": {"ops": {"size": 10, "refill_time": 10}}}],
        "vsock": {"guest_cid": 3, "uds_path": "v.sock"},
        "entropy": {"rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}}},
        "logger": {"level": "Debug", "show_level": True},
        "metrics": {"metrics_path": "m.fifo"},
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "huge_pages": "2M"},
        "flint": {"ci": {"exit_port": 244, "exit_port_size": 1},
                  "iommu": {"path": "/dev/iommu", "fault_chunk_kib": 2048, "max_mapped_mib": 64},
                  "memory": {"thp": True},
                  "vfio-devices": [{"id": "nic0", "bdf": "0000:00:03.0", "dma_mode": "fault",
                                    "guest_slot": 3},
                                   {"id": "n1", "path": "/dev/vfio/devices/vfio0",
                                    "dma_mode": "pin"}]},
    }
    out("config", "flint-everything.json", json.dumps(flint, indent=1).encode())
    for key, v in flint.items():
        for item in (v if isinstance(v, list) else [v]):
            out("api", "flint-%s.json" % key, json.dumps(item).encode())


# --- loaders ---------------------------------------------------------------------------

def loader_seeds():
    os.makedirs(os.path.join(ROOT, "loaders"), exist_ok=True)
    for name in ("bzimage.bin", "elf64.elf", "pvh.elf", "pvh32.elf"):
        p = os.path.join("build/guest", name)
        if os.path.exists(p):
            shutil.copy(p, os.path.join(ROOT, "loaders", name))


# --- resolver (tests/fuzz/fuzz_resolver.c) -------------------------------------------------

TWO, ATTACHED, RO0, RO1, CAP, OLD, HUGE = 1, 2, 4, 8, 0x10, 0x20, 0x40
READ, WRITE = 1, 3  # perm values (bits 3-6 of a record's first byte)


def rec(addr_kind, addr, perm=WRITE, length=None, dev=None, pasid=False):
    b = perm << 3
    tail = b""
    if pasid:
        b |= 1
    if dev is not None:
        b |= 2 | (4 if dev == "other" else 0)
    if length is not None:
        b |= 0x80
    s = u8(b)
    if dev is not None and dev != "other":
        s += u32(dev)
    if pasid:
        s += u8(5)
    if addr_kind % 8 >= 6:
        s += u8(addr_kind) + u32(addr >> 32) + u32(addr)
    else:
        s += u8(addr_kind) + u32(addr)
    if length is not None:
        s += u32(length)
    return s + tail


def group(*records, size=None):
    """A group of these records; a big one (size: its code) repeats 16 read off the input."""
    if size is not None:
        records = (records * 16)[:16]
    return u8(0) + u8(size if size is not None else len(records) - 1) + b"".join(records)


# Ops are chosen by op & 15; the high bits pick variants (fuzz_resolver.c, program()).
TURN, LOOP = u8(3), u8(5)
OP_FAIL_EFAULT, OP_EXIST = u8(10), u8(10 | 0x10)
OP_ADD_DEV, OP_ADD_OTHER, OP_UNMAP_EIO, OP_UNMAP_OK = u8(11), u8(11 | 0x20), u8(11 | 0x30), u8(11 | 0x10)


def resolver_seeds():
    hdr = lambda flags, chunk_log, k=0, batch=0, grp=0: u8(flags) + u8(chunk_log) + u8(k) + u8(batch) + u8(grp)
    out("resolver", "one-fault", hdr(ATTACHED, 4) + group(rec(0, 0x1000, READ)) + TURN)
    out("resolver", "groups-two-regions",
        hdr(TWO | ATTACHED, 4, batch=4) +
        group(rec(0, 0x1000), rec(0, 0x23000), rec(3, 0x5000)) +
        group(rec(4, 100)) + group(rec(5, 0)) + TURN + LOOP +
        group(rec(0, 0x7f000, length=3 << 20)) + TURN + LOOP + LOOP)
    out("resolver", "cap",
        hdr(TWO | ATTACHED | CAP, 4, k=2) +
        b"".join(group(rec(0, i * 0x10000 + 0x100)) for i in range(6)) + TURN +
        group(rec(0, 0x200000), rec(0, 0x210000), rec(0, 0x220000), rec(0, 0x230000)) + TURN +
        OP_UNMAP_EIO + group(rec(0, 0x300000)) + TURN + OP_UNMAP_OK + TURN)
    out("resolver", "errors",
        hdr(ATTACHED, 0) + group(rec(0, 0x1000), rec(0, 0x2000)) +
        u8(6) + u8(2) + TURN + u8(7) + u8(2) + TURN + u8(8) + group(rec(0, 0x3000)) +
        group(rec(0, 0x4000)) + TURN + u8(9) + u16(3) + group(rec(0, 0x9000)) + TURN +
        OP_FAIL_EFAULT + u8(0) + u32(0x10000) + u8(4) + group(rec(0, 0x10000)) + TURN +
        OP_EXIST + u8(0) + u32(0x20000) + u8(1) + group(rec(0, 0x20000)) + TURN + LOOP)
    out("resolver", "old-kernel-big-groups",
        hdr(OLD | ATTACHED, 2) + group(rec(0, 0x1000), size=0xFC) +
        group(rec(0, 0x40000), size=0xFD) + TURN + group(rec(0, 0x80000), size=0xFE) + TURN + TURN)
    out("resolver", "give-up", hdr(HUGE, 0) + group(rec(0, 0x1000), size=0xFF) +
        group(rec(0, 0x1000)) + TURN + TURN)
    out("resolver", "refused",
        hdr(TWO | RO0, 4) + group(rec(0, 0x1000, WRITE)) + group(rec(0, 0x1000, READ, pasid=True)) +
        group(rec(0, 0x1000, dev="other")) + group(rec(0, 0x1000, dev=12345)) +
        group(rec(6, 0x123456789000)) + TURN + OP_ADD_OTHER + u8(16) +
        group(rec(0, 0x1000, READ, dev="other")) + TURN)
    out("resolver", "large-chunk",
        hdr(TWO | CAP, 11, k=0) + group(rec(0, 0x100000, length=6 << 20)) + TURN + TURN +
        group(rec(3, 0x1000)) + TURN)


# --- virtqueue (tests/fuzz/fuzz_virtqueue.c) -----------------------------------------------

EVENT_IDX, INDIRECT = 1, 2
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4
R0_SIZE, R1_SIZE = 32 * 1024, 8 * 1024


def desc(addr, length, flags=0, nxt=0):
    return u64(addr) + u32(length) + u16(flags) + u16(nxt)


class Ram:
    def __init__(self):
        self.b = bytearray(R0_SIZE)
        self.top = 0

    def put(self, at, data):
        self.b[at:at + len(data)] = data
        self.top = max(self.top, at + len(data))


def align(v, a):
    return (v + a - 1) & ~(a - 1)


def queue_layout(size, nqueues):
    at, qs = 0, []
    for _ in range(nqueues):
        d = align(at, 16)
        a = d + 16 * size
        u = align(a + 6 + 2 * size, 4)
        at = u + 6 + 8 * size
        qs.append((d, a, u))
    return qs


def queue(ram, q, size, chains):
    """chains: lists of descriptors (addr, len, flags), linked in order; returns nothing."""
    d, a, _ = q
    i = 0
    heads = []
    for chain in chains:
        heads.append(i)
        for k, (addr, length, flags) in enumerate(chain):
            nxt = i + 1 if k + 1 < len(chain) else 0
            ram.put(d + 16 * i, desc(addr, length, flags | (F_NEXT if k + 1 < len(chain) else 0), nxt))
            i += 1
    ram.put(a, u16(0) + u16(len(heads)) + b"".join(u16(h) for h in heads))


def vq_seed(mode, flags, size_code, ram, max_segs=63):
    return u8(mode) + u8(flags) + u8(size_code) + u8(max_segs) + bytes(ram.b[:max(ram.top, 1)])


def virtqueue_seeds():
    size = 8
    (q,) = queue_layout(size, 1)
    (q16,) = queue_layout(16, 1)
    ram = Ram()
    queue(ram, q, size, [[(0x1000, 16, 0), (0x1100, 512, F_WRITE), (0x1400, 1, F_WRITE)],
                         [(0x2000, 48, F_INDIRECT)],
                         [(0x1800, 0, 0), (0x1900, 64, 0)]])
    ram.put(0x2000, desc(0x3000, 16, F_NEXT, 1) + desc(0x3100, 100, F_WRITE | F_NEXT, 2) +
            desc(0x3200, 1, F_WRITE))
    out("virtqueue", "walker-chains", vq_seed(0, EVENT_IDX | INDIRECT, 3, ram))
    ram = Ram()
    queue(ram, q, size, [[(0x1000, 16, F_NEXT)]])
    ram.put(q[0], desc(0x1000, 16, F_NEXT, 1) + desc(0x1010, 16, F_NEXT, 0))  # a loop
    out("virtqueue", "walker-loop", vq_seed(0, 0, 3, ram))

    # virtio-blk: IN, GET_ID, FLUSH, OUT (read-only: IOERR), a sector past the disk.
    def hdr(t, sector):
        return u32(t) + u32(0) + u64(sector)
    ram = Ram()
    chains = []
    for i, (t, sector, data) in enumerate([(0, 0, 1024), (8, 0, 20), (4, 0, 0), (1, 0, 512),
                                           (0, 127, 1024)]):
        base = 0x1000 + i * 0x800
        ram.put(base, hdr(t, sector))
        chain = [(base, 16, 0)]
        if data:
            chain.append((base + 0x100, data, F_WRITE if t != 1 else 0))
        chain.append((base + 0x7F0, 1, F_WRITE))
        chains.append(chain)
    queue(ram, q16, 16, chains)
    out("virtqueue", "blk-requests", vq_seed(1, INDIRECT, 4, ram))

    # virtio-vsock: RX buffers; TX: RESPONSE to the host's REQUEST (local port 1 << 30,
    # peer 1234), data on it, a REQUEST to host port 52, data too early, a credit request.
    rxq, txq, evq = queue_layout(size, 3)
    ram = Ram()
    queue(ram, rxq, size, [[(0x4000 + i * 0x800, 0x800, F_WRITE)] for i in range(6)])

    def pkt(op, src_port, dst_port, payload=b"", flags=0):
        return (u64(3) + u64(2) + u32(src_port) + u32(dst_port) + u32(len(payload)) + u16(1) +
                u16(op) + u32(flags) + u32(65536) + u32(0)) + payload
    pkts = [pkt(2, 1234, 1 << 30), pkt(5, 1234, 1 << 30, b"ping"), pkt(1, 1000, 52),
            pkt(5, 1000, 52, b"early"), pkt(7, 1234, 1 << 30), pkt(4, 1234, 1 << 30, flags=3),
            pkt(5, 1000, 52, b"hello"), pkt(3, 1000, 52)]
    tx = []
    for i, p in enumerate(pkts):
        ram.put(0x1000 + i * 0x100, p)
        tx.append([(0x1000 + i * 0x100, len(p), 0)])
    queue(ram, txq, size, tx[:6])
    # The last two: what the guest makes available in the second round (avail->idx + 2).
    d, a, _ = txq
    for i in (6, 7):
        ram.put(d + 16 * i, desc(0x1000 + i * 0x100, len(pkts[i]), 0))
    ram.put(a + 4 + 2 * 6, u16(6) + u16(7))
    out("virtqueue", "vsock-packets", vq_seed(2, EVENT_IDX, 3, ram))


# --- pci (tests/fuzz/fuzz_pci.c) -------------------------------------------------------------

def cf8(slot, reg):
    return u8(0) + u8(slot) + u8(reg)


LENS = {1: 0, 2: 1, 4: 2, 8: 3}


def cfg_rd(reg, slot=1, length=4):
    return u8(3 | LENS[length] << 4) + u8(slot) + u8(reg & 0xFC) + u8(reg & 3)


def cfg_wr(reg, value, slot=1, length=4):
    return u8(3 | LENS[length] << 4 | 0x40) + u8(slot) + u8(reg & 0xFC) + u8(reg & 3) + u32(value)


def win_rd(sel, off, length=4):
    return u8(5 | LENS[length] << 4) + u8(sel) + u16(off)


def win_wr(sel, off, value, length=4):
    return u8(6 | LENS[length] << 4) + u8(sel) + u16(off) + u64(value)


def pci_seeds():
    enum = b"".join(cfg_rd(r, slot=s) for s in (0, 1, 2) for r in (0, 8, 0x0C, 0x34))
    out("pci", "edu-enumerate", u8(0) + enum + cfg_wr(0x10, 0xFFFFFFFF) + cfg_rd(0x10) +
        cfg_wr(0x10, 0xE0000000) + cfg_wr(4, 6, length=2) + win_rd(0, 0) + win_wr(0, 4, 0x1234))
    # edu with MSI (64-bit, masking, 32 vectors): program the message, enable 4 vectors.
    out("pci", "edu-msi", u8(3 << 3) + cfg_rd(0x40) + cfg_wr(0x44, 0xFEE00000) + cfg_wr(0x48, 0) +
        cfg_wr(0x4C, 0x4041, length=2) + cfg_wr(0x42, 0x21, length=2) + cfg_wr(0x50, 2) +
        cfg_wr(0x42, 0x00, length=2) + cfg_wr(4, 4, length=2))
    # The NIC: 64-bit BAR0 above 4 GiB, MSI-X enabled, entry 0 programmed and unmasked.
    out("pci", "nic-msix", u8(1 | 2) + enum + cfg_wr(4, 6, length=2) + cfg_wr(0x52, 0x8000, length=2) +
        win_wr(8, 8, 0xFEE00000) + win_wr(8, 12, 0) + win_wr(8, 16, 0x4042) +
        win_wr(8, 20, 0) + win_rd(16, 8, 8) + win_rd(2, 0) + win_wr(2, 0x10, 7) +
        cfg_wr(0x10, 0xFFFFFFFF) + cfg_wr(0x14, 0xFFFFFFFF) + cfg_rd(0x10) + cfg_rd(0x14) +
        cfg_wr(0x52, 0, length=2))
    # A patched device: MSI-X table in BAR2, odd region sizes.
    patches = [(0x54, 0x02), (0x55, 0x00), (0x59, 0x08)]  # table in BAR2 at 0, PBA at 0x800
    out("pci", "patched", u8(1 | 4) + u8(len(patches)) + b"".join(u8(o) + u8(v) for o, v in patches) +
        u8(1) + u8(0x80 | 14) + u8(0) + u8(0x0C) + u8(0) + u8(0) + u8(0) + u8(8) + u16(9) +
        cfg_wr(4, 2, length=2) + cfg_wr(0x52, 0x8000, length=2) + win_wr(8, 0, 0xFEE00000))


# --- net_mmds (tests/fuzz/fuzz_net_mmds.c) ------------------------------------------------

def net_mmds_seeds():
    SYN, ACK, FIN, RST, PSH, PARTIAL = 0x02, 0x10, 0x01, 0x04, 0x08, 0x80

    def seg(port, flags, payload=b"", ds=0, da=0, win=0xFFFF, ipopts=0):
        return (u8(1) + u8(port) + u8(flags) + u8(ds) + u8(da) + struct.pack(">H", win)[::-1] +
                u8(ipopts) + u8(len(payload)) + payload)

    def post(n):
        return u8(2) + u8(n)

    read = u8(3)
    get = b"G" + bytes(30)  # made a whole request by the target

    def conversation(port, flags=0):
        return (seg(port, SYN | flags) + read + seg(port, ACK | flags) +
                seg(port, ACK | PSH | flags, get) + read + read + seg(port, ACK | FIN | flags) +
                read + seg(port, ACK | flags) + read)

    # MRG_RXBUF, 2 KiB buffers: one connection start to end, full checksums then partial.
    out("net_mmds", "get", u8(1) + post(30) + conversation(0) + post(30) + conversation(1, PARTIAL))
    # Without MRG_RXBUF, 300- and 70-byte buffers: frames made to fit.
    out("net_mmds", "small-buffers", u8(2 << 2) + post(31) + conversation(2) + post(31) + read)
    out("net_mmds", "tiny-buffers", u8(3 << 2) + post(31) + conversation(3) + post(31) + read)
    # Pipelined requests in a small window, the host sending frames meanwhile.
    out("net_mmds", "pipelined", u8(1 | 2) + post(30) + seg(0, SYN) + read + seg(0, ACK, win=700) +
        seg(0, ACK, get + b"\r\n\r\nGET /x HTTP/1.1\r\n\r\n", win=700) + read +
        u8(5) + u8(60) + bytes(60) + seg(0, ACK, win=2000) + read + post(30) + read)
    # ARP for the address and not, IP options, a raw frame, a RST, a reset mid-connection.
    out("net_mmds", "mixed", u8(1) + post(20) + u8(4) + u8(1) + u8(4) + u8(0) + read +
        seg(1, SYN, ipopts=2) + read + seg(1, RST) +
        u8(0) + u16(54) + u8(1) + u16(34) + u16(16) + bytes(12) + b"\x08\x00\x45" + bytes(39) +
        seg(2, SYN) + read + u8(6) + post(10) + seg(2, ACK) + read)
    # A SYN flood with no buffers, then buffers.
    out("net_mmds", "syn-flood", u8(1) + b"".join(seg(i % 4, SYN, ds=i) for i in range(120)) +
        post(31) + read + post(31) + read)


# --- mmds: a set-up byte (bit 0 V2, bit 1 imds_compat, bits 2-7 piece size - 1), a stream --

def mmds(name, v2, compat, piece, stream):
    out("mmds", name, u8(v2 | compat << 1 | (piece - 1) << 2) + stream)


def mmds_seeds():
    mmds("v1-get-json", 0, 0, 8, b"GET /latest/meta-data/ HTTP/1.1\r\nAccept: application/json\r\n\r\n"
         b"GET /latest/meta-data/tags/1/b HTTP/1.0\r\n\r\n")
    mmds("v1-get-text", 0, 0, 64, b"GET http://169.254.169.254/latest/meta-data/ami-id HTTP/1.0\r\n\r\n"
         b"GET /a~1b/c~0d HTTP/1.1\r\n\r\n")
    mmds("v2-token", 1, 0, 4, b"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 21600\r\n\r\n"
         b"GET /latest HTTP/1.1\r\nX-metadata-token: " + b"A" * 48 + b"\r\n\r\n")
    mmds("v2-errors", 1, 0, 16, b"PUT /latest/api/token HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n"
         b"PUT /token HTTP/1.0\r\nX-aws-ec2-metadata-token-ttl-seconds: +0\r\n\r\n"
         b"PATCH / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    mmds("compat-body", 0, 1, 32, b"GET /latest HTTP/1.1\r\nAccept: application/json\r\nContent-Length: 3\r\n\r\n"
         b"abcGET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    mmds("parse-errors", 0, 0, 2, b"POST / HTTP/1.1\r\n\r\nGET / HTTP/2\r\n\r\nGET  HTTP/1.0\r\n\r\n"
         b"GET / HTTP/1.1\r\nbad\r\n\r\nGET / HTTP/1.1\r\nAccept-Encoding: *;q=0\r\n"
         b"Content-Length: x\r\n\r\nGET / HTTP/1.1\n\n")


if __name__ == "__main__":
    json_seeds()
    loader_seeds()
    resolver_seeds()
    virtqueue_seeds()
    pci_seeds()
    net_mmds_seeds()
    mmds_seeds()
