#!/usr/bin/python3
"""Port guard e2e helpers (scapy over raw AF_PACKET sockets), run inside a VM namespace.

Usage:
  guards.py dhcp-server IFACE SECONDS        rogue DHCP server: answers each DISCOVER with an OFFER of 10.0.0.150
                                             (server 10.0.0.66); prints "offered XID" per offer; exits after SECONDS
  guards.py dhcp-client IFACE MAC SECONDS    DISCOVER (broadcast flag) every 0.5 s until an OFFER for this xid
                                             arrives: prints "offer YIADDR SERVER", else "no-offer" after SECONDS
  guards.py send IFACE KIND COUNT            KIND: ra, icmp6_redirect, icmp_redirect, dhcp_offer, dhcp6_advertise,
                                             spoofed (broadcast UDP from SPOOF_MAC), marker (broadcast UDP, own MAC)
  guards.py flood IFACE SRC_MAC COUNT PPS    COUNT broadcast UDP frames (payload "storm-flood") paced at PPS;
                                             prints "flood SENT SECONDS"
Env: SRC_MAC, SRC_IP, SPOOF_MAC, TAG (payload marker).
"""
import logging, os, random, select, socket, sys, time
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import ARP, BOOTP, DHCP, Ether, ICMP, IP, IPv6, ICMPv6ND_RA, ICMPv6ND_Redirect, ICMPv6NDOptPrefixInfo, Raw, UDP
from scapy.layers.dhcp6 import DHCP6_Advertise, DHCP6OptServerId, DUID_LL

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SRC_MAC = os.environ.get("SRC_MAC", "02:00:00:00:00:01")
SRC_IP = os.environ.get("SRC_IP", "10.0.0.1")
SPOOF_MAC = os.environ.get("SPOOF_MAC", "02:00:00:00:00:99")
TAG = os.environ.get("TAG", "xswitch-guards").encode()
BCAST = "ff:ff:ff:ff:ff:ff"


def sock(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    return s


def frames(kind):
    if kind == "ra":
        return Ether(src=SRC_MAC, dst="33:33:00:00:00:01") / IPv6(src="fe80::66", dst="ff02::1", hlim=255) / \
            ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptPrefixInfo(prefix="2001:db8:66::", prefixlen=64)
    if kind == "icmp6_redirect":
        return Ether(src=SRC_MAC, dst="33:33:00:00:00:01") / IPv6(src="fe80::66", dst="ff02::1", hlim=255) / \
            ICMPv6ND_Redirect(tgt="fe80::67", dst="2001:db8::1")
    if kind == "icmp_redirect":
        return Ether(src=SRC_MAC, dst=BCAST) / IP(src=SRC_IP, dst="255.255.255.255") / \
            ICMP(type=5, code=1, gw="10.0.0.66") / IP(src="10.0.0.2", dst="192.0.2.1") / UDP(sport=1, dport=2)
    if kind == "dhcp_offer":
        return Ether(src=SRC_MAC, dst=BCAST) / IP(src="10.0.0.66", dst="255.255.255.255") / UDP(sport=67, dport=68) / \
            BOOTP(op=2, yiaddr="10.0.0.150", siaddr="10.0.0.66", xid=0x1234, chaddr=b"\x02\x00\x00\x00\x00\x02") / \
            DHCP(options=[("message-type", "offer"), ("server_id", "10.0.0.66"), ("lease_time", 600), "end"])
    if kind == "dhcp6_advertise":
        return Ether(src=SRC_MAC, dst="33:33:00:01:00:02") / IPv6(src="fe80::66", dst="ff02::1:2") / \
            UDP(sport=547, dport=546) / DHCP6_Advertise(trid=0x1234) / DHCP6OptServerId(duid=DUID_LL(lladdr=SRC_MAC))
    if kind == "spoofed":
        return Ether(src=SPOOF_MAC, dst=BCAST) / IP(src=SRC_IP, dst="255.255.255.255") / UDP(sport=40000, dport=9) / Raw(TAG)
    if kind == "marker":
        return Ether(src=SRC_MAC, dst=BCAST) / IP(src=SRC_IP, dst="255.255.255.255") / UDP(sport=40000, dport=9) / Raw(TAG)
    raise SystemExit(f"unknown kind {kind}")


def recv_incoming(s, timeout):
    """The next frame the socket received (not one this host sent), parsed; None if none came within timeout."""
    r, _, _ = select.select([s], [], [], timeout)
    if not r:
        return None
    data, addr = s.recvfrom(65535)
    if addr[2] == PACKET_OUTGOING:
        return None
    return Ether(data)


def dhcp_server(iface, seconds):
    s = sock(iface)
    end = time.time() + seconds
    my_mac = SRC_MAC
    while time.time() < end:
        p = recv_incoming(s, 0.2)
        if p is None:
            continue
        if not p.haslayer(BOOTP) or p[BOOTP].op != 1 or not p.haslayer(DHCP):
            continue
        mt = [o[1] for o in p[DHCP].options if isinstance(o, tuple) and o[0] == "message-type"]
        if mt != [1]:
            continue
        offer = Ether(src=my_mac, dst=BCAST) / IP(src="10.0.0.66", dst="255.255.255.255") / UDP(sport=67, dport=68) / \
            BOOTP(op=2, yiaddr="10.0.0.150", siaddr="10.0.0.66", xid=p[BOOTP].xid, chaddr=p[BOOTP].chaddr, flags=0x8000) / \
            DHCP(options=[("message-type", "offer"), ("server_id", "10.0.0.66"), ("lease_time", 600),
                          ("subnet_mask", "255.255.255.0"), "end"])
        s.send(bytes(offer))
        print("offered", hex(p[BOOTP].xid), flush=True)
    return 0


def dhcp_client(iface, mac, seconds):
    s = sock(iface)
    xid = random.randint(1, 0xFFFFFFFF)
    chaddr = bytes.fromhex(mac.replace(":", ""))
    disc = Ether(src=mac, dst=BCAST) / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67) / \
        BOOTP(op=1, xid=xid, chaddr=chaddr, flags=0x8000) / DHCP(options=[("message-type", "discover"), "end"])
    end = time.time() + seconds
    next_send = 0.0
    while time.time() < end:
        if time.time() >= next_send:
            s.send(bytes(disc))
            next_send = time.time() + 0.5
        p = recv_incoming(s, 0.1)
        if p is None:
            continue
        if p.haslayer(BOOTP) and p[BOOTP].op == 2 and p[BOOTP].xid == xid:
            print("offer", p[BOOTP].yiaddr, p[IP].src, flush=True)
            return 0
    print("no-offer", flush=True)
    return 0


def flood(iface, src_mac, count, pps):
    s = sock(iface)
    b = bytes(Ether(src=src_mac, dst=BCAST) / IP(src=SRC_IP, dst="255.255.255.255") / UDP(sport=40001, dport=9) / Raw(b"storm-flood"))
    start = time.time()
    sent = 0
    for k in range(count):
        due = start + k / pps
        now = time.time()
        if due > now:
            time.sleep(due - now)
        try:
            s.send(b)
            sent += 1
        except OSError:
            time.sleep(0.001)
    print("flood", sent, round(time.time() - start, 3), flush=True)
    return 0


def main():
    a = sys.argv[1:]
    if len(a) >= 3 and a[0] == "dhcp-server":
        return dhcp_server(a[1], float(a[2]))
    if len(a) >= 4 and a[0] == "dhcp-client":
        return dhcp_client(a[1], a[2], float(a[3]))
    if len(a) >= 4 and a[0] == "send":
        s = sock(a[1])
        b = bytes(frames(a[2]))
        for _ in range(int(a[3])):
            s.send(b)
            print("sent", a[2], len(b), flush=True)
        return 0
    if len(a) >= 5 and a[0] == "flood":
        return flood(a[1], a[2], int(a[3]), float(a[4]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
