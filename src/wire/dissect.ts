// wire/dissect.ts: decode a whole frame into its layers (Ethernet, tags, ARP, IPv4/IPv6, TCP/UDP/ICMP/ICMPv6,
// GRE/NVGRE, VXLAN, DHCP, and the inner frame of a tunnel). For tracing, captures and tests: it allocates
// records, so it is not for the per-frame hot path. Never throws; stops at the first layer that fails its check.
//
//  Ethernet [tags] -> 0x0800 IPv4 | 0x86dd IPv6 | 0x0806 ARP
//  IP -> 6 TCP | 17 UDP (4789 VXLAN -> Ethernet, 67/68 DHCP) | 1 ICMP | 58 ICMPv6 | 47 GRE (0x6558 -> Ethernet,
//        0x0800 -> IPv4, 0x86dd -> IPv6)

import { parseArp, type ArpFields } from './arp.js';
import { pseudoSumIpv4, pseudoSumIpv6 } from './checksum.js';
import { parseDhcp, type DhcpFields } from './dhcp.js';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_TEB,
  parseEthernet,
  type EthernetFields,
} from './ethernet.js';
import { parseGre, type GreFields } from './gre.js';
import { parseIcmp, type IcmpFields } from './icmp.js';
import { parseIcmpv6, type Icmpv6Fields } from './icmpv6.js';
import { IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, parseIpv4, type Ipv4Fields } from './ipv4.js';
import { parseIpv6, type Ipv6Fields } from './ipv6.js';
import { parseTcp, TcpView, type TcpFields } from './tcp.js';
import { parseUdp, UdpView, UDP_PORT_DHCP_CLIENT, UDP_PORT_DHCP_SERVER, type UdpFields } from './udp.js';
import { parseVxlan, VXLAN_PORT, type VxlanFields } from './vxlan.js';

export type Layer =
  | { readonly proto: 'ethernet'; readonly offset: number; readonly value: EthernetFields }
  | { readonly proto: 'arp'; readonly offset: number; readonly value: ArpFields }
  | { readonly proto: 'ipv4'; readonly offset: number; readonly value: Ipv4Fields }
  | { readonly proto: 'ipv6'; readonly offset: number; readonly value: Ipv6Fields }
  | { readonly proto: 'tcp'; readonly offset: number; readonly value: TcpFields; readonly checksumOk: boolean }
  /** checksumOk null: checksum 0 over IPv4 (none sent). */
  | { readonly proto: 'udp'; readonly offset: number; readonly value: UdpFields; readonly checksumOk: boolean | null }
  | { readonly proto: 'icmp'; readonly offset: number; readonly value: IcmpFields }
  | { readonly proto: 'icmpv6'; readonly offset: number; readonly value: Icmpv6Fields }
  | { readonly proto: 'gre'; readonly offset: number; readonly value: GreFields }
  | { readonly proto: 'vxlan'; readonly offset: number; readonly value: VxlanFields }
  | { readonly proto: 'dhcp'; readonly offset: number; readonly value: DhcpFields };

export type LayerName = Layer['proto'];

export interface Dissection {
  readonly layers: Layer[];
  /** The first layer that failed its check, with the parser's reason; null when all layers parsed. */
  readonly error: { readonly proto: LayerName; readonly offset: number; readonly reason: string } | null;
}

/** At most this many nested Ethernet frames (tunnel in tunnel) are followed. */
const MAX_ETHERNET_DEPTH = 3;

export function dissect(u8: Uint8Array, off = 0, len = u8.length - off): Dissection {
  const layers: Layer[] = [];
  const d = { layers, error: null as Dissection['error'] };
  if (off < 0 || len < 0 || off + len > u8.length) {
    d.error = { proto: 'ethernet', offset: off, reason: 'frame bounds outside the buffer' };
    return d;
  }
  ethernet(u8, off, len, d, 0);
  return d;
}

type Out = { layers: Layer[]; error: Dissection['error'] };

function fail(d: Out, proto: LayerName, offset: number, reason: string): void {
  d.error = { proto, offset, reason };
}

function ethernet(u8: Uint8Array, off: number, len: number, d: Out, depth: number): void {
  if (depth >= MAX_ETHERNET_DEPTH) return;
  const e = parseEthernet(u8, off, len);
  if (!e.ok) return fail(d, 'ethernet', off, e.reason);
  d.layers.push({ proto: 'ethernet', offset: off, value: e.value });
  const p = off + e.value.payloadOffset;
  const rest = len - e.value.payloadOffset;
  l3(u8, p, rest, e.value.etherType, d, depth);
}

function l3(u8: Uint8Array, p: number, rest: number, etherType: number, d: Out, depth: number): void {
  if (etherType === ETHERTYPE_IPV4) ipv4(u8, p, rest, d, depth);
  else if (etherType === ETHERTYPE_IPV6) ipv6(u8, p, rest, d, depth);
  else if (etherType === ETHERTYPE_ARP) {
    const a = parseArp(u8, p, rest);
    if (!a.ok) return fail(d, 'arp', p, a.reason);
    d.layers.push({ proto: 'arp', offset: p, value: a.value });
  }
}

function ipv4(u8: Uint8Array, p: number, rest: number, d: Out, depth: number): void {
  const r = parseIpv4(u8, p, rest);
  if (!r.ok) return fail(d, 'ipv4', p, r.reason);
  const v = r.value;
  d.layers.push({ proto: 'ipv4', offset: p, value: v });
  if (v.isFragment) return; // no L4 header to read without reassembly
  l4(u8, p + v.headerLength, v.payloadLength, v.protocol, pseudoSumIpv4(v.src, v.dst, 0, 0), d, depth, false);
}

function ipv6(u8: Uint8Array, p: number, rest: number, d: Out, depth: number): void {
  const r = parseIpv6(u8, p, rest);
  if (!r.ok) return fail(d, 'ipv6', p, r.reason);
  const v = r.value;
  d.layers.push({ proto: 'ipv6', offset: p, value: v });
  if (v.fragment !== null) return;
  l4(u8, p + v.l4Offset, v.l4Length, v.protocol, pseudoSumIpv6(u8, p + 8, p + 24, 0, 0), d, depth, true);
}

/** `addrSum`: the pseudo-header sum of the addresses only (protocol and length added here). */
function l4(
  u8: Uint8Array,
  p: number,
  len: number,
  protocol: number,
  addrSum: number,
  d: Out,
  depth: number,
  v6: boolean,
): void {
  if (protocol === IPPROTO_TCP) {
    const t = parseTcp(u8, p, len);
    if (!t.ok) return fail(d, 'tcp', p, t.reason);
    const ok = new TcpView(u8, p).checksumOk(len, addrSum + IPPROTO_TCP + len);
    d.layers.push({ proto: 'tcp', offset: p, value: t.value, checksumOk: ok });
  } else if (protocol === IPPROTO_UDP) {
    const t = parseUdp(u8, p, len);
    if (!t.ok) return fail(d, 'udp', p, t.reason);
    const ul = t.value.length;
    const view = new UdpView(u8, p);
    const ok = t.value.checksum === 0 && !v6 ? null : view.checksumOk(addrSum + IPPROTO_UDP + ul) && t.value.checksum !== 0;
    d.layers.push({ proto: 'udp', offset: p, value: t.value, checksumOk: ok });
    const q = p + 8;
    const ql = ul - 8;
    if (t.value.dport === VXLAN_PORT) {
      const x = parseVxlan(u8, q, ql);
      if (!x.ok) return fail(d, 'vxlan', q, x.reason);
      d.layers.push({ proto: 'vxlan', offset: q, value: x.value });
      ethernet(u8, q + 8, ql - 8, d, depth + 1);
    } else if (
      (t.value.dport === UDP_PORT_DHCP_SERVER || t.value.dport === UDP_PORT_DHCP_CLIENT) &&
      (t.value.sport === UDP_PORT_DHCP_SERVER || t.value.sport === UDP_PORT_DHCP_CLIENT)
    ) {
      const h = parseDhcp(u8, q, ql);
      if (!h.ok) return fail(d, 'dhcp', q, h.reason);
      d.layers.push({ proto: 'dhcp', offset: q, value: h.value });
    }
  } else if (protocol === IPPROTO_ICMP && !v6) {
    const t = parseIcmp(u8, p, len);
    if (!t.ok) return fail(d, 'icmp', p, t.reason);
    d.layers.push({ proto: 'icmp', offset: p, value: t.value });
  } else if (protocol === IPPROTO_ICMPV6 && v6) {
    const t = parseIcmpv6(u8, p, len, addrSum + IPPROTO_ICMPV6 + len);
    if (!t.ok) return fail(d, 'icmpv6', p, t.reason);
    d.layers.push({ proto: 'icmpv6', offset: p, value: t.value });
  } else if (protocol === IPPROTO_GRE) {
    const g = parseGre(u8, p, len);
    if (!g.ok) return fail(d, 'gre', p, g.reason);
    d.layers.push({ proto: 'gre', offset: p, value: g.value });
    const q = p + g.value.headerLength;
    const ql = len - g.value.headerLength;
    if (g.value.protocol === ETHERTYPE_TEB) ethernet(u8, q, ql, d, depth + 1);
    else if (depth + 1 < MAX_ETHERNET_DEPTH) l3(u8, q, ql, g.value.protocol, d, depth + 1);
  }
}
