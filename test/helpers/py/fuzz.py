#!/usr/bin/python3
"""Send COUNT random and mutated Ethernet frames out of IFACE through a raw AF_PACKET socket (bounded, seeded).

Usage: fuzz.py IFACE COUNT SEED [PPS]        (run inside the sender's namespace with /usr/bin/python3)
Env: SRC_MAC, DST_MAC, SRC_IP, DST_IP as in frames.py (the templates mutated). Frames are 14..1514 bytes (the
kernel refuses shorter ones); a third purely random, a third mutated valid frames, a third valid headers with
random lengths/tags. Prints "sent N failed M" at the end (failed: the kernel refused the send).
"""
import os, random, socket, sys, time, struct

iface, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pps = float(sys.argv[4]) if len(sys.argv) > 4 else 5000.0
rng = random.Random(seed)


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


SRC = mac(os.environ.get("SRC_MAC", "02:00:00:00:00:01"))
DST = mac(os.environ.get("DST_MAC", "02:00:00:00:00:02"))
SIP = socket.inet_aton(os.environ.get("SRC_IP", "10.0.0.1"))
DIP = socket.inet_aton(os.environ.get("DST_IP", "10.0.0.2"))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return (~s) & 0xFFFF


def valid(seq):
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x5854, seq & 0xFFFF) + b"fuzz" * 8
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq & 0xFFFF, 0, 64, 1, 0, SIP, DIP)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return DST + SRC + b"\x08\x00" + ip + icmp


ETHERTYPES = [0x0800, 0x0806, 0x86DD, 0x8100, 0x88A8, 0x9100, 0x88CC, 0x0000, 0xFFFF, 0x05DC]


def frame(i):
    kind = i % 3
    if kind == 0:     # purely random bytes
        n = rng.randint(14, 1514)
        return rng.randbytes(n)
    if kind == 1:     # a valid frame with a few random byte flips, maybe truncated or extended
        b = bytearray(valid(i))
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        r = rng.random()
        if r < 0.3:
            b = b[:rng.randint(14, len(b))]
        elif r < 0.5:
            b += rng.randbytes(rng.randint(1, 1400))
        return bytes(b)
    # valid MACs (random group bits sometimes), random tags and ethertypes, random length
    dst = DST if rng.random() < 0.5 else rng.randbytes(6)
    src = SRC if rng.random() < 0.5 else rng.randbytes(6)
    hdr = dst + src
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        hdr += struct.pack("!HH", rng.choice([0x8100, 0x88A8, 0x9100]), rng.randrange(65536))
    hdr += struct.pack("!H", rng.choice(ETHERTYPES))
    return (hdr + rng.randbytes(rng.randint(0, 1500 - len(hdr) + 14)))[:1514]


s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
sent = failed = 0
start = time.monotonic()
for i in range(count):
    try:
        s.send(frame(i))
        sent += 1
    except OSError:
        failed += 1
    ahead = (i + 1) / pps - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
print(f"sent {sent} failed {failed}", flush=True)
