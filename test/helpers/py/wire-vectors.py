#!/usr/bin/python3
"""Test vectors for src/wire: named frames built with scapy, written to a pcap plus a manifest.

Usage: /usr/bin/python3 test/helpers/py/wire-vectors.py OUT_DIR
Writes OUT_DIR/scapy-wire.pcap and OUT_DIR/scapy-wire.frames.json ([{name, error}] in pcap order;
error is null for a good frame, else {proto, reason} with `reason` a substring the parser's reason must contain).
Debian's scapy runs only under /usr/bin/python3. Deterministic: fixed fields and timestamps.
"""
import json, logging, os, struct, sys
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import (Ether, Dot1Q, Dot1AD, ARP, IP, IPv6, ICMP, UDP, TCP, GRE, Raw, BOOTP, DHCP,
                       IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrFragment, IPv6ExtHdrDestOpt, AH,
                       ICMPv6EchoRequest, ICMPv6EchoReply, ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6ND_RS, ICMPv6ND_RA,
                       ICMPv6ND_Redirect, ICMPv6NDOptSrcLLAddr, ICMPv6NDOptDstLLAddr, ICMPv6NDOptPrefixInfo,
                       ICMPv6NDOptMTU, ICMPv6PacketTooBig, IPOption_RR, IPOption_NOP, PcapWriter)
from scapy.layers.vxlan import VXLAN

A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
UA, UB = "02:00:00:00:01:01", "02:00:00:00:02:02"

def eth(src=A, dst=B):
    return Ether(src=src, dst=dst)

def ip4(**kw):
    kw.setdefault("src", "10.0.0.1"); kw.setdefault("dst", "10.0.0.2")
    return IP(**kw)

def ip6(**kw):
    kw.setdefault("src", "fd00::1"); kw.setdefault("dst", "fd00::2")
    return IPv6(**kw)

def nvgre_key(vsid, flow):
    return ((vsid & 0xFFFFFF) << 8) | (flow & 0xFF)

inner = eth("02:aa:00:00:00:01", "02:aa:00:00:00:02") / IP(src="192.168.7.1", dst="192.168.7.2") / ICMP(id=9, seq=3) / Raw(b"inner")

GOOD = [
    ("udp4", eth() / ip4(ttl=64, id=7) / UDP(sport=1000, dport=53) / Raw(b"\x00" * 20)),
    ("udp4_vlan10", eth() / Dot1Q(vlan=10, prio=3) / ip4() / UDP(sport=1001, dport=9) / Raw(b"hello")),
    ("qinq_100_10", eth() / Dot1AD(vlan=100, prio=1) / Dot1Q(vlan=10, prio=5) / ip4() / UDP(sport=1002, dport=9) / Raw(b"q")),
    ("vlan0_prio", eth() / Dot1Q(vlan=0, prio=6) / ip4() / ICMP(id=1, seq=1)),
    ("udp4_nocsum", eth() / ip4() / UDP(sport=1003, dport=9, chksum=0) / Raw(b"x")),
    ("tcp_syn_opts", eth() / ip4() / TCP(sport=40000, dport=80, flags="S", seq=123456789, window=29200,
        options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)])),
    ("tcp_pa_data", eth() / ip4(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=80, dport=40000, flags="PA",
        seq=0xfffffff0, ack=123456790) / Raw(b"GET / HTTP/1.0\r\n\r\n")),
    ("icmp_echo", eth() / ip4() / ICMP(type=8, id=0x1b8d, seq=1) / Raw(b"abcdefgh" * 7)),
    ("icmp_echo_reply", eth() / ip4(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=0, id=0x1b8d, seq=1) / Raw(b"abcd")),
    ("icmp_frag_needed", eth() / ip4(src="10.0.0.254") / ICMP(type=3, code=4, nexthopmtu=1450) /
        IP(src="10.0.0.1", dst="10.0.0.9", flags="DF", len=1500) / UDP(sport=5, dport=6, len=1480)),
    ("ipv4_options_rr", eth() / ip4(options=[IPOption_NOP(), IPOption_RR(routers=["1.2.3.4"])]) / UDP(sport=1004, dport=9)),
    ("ipv4_first_fragment", eth() / ip4(id=99, flags="MF", frag=0, proto=17) / Raw(b"\x04\x00\x00\x09\x00\x28\x00\x00" + b"y" * 16)),
    ("ipv4_later_fragment", eth() / ip4(id=99, frag=3, proto=17) / Raw(b"z" * 16)),
    ("arp_request", eth(A, "ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=A, psrc="10.0.0.1", pdst="10.0.0.2")),
    ("arp_reply", eth(B, A) / ARP(op=2, hwsrc=B, psrc="10.0.0.2", hwdst=A, pdst="10.0.0.1")),
    ("arp_gratuitous", eth(A, "ff:ff:ff:ff:ff:ff") / ARP(op=2, hwsrc=A, psrc="10.0.0.1", hwdst="ff:ff:ff:ff:ff:ff", pdst="10.0.0.1")),
    ("udp6", eth() / ip6(hlim=255, fl=0x12345, tc=0x2e) / UDP(sport=2000, dport=2001) / Raw(b"v6")),
    ("tcp6_syn", eth() / ip6() / TCP(sport=40001, dport=443, flags="S", seq=1)),
    ("ipv6_ext_chain", eth() / ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting(addresses=[]) /
        IPv6ExtHdrDestOpt() / UDP(sport=2002, dport=2003) / Raw(b"chain")),
    ("ipv6_ah_tcp", eth() / ip6() / AH(nh=6, payloadlen=4, spi=0x100, seq=1, icv=b"\x00" * 12) / TCP(sport=40002, dport=22, flags="S")),
    ("ipv6_first_fragment", eth() / ip6() / IPv6ExtHdrFragment(id=0xabcdef01, m=1, offset=0, nh=17) / Raw(b"\x07\xd4\x07\xd5\x00\x30\x00\x00" + b"f" * 16)),
    ("ipv6_later_fragment", eth() / ip6() / IPv6ExtHdrFragment(id=0xabcdef01, m=0, offset=3, nh=17) / Raw(b"g" * 16)),
    ("icmpv6_echo", eth() / ip6() / ICMPv6EchoRequest(id=0x4242, seq=7, data=b"ping6")),
    ("icmpv6_echo_reply", eth() / ip6(src="fd00::2", dst="fd00::1") / ICMPv6EchoReply(id=0x4242, seq=7, data=b"ping6")),
    ("icmpv6_ns", eth(A, "33:33:ff:00:00:02") / ip6(dst="ff02::1:ff00:2", hlim=255) / ICMPv6ND_NS(tgt="fd00::2") /
        ICMPv6NDOptSrcLLAddr(lladdr=A)),
    ("icmpv6_na", eth(B, A) / ip6(src="fd00::2", dst="fd00::1", hlim=255) / ICMPv6ND_NA(tgt="fd00::2", R=0, S=1, O=1) /
        ICMPv6NDOptDstLLAddr(lladdr=B)),
    ("icmpv6_rs", eth(A, "33:33:00:00:00:02") / ip6(src="fe80::a", dst="ff02::2", hlim=255) / ICMPv6ND_RS() /
        ICMPv6NDOptSrcLLAddr(lladdr=A)),
    ("icmpv6_ra", eth(B, "33:33:00:00:00:01") / ip6(src="fe80::b", dst="ff02::1", hlim=255) /
        ICMPv6ND_RA(chlim=64, M=1, O=0, routerlifetime=1800, reachabletime=30000, retranstimer=1000) /
        ICMPv6NDOptSrcLLAddr(lladdr=B) / ICMPv6NDOptMTU(mtu=1500) /
        ICMPv6NDOptPrefixInfo(prefixlen=64, L=1, A=1, validlifetime=86400, preferredlifetime=14400, prefix="fd00:1::")),
    ("icmpv6_redirect", eth(B, A) / ip6(src="fe80::b", dst="fd00::1", hlim=255) /
        ICMPv6ND_Redirect(tgt="fe80::c", dst="fd00:9::1") / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:00:0c")),
    ("icmpv6_too_big", eth() / ip6(src="fd00::fe") / ICMPv6PacketTooBig(mtu=1280) / IPv6(src="fd00::1", dst="fd00:9::1", plen=1400) / UDP(sport=1, dport=2, len=1400)),
    ("dhcp_discover", eth(A, "ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67) /
        BOOTP(op=1, chaddr=bytes.fromhex("02000000000a"), xid=0x1111, flags=0x8000) /
        DHCP(options=[("message-type", "discover"), ("requested_addr", "10.0.0.50"), ("param_req_list", [1, 3, 6]), "end"])),
    ("dhcp_offer", eth(B, "ff:ff:ff:ff:ff:ff") / IP(src="10.0.0.254", dst="255.255.255.255") / UDP(sport=67, dport=68) /
        BOOTP(op=2, yiaddr="10.0.0.50", siaddr="10.0.0.254", chaddr=bytes.fromhex("02000000000a"), xid=0x1111) /
        DHCP(options=[("message-type", "offer"), ("server_id", "10.0.0.254"), ("lease_time", 3600), ("subnet_mask", "255.255.255.0"), "end"])),
    ("dhcp_request", eth(A, "ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67) /
        BOOTP(op=1, chaddr=bytes.fromhex("02000000000a"), xid=0x1111) /
        DHCP(options=[("message-type", "request"), ("server_id", "10.0.0.254"), ("requested_addr", "10.0.0.50"), "pad", "pad", "end"])),
    ("dhcp_ack", eth(B, A) / IP(src="10.0.0.254", dst="10.0.0.50") / UDP(sport=67, dport=68) /
        BOOTP(op=2, yiaddr="10.0.0.50", chaddr=bytes.fromhex("02000000000a"), xid=0x1111) /
        DHCP(options=[("message-type", "ack"), ("server_id", "10.0.0.254"), "end"])),
    ("nvgre", eth(UA, UB) / ip4(src="192.0.2.1", dst="192.0.2.2", flags="DF") /
        GRE(key_present=1, key=nvgre_key(5001, 0x2a), proto=0x6558) / inner),
    ("nvgre_flow0_vsid_max", eth(UA, UB) / ip4(src="192.0.2.1", dst="192.0.2.2") /
        GRE(key_present=1, key=nvgre_key(0xFFFFFF, 0), proto=0x6558) / inner),
    ("gre_csum_key_seq", eth(UA, UB) / ip4(src="192.0.2.1", dst="192.0.2.2") /
        GRE(chksum_present=1, key_present=1, seqnum_present=1, key=0x12345607, seqence_number=77, proto=0x6558) / inner),
    ("gre_nokey_ipv4", eth(UA, UB) / ip4(src="192.0.2.1", dst="192.0.2.2") / GRE(proto=0x0800) /
        IP(src="192.168.7.1", dst="192.168.7.2") / ICMP(id=2, seq=2)),
    ("nvgre_ipv6_underlay", eth(UA, UB) / ip6(src="fd00:200::1", dst="fd00:200::2") /
        GRE(key_present=1, key=nvgre_key(77, 1), proto=0x6558) / inner),
    ("vxlan_5001", eth(UA, UB) / ip4(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=49152, dport=4789) /
        VXLAN(vni=5001, flags=0x08) / inner),
    ("vxlan_inner_vlan_arp", eth(UA, UB) / ip4(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=49153, dport=4789) /
        VXLAN(vni=0xabcdef, flags=0x08) / eth(A, "ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=20) /
        ARP(op=1, hwsrc=A, psrc="10.0.0.1", pdst="10.0.0.2")),
    ("bad_ip_checksum", eth() / ip4(chksum=0x1234) / UDP(sport=1005, dport=9)),
    ("bad_udp_checksum", eth() / ip4() / UDP(sport=1006, dport=9, chksum=0x4321) / Raw(b"abc")),
    ("bad_tcp_checksum", eth() / ip4() / TCP(sport=40003, dport=80, flags="S", chksum=0x1111)),
    ("bad_icmpv6_checksum", eth() / ip6() / ICMPv6EchoRequest(id=1, seq=1, cksum=0x2222)),
]

def raw(p):
    return bytes(p)

def patch(b, off, val):
    b = bytearray(b); b[off:off + len(val)] = val; return bytes(b)

udp_ok = raw(eth() / ip4() / UDP(sport=7, dport=9) / Raw(b"0123456789"))
tcp_ok = raw(eth() / ip4() / TCP(sport=7, dport=9, flags="S"))

# (name, bytes, proto, reason substring)
BAD = [
    ("trunc_eth_10", raw(eth())[:10], "ethernet", "runt"),
    ("trunc_vlan_16", raw(eth() / Dot1Q(vlan=10) / ip4())[:16], "ethernet", "truncated"),
    ("ipv4_ihl_3", patch(udp_ok, 14, b"\x43"), "ipv4", "IHL < 5"),
    ("ipv4_totlen_too_big", patch(udp_ok, 16, struct.pack("!H", 1500)), "ipv4", "total length beyond"),
    ("ipv4_totlen_too_small", patch(udp_ok, 16, struct.pack("!H", 12)), "ipv4", "smaller than the header"),
    ("ipv4_trunc_header", udp_ok[:14 + 12], "ipv4", "truncated"),
    ("ipv4_ihl_past_end", raw(eth() / ip4(ihl=15, len=20, options=[]) )[:14 + 20], "ipv4", "IHL beyond"),
    ("ipv4_opt_len_0", raw(eth() / ip4(options=[IPOption_RR(routers=["1.2.3.4"])]) / UDP(sport=1, dport=2)), "ipv4", None),
    ("tcp_doff_3", patch(tcp_ok, 14 + 20 + 12, b"\x30"), "tcp", "data offset < 5"),
    ("tcp_doff_past_end", patch(tcp_ok, 14 + 20 + 12, b"\xf0"), "tcp", "beyond the segment"),
    ("tcp_opt_len_0", raw(eth() / ip4() / TCP(sport=7, dport=9, flags="S", dataofs=6) / Raw(b"\x02\x00\x00\x00")), "tcp", "option length"),
    ("udp_len_too_big", patch(udp_ok, 14 + 20 + 4, struct.pack("!H", 200)), "udp", "beyond the IP payload"),
    ("udp_len_4", patch(udp_ok, 14 + 20 + 4, struct.pack("!H", 4)), "udp", "length < 8"),
    ("arp_hlen_8", raw(eth(A, "ff:ff:ff:ff:ff:ff") / ARP(op=1, hwlen=8, hwsrc=A, psrc="10.0.0.1", pdst="10.0.0.2")), "arp", "hlen/plen"),
    ("arp_trunc_20", raw(eth(A, "ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=A, psrc="10.0.0.1", pdst="10.0.0.2"))[:14 + 20], "arp", "truncated"),
    ("ipv6_plen_too_big", raw(eth() / ip6(plen=500) / UDP(sport=1, dport=2)), "ipv6", "payload length beyond"),
    ("ipv6_9_ext_headers", raw(eth() / ip6() / (IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
        IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
        IPv6ExtHdrDestOpt()) / UDP(sport=1, dport=2)), "ipv6", "more than 8"),
    ("ipv6_ext_past_end", raw(eth() / ip6(nh=60, plen=8) / Raw(b"\x11\x05" + b"\x00" * 6)), "ipv6", "past the payload"),
    ("ipv6_hbh_not_first", raw(eth() / ip6() / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / UDP(sport=1, dport=2)), "ipv6", "not first"),
    ("icmpv6_nd_opt_len_0", raw(eth() / ip6(hlim=255) / ICMPv6ND_NS(tgt="fd00::2") / Raw(b"\x01\x00" + b"\x00" * 6)), "icmpv6", "length 0"),
    ("icmpv6_nd_opt_past_end", raw(eth() / ip6(hlim=255) / ICMPv6ND_NS(tgt="fd00::2") / Raw(b"\x01\x02" + b"\x00" * 6)), "icmpv6", "past the message"),
    ("icmpv6_ns_short", raw(eth() / ip6(hlim=255, nh=58) / Raw(b"\x87\x00\x00\x00" + b"\x00" * 8)), "icmpv6", "fixed part"),
    ("dhcp_no_cookie", raw(eth(A, "ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67) /
        BOOTP(op=1, xid=1, options=b"\x00\x00\x00\x00" + b"\x35\x01\x01\xff")), "dhcp", "magic cookie"),
    ("dhcp_opt_past_end", raw(eth(A, "ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67) /
        BOOTP(op=1, xid=1, options=b"\x63\x82\x53\x63" + b"\x35\x01\x01\x0c\x10abc")), "dhcp", "past the end"),
    ("dhcp_short", raw(eth(A, "ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67) /
        Raw(b"\x01\x01\x06\x00" + b"\x00" * 96)), "dhcp", "truncated"),
    ("gre_version_1", raw(eth(UA, UB) / ip4(src="192.0.2.1", dst="192.0.2.2", proto=47) / Raw(b"\x20\x01\x65\x58\x00\x00\x00\x01") / inner), "gre", "version"),
    ("gre_routing_bit", raw(eth(UA, UB) / ip4(src="192.0.2.1", dst="192.0.2.2", proto=47) / Raw(b"\x60\x00\x65\x58\x00\x00\x00\x01") / inner), "gre", "routing"),
    ("gre_trunc_key", raw(eth(UA, UB) / ip4(src="192.0.2.1", dst="192.0.2.2", proto=47) / Raw(b"\x20\x00\x65\x58\x00\x00")), "gre", "truncated"),
    ("vxlan_no_i_flag", raw(eth(UA, UB) / ip4(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=49152, dport=4789) /
        VXLAN(vni=5001, flags=0x00) / inner), "vxlan", "I flag"),
    ("vxlan_trunc", raw(eth(UA, UB) / ip4(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=49152, dport=4789) / Raw(b"\x08\x00\x00")), "vxlan", "truncated"),
    ("inner_eth_trunc", raw(eth(UA, UB) / ip4(src="192.0.2.1", dst="192.0.2.2") / GRE(key_present=1, key=nvgre_key(5001, 0), proto=0x6558) /
        Raw(b"\x02\xaa\x00\x00\x00\x02\x02\xaa")), "ethernet", "runt"),
]

def fix_opt_len_0(b):
    # IPv4 RR option: set its length byte to 0 (scapy would recompute it)
    i = 14 + 20
    assert b[i] == 7, b[i]
    b = bytearray(b); b[i + 1] = 0
    # refresh the header checksum so only the option is wrong
    b[14 + 10:14 + 12] = b"\x00\x00"
    s = sum(struct.unpack("!%dH" % ((b[14] & 15) * 2), bytes(b[14:14 + (b[14] & 15) * 4])))
    while s > 0xffff: s = (s & 0xffff) + (s >> 16)
    b[14 + 10:14 + 12] = struct.pack("!H", ~s & 0xffff)
    return bytes(b)

def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/wire"
    frames, manifest = [], []
    for name, p in GOOD:
        frames.append(raw(p)); manifest.append({"name": name, "error": None})
    for name, b, proto, reason in BAD:
        if name == "ipv4_opt_len_0":
            b, reason = fix_opt_len_0(b), "option length < 2"
        frames.append(b); manifest.append({"name": name, "error": {"proto": proto, "reason": reason}})
    w = PcapWriter(os.path.join(out, "scapy-wire.pcap"), linktype=1, sync=True)
    for i, b in enumerate(frames):
        pkt = Raw(b); pkt.time = 1700000000 + i / 1000
        w.write(pkt)
    w.close()
    with open(os.path.join(out, "scapy-wire.frames.json"), "w") as f:
        json.dump(manifest, f, indent=1); f.write("\n")
    print(f"{len(frames)} frames")

main()
