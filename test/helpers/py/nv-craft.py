#!/usr/bin/python3
"""Underlay tunnel packets (NVGRE, VXLAN, good and malformed) for the network virtualization e2e tests (scapy).

Usage (in the sender's namespace, with Debian's /usr/bin/python3):
  nv-craft.py list
  nv-craft.py send IFACE NAME [NAME ...]   prints "sent NAME LEN" per frame, or "failed NAME ERROR"
Env: DST_MAC (the target host's uplink MAC), SRC_MAC (sender's MAC), SRC_PA, DST_PA (outer IPv4),
     VSID (NVGRE key >> 8 / VXLAN VNI), FLOWID (default 0x2a),
     INNER_SRC_MAC, INNER_DST_MAC, INNER_SRC_IP, INNER_DST_IP (the inner frame: ICMP echo),
     MARK (inner payload marker, default "XSNV-" + NAME), COUNT (copies of each frame, default 1).
Every IP/UDP length field matches the bytes sent (truncations cut the tunnel header or the inner frame, not the
outer headers), so the only defect of a malformed frame is the one its name says.
"""
import logging, os, socket, struct, sys
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import Ether, IP, ICMP, UDP, Raw

DST_MAC = os.environ.get("DST_MAC", "02:00:00:00:00:aa")
SRC_MAC = os.environ.get("SRC_MAC", "02:00:00:00:00:bb")
SRC_PA = os.environ.get("SRC_PA", "192.0.2.2")
DST_PA = os.environ.get("DST_PA", "192.0.2.1")
VSID = int(os.environ.get("VSID", "5001"))
FLOWID = int(os.environ.get("FLOWID", "42"), 0)
INNER_SRC_MAC = os.environ.get("INNER_SRC_MAC", "02:00:00:00:00:06")
INNER_DST_MAC = os.environ.get("INNER_DST_MAC", "02:00:00:00:00:05")
INNER_SRC_IP = os.environ.get("INNER_SRC_IP", "10.0.0.6")
INNER_DST_IP = os.environ.get("INNER_DST_IP", "10.0.0.5")
COUNT = int(os.environ.get("COUNT", "1"))


def inner(name):
    mark = os.environ.get("MARK", "XSNV-" + name).encode()
    return bytes(Ether(src=INNER_SRC_MAC, dst=INNER_DST_MAC) / IP(src=INNER_SRC_IP, dst=INNER_DST_IP) /
                 ICMP(id=0x4e56, seq=1) / Raw(mark + b"." * 16))


def gre(flags_ver, proto, key=None, csum=None):
    """GRE header bytes: flags/version word, protocol, then optional checksum+reserved and key."""
    h = struct.pack("!HH", flags_ver, proto)
    if csum is not None:
        h += struct.pack("!HH", csum, 0)
    if key is not None:
        h += struct.pack("!I", key)
    return h


def outer_ip(payload, proto):
    return bytes(Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=SRC_PA, dst=DST_PA, proto=proto, flags="DF", ttl=64) / Raw(payload))


def outer_udp(payload):
    return bytes(Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=SRC_PA, dst=DST_PA, flags="DF", ttl=64) /
                 UDP(sport=49999, dport=4789, chksum=0) / Raw(payload))


def vxlan(flags, vni):
    return struct.pack("!B3xI", flags, vni << 8)


def frames():
    key = (VSID << 8) | (FLOWID & 0xff)
    f = {}
    # well-formed (positive controls; forged/unknown VSID and foreign PA come from the env)
    f["nvgre"] = lambda n: outer_ip(gre(0x2000, 0x6558, key) + inner(n), 47)
    f["vxlan"] = lambda n: outer_udp(vxlan(0x08, VSID) + inner(n))
    # malformed GRE
    f["gre_cbit"] = lambda n: outer_ip(gre(0xA000, 0x6558, key, csum=0) + inner(n), 47)        # C bit + checksum
    f["gre_sbit"] = lambda n: outer_ip(gre(0x3000, 0x6558, key) + struct.pack("!I", 7) + inner(n), 47)  # S bit
    f["gre_nokey"] = lambda n: outer_ip(gre(0x0000, 0x6558) + inner(n), 47)                     # no K bit
    f["gre_proto_ip"] = lambda n: outer_ip(gre(0x2000, 0x0800, key) + inner(n)[14:], 47)        # wrong protocol
    f["gre_ver1"] = lambda n: outer_ip(gre(0x2001, 0x6558, key) + inner(n), 47)                 # version 1
    f["gre_trunc_hdr"] = lambda n: outer_ip(gre(0x2000, 0x6558, key)[:6], 47)                   # key cut
    f["gre_trunc_inner"] = lambda n: outer_ip(gre(0x2000, 0x6558, key) + inner(n)[:10], 47)     # inner < 14
    # malformed VXLAN
    f["vxlan_noi"] = lambda n: outer_udp(vxlan(0x00, VSID) + inner(n))                           # no I flag
    f["vxlan_trunc_hdr"] = lambda n: outer_udp(vxlan(0x08, VSID)[:4])                           # header cut
    f["vxlan_trunc_inner"] = lambda n: outer_udp(vxlan(0x08, VSID) + inner(n)[:10])             # inner < 14
    return f


def main():
    f = frames()
    if len(sys.argv) >= 2 and sys.argv[1] == "list":
        print("\n".join(f.keys()))
        return 0
    if len(sys.argv) < 4 or sys.argv[1] != "send":
        print(__doc__, file=sys.stderr)
        return 2
    iface = sys.argv[2]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    for name in sys.argv[3:]:
        if name not in f:
            print("failed %s unknown frame" % name)
            continue
        data = f[name](name)
        for _ in range(COUNT):
            try:
                s.send(data)
                print("sent %s %d" % (name, len(data)))
            except OSError as e:
                print("failed %s %s" % (name, e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
