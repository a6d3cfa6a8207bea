#!/usr/bin/python3
"""Peers for the RELATED ICMP / IP fragment ACL e2e test (test/e2e/acl-related.test.ts). Every mode is bounded in
time and prints one JSON line.

  icmp IFACE SRC_MAC DST_MAC SRC_IP DST_IP QSPORT QDPORT MTU COUNT
      send COUNT ICMP fragmentation needed (type 3 code 4, next-hop MTU) frames from SRC to DST on IFACE (scapy, L2),
      each quoting a TCP packet DST_IP:QSPORT -> SRC_IP:QDPORT (the receiver's own packet: IP header + 8 bytes)
  udpclient IP PORT SPORT COUNT SIZE
      send COUNT datagrams of SIZE bytes from SPORT (the kernel fragments them over the MTU), each with its index;
      wait up to 3 s for their echoes; prints {"sent","echoed"} (echoes of exactly SIZE bytes, distinct indexes);
      the echo server is acl_peer.py's (server udp PORT SECONDS 0)
"""
import json, logging, socket, struct, sys, time
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)


def icmp(iface, smac, dmac, sip, dip, qsport, qdport, mtu, count):
    from scapy.all import Ether, IP, ICMP, TCP, Raw, sendp
    quote = bytes(IP(src=dip, dst=sip, flags="DF", ttl=64) / TCP(sport=qsport, dport=qdport, flags="A", seq=1000) / Raw(b"x" * 1400))[:28]
    f = Ether(src=smac, dst=dmac) / IP(src=sip, dst=dip) / ICMP(type=3, code=4, nexthopmtu=mtu) / Raw(quote)
    sendp(f, iface=iface, count=count, inter=0.05, verbose=False)
    print(json.dumps({"sent": count}))


def udpclient(ip, port, sport, count, size):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", sport))
    got = set()
    for i in range(count):
        s.sendto(struct.pack("!I", i) + b"f" * (size - 4), (ip, port))
        time.sleep(0.05)
    deadline = time.time() + 3
    while time.time() < deadline and len(got) < count:
        s.settimeout(max(0.05, deadline - time.time()))
        try:
            data, _ = s.recvfrom(65535)
        except socket.timeout:
            break
        if len(data) == size:
            got.add(struct.unpack("!I", data[:4])[0])
    print(json.dumps({"sent": count, "echoed": len(got)}))


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "icmp":
        icmp(a[1], a[2], a[3], a[4], a[5], int(a[6]), int(a[7]), int(a[8]), int(a[9]))
    elif a[0] == "udpclient":
        udpclient(a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]))
    else:
        sys.exit("usage: see the header")
