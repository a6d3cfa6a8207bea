#!/usr/bin/python3
"""Decode a capture with tshark and write the field values src/wire's tests compare against.

Usage: /usr/bin/python3 test/helpers/py/tshark-fields.py CAPTURE OUT.json
OUT.json: {"tshark": VERSION, "fields": [...], "frames": [{field: [values in order of occurrence]}, ...]}
(one object per frame, only fields that occur; repeated fields such as outer and inner ip.src keep their order).
Checksums are verified (ip/tcp/udp check_checksum on) and reassembly is off, so each frame stands alone.
"""
import json, subprocess, sys

FIELDS = [
    "frame.len", "eth.src", "eth.dst", "eth.type", "vlan.id", "vlan.priority", "vlan.etype", "ieee8021ad.id", "ieee8021ad.priority",
    "ip.version", "ip.hdr_len", "ip.len", "ip.id", "ip.flags.df", "ip.flags.mf", "ip.frag_offset", "ip.ttl",
    "ip.proto", "ip.src", "ip.dst", "ip.checksum", "ip.checksum.status",
    "ipv6.plen", "ipv6.nxt", "ipv6.hlim", "ipv6.flow", "ipv6.tclass", "ipv6.src", "ipv6.dst",
    "ipv6.hopopts.nxt", "ipv6.routing.nxt", "ipv6.fraghdr.nxt", "ipv6.dstopts.nxt", "ah.next_header",
    "ipv6.fraghdr.offset", "ipv6.fraghdr.more", "ipv6.fraghdr.ident",
    "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.hdr_len", "tcp.flags", "tcp.window_size_value",
    "tcp.checksum.status", "tcp.options.mss_val", "tcp.options.wscale.shift",
    "udp.srcport", "udp.dstport", "udp.length", "udp.checksum.status",
    "icmp.type", "icmp.code", "icmp.ident", "icmp.seq", "icmp.mtu", "icmp.checksum.status",
    "icmpv6.type", "icmpv6.code", "icmpv6.checksum.status", "icmpv6.echo.identifier", "icmpv6.echo.sequence_number",
    "icmpv6.mtu", "icmpv6.nd.ns.target_address", "icmpv6.nd.na.target_address", "icmpv6.nd.rd.target_address",
    "icmpv6.nd.na.flag.r", "icmpv6.nd.na.flag.s", "icmpv6.nd.na.flag.o",
    "icmpv6.nd.ra.cur_hop_limit", "icmpv6.nd.ra.flag.m", "icmpv6.nd.ra.flag.o", "icmpv6.nd.ra.router_lifetime",
    "icmpv6.nd.ra.reachable_time", "icmpv6.nd.ra.retrans_timer",
    "icmpv6.opt.type", "icmpv6.opt.linkaddr", "icmpv6.opt.mtu", "icmpv6.opt.prefix", "icmpv6.opt.prefix.length",
    "icmpv6.opt.prefix.valid_lifetime", "icmpv6.opt.prefix.preferred_lifetime",
    "gre.flags_and_version", "gre.proto", "gre.key", "gre.sequence_number", "gre.checksum", "gre.checksum.status",
    "vxlan.flags", "vxlan.vni",
    "arp.opcode", "arp.src.hw_mac", "arp.src.proto_ipv4", "arp.dst.hw_mac", "arp.dst.proto_ipv4",
    "dhcp.type", "dhcp.id", "dhcp.hw.mac_addr", "dhcp.ip.your", "dhcp.option.dhcp", "dhcp.option.requested_ip_address",
    "dhcp.option.dhcp_server_id", "_ws.malformed",
]

def main():
    cap, out = sys.argv[1], sys.argv[2]
    args = ["tshark", "-r", cap, "-n", "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
            "-o", "udp.check_checksum:TRUE", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
            "-o", "tcp.analyze_sequence_numbers:FALSE",
            "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|"]
    for f in FIELDS:
        args += ["-e", f]
    res = subprocess.run(args, capture_output=True, text=True, timeout=60)   # stderr: root warning, ignored
    if res.returncode != 0:
        sys.exit(res.stderr)
    frames = []
    for line in res.stdout.rstrip("\n").split("\n"):
        cols = line.split("\t")
        d = {}
        for f, v in zip(FIELDS, cols):
            if v != "":
                d[f] = v.split("|")
        frames.append(d)
    ver = subprocess.run(["tshark", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    with open(out, "w") as fh:
        json.dump({"tshark": ver, "capture": cap.split("/")[-1], "fields": FIELDS, "frames": frames}, fh, indent=None,
                  separators=(",", ":"))
        fh.write("\n")
    print(f"{len(frames)} frames -> {out}")

main()
