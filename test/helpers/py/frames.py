#!/usr/bin/python3
"""Named frames for xswitch e2e tests (scapy), sent out of one interface with a raw AF_PACKET socket.

Usage (run in the sender's namespace, with Debian's /usr/bin/python3):
  frames.py list
  frames.py send IFACE NAME [NAME ...]     prints "sent NAME LEN" per frame, or "failed NAME ERROR"
Env: SRC_MAC, DST_MAC, SRC_IP, DST_IP (defaults 02:00:00:00:00:01 -> 02:00:00:00:00:02, 10.0.0.1 -> 10.0.0.2),
     VLAN (outer 802.1Q id, default 10), VLAN2 (inner id for qinq, default 20), PCP (default 0),
     COUNT (copies of each named frame, default 1), TAG (payload marker, default "xswitch-e2e").
Frames shorter than 14 bytes are refused by the kernel on an Ethernet device (EINVAL): reported as failed.
"""
import logging, os, socket, sys
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import Ether, Dot1Q, Dot1AD, IP, ICMP, UDP, ARP, Raw

SRC_MAC = os.environ.get("SRC_MAC", "02:00:00:00:00:01")
DST_MAC = os.environ.get("DST_MAC", "02:00:00:00:00:02")
SRC_IP = os.environ.get("SRC_IP", "10.0.0.1")
DST_IP = os.environ.get("DST_IP", "10.0.0.2")
VLAN = int(os.environ.get("VLAN", "10"))
VLAN2 = int(os.environ.get("VLAN2", "20"))
PCP = int(os.environ.get("PCP", "0"))
COUNT = int(os.environ.get("COUNT", "1"))
TAG = os.environ.get("TAG", "xswitch-e2e").encode()


def icmp(seq=1):
    return IP(src=SRC_IP, dst=DST_IP) / ICMP(id=0x5853, seq=seq) / Raw(TAG)


def frames():
    f = {
        # well-formed
        "icmp": Ether(src=SRC_MAC, dst=DST_MAC) / icmp(),
        "dot1q_icmp": Ether(src=SRC_MAC, dst=DST_MAC) / Dot1Q(vlan=VLAN, prio=PCP) / icmp(),
        "dot1q_bcast": Ether(src=SRC_MAC, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=VLAN, prio=PCP) /
                       IP(src=SRC_IP, dst="255.255.255.255") / UDP(sport=40000, dport=9) / Raw(TAG),
        "dot1q_arp_req": Ether(src=SRC_MAC, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=VLAN) /
                         ARP(op=1, hwsrc=SRC_MAC, psrc=SRC_IP, pdst=DST_IP),
        "bcast_udp": Ether(src=SRC_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src=SRC_IP, dst="255.255.255.255") /
                     UDP(sport=40000, dport=9) / Raw(TAG),
        # bad or unusual
        "hdr_14": Raw(bytes(Ether(src=SRC_MAC, dst=DST_MAC, type=0x0800))[:14]),   # header only, no payload
        "trunc_vlan": Raw(bytes(Ether(src=SRC_MAC, dst=DST_MAC) / Dot1Q(vlan=VLAN) / icmp())[:16]),  # cut in the tag
        "src_mcast": Ether(src="01:00:5e:00:00:01", dst=DST_MAC) / icmp(),
        "src_bcast": Ether(src="ff:ff:ff:ff:ff:ff", dst=DST_MAC) / icmp(),
        "src_zero": Ether(src="00:00:00:00:00:00", dst=DST_MAC) / icmp(),
        "qinq": Ether(src=SRC_MAC, dst=DST_MAC) / Dot1AD(vlan=VLAN) / Dot1Q(vlan=VLAN2) / icmp(),
        "qinq_8100": Ether(src=SRC_MAC, dst=DST_MAC) / Dot1Q(vlan=VLAN) / Dot1Q(vlan=VLAN2) / icmp(),
        "jumbo": Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=SRC_IP, dst=DST_IP) / UDP(sport=40000, dport=9) /
                 Raw(b"J" * 8972),
        "ip_totlen_big": Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=SRC_IP, dst=DST_IP, len=1400) / ICMP() / Raw(TAG),
        "ip_bad_ihl": Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=SRC_IP, dst=DST_IP, ihl=3) / ICMP() / Raw(TAG),
        "arp_short": Raw(bytes(Ether(src=SRC_MAC, dst=DST_MAC) / ARP(op=1, hwsrc=SRC_MAC, psrc=SRC_IP, pdst=DST_IP))[:34]),
        "garbage": Raw(bytes((i * 37 + 11) & 0xFF for i in range(64))),
        "runt_10": Raw(bytes(Ether(src=SRC_MAC, dst=DST_MAC))[:10]),
        "runt_13": Raw(bytes(Ether(src=SRC_MAC, dst=DST_MAC))[:13]),
    }
    return f


def main():
    fr = frames()
    if len(sys.argv) < 2 or sys.argv[1] == "list":
        print("\n".join(fr))
        return 0
    if sys.argv[1] != "send" or len(sys.argv) < 4:
        print(__doc__)
        return 2
    iface = sys.argv[2]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    for name in sys.argv[3:]:
        if name not in fr:
            print(f"unknown frame {name}", file=sys.stderr)
            return 2
        b = bytes(fr[name])
        for _ in range(COUNT):
            try:
                s.send(b)
                print("sent", name, len(b), flush=True)
            except OSError as e:
                print("failed", name, e.strerror or str(e), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
