// control/warmup-net.ts: the warm-up's virtualization traffic (see warmup.ts). A network policy of one routing
// domain with two virtual subnets and a lookup record of every rule, and the frames two local tenant VMs and a peer
// host exchange through it: policy-answered ARP, NVGRE, VXLAN and IP rewrite in both directions, routing between
// the subnets, underlay ARP for the PAs, TCP runs that the receive side coalesces (GRO), and a TCP super-frame
// that is segmented before encapsulation. The peer host is the warm-up's driver on the other end of the uplink's
// socketpair; every address is in TEST-NET-1 (192.0.2.0/24) or 10.x and never reaches a network.

import { GSO_TCPV4 } from '../dataplane/frame.js';
import type { PortConfig } from '../dataplane/switch-api.js';
import { emitArp } from '../wire/arp.js';
import { fillChecksum, pseudoSumIpv4 } from '../wire/checksum.js';
import { formatMac, parseMac, writeMac } from '../wire/ethernet.js';
import { emitGre, nvgreKey } from '../wire/gre.js';
import { emitIpv4 } from '../wire/ipv4.js';
import { emitTcp } from '../wire/tcp.js';
import { emitUdp } from '../wire/udp.js';
import { emitVxlan } from '../wire/vxlan.js';
import { DEFAULT_ROUTER_MAC, type HostNetworkInput } from '../virtualization/model.js';

const ETH = 14;
const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_GRE = 47;
/** Segment payload: the largest that fits the tenant MTU of NVGRE over a 1500-byte underlay (1458) with room. */
const MSS = 1400;
const ROUTER_MAC = parseMac(DEFAULT_ROUTER_MAC)!;
export const NET_VSID1 = 5001;
export const NET_VSID2 = 5002;
/** Who writes a scripted frame: the two tenant VMs' TAPs or the peer host on the uplink. */
export const FROM_V1 = 0, FROM_V2 = 1, FROM_PEER = 2;

/** One scripted wake-up: frames written together (a TCP run arrives in one batch, so GRO sees it). */
export interface NetStep {
  readonly from: number;
  readonly frames: readonly Uint8Array[];
}

export interface NetPlan {
  /** Switch.setVirtualization's input for a switch named `switchName` on host "warm-up". */
  readonly input: HostNetworkInput;
  readonly v1: PortConfig;
  readonly v2: PortConfig;
  readonly uplink: PortConfig;
  /** The peer host's ARP requests for our PAs (it learns our uplink MAC, we learn its): first, then repeated. */
  readonly hello: readonly NetStep[];
  readonly steps: readonly NetStep[];
  /** Two of the steps: VM 1's echo request to a remote VM (NVGRE out) and the reply (NVGRE in). */
  readonly ping: NetStep;
  readonly pong: NetStep;
}

function ip(s: number, a: number, b: number): number {
  return ((10 << 24) | (s << 16) | (a << 8) | b) >>> 0;
}
function dotted(x: number): string {
  return `${x >>> 24}.${(x >>> 16) & 0xff}.${(x >>> 8) & 0xff}.${x & 0xff}`;
}

/** Ethernet + IPv4 (DF) + L4 header and payload, after `v` bytes of zero virtio-net header; L4 checksums filled. */
function ipFrame(v: number, dst: number, src: number, ipDst: number, ipSrc: number, proto: number, o: {
  payload?: number; seq?: number; icmpType?: number; ttl?: number; dataValid?: boolean;
} = {}): Uint8Array {
  const pay = o.payload ?? 56;
  const l4h = proto === IPPROTO_TCP ? 20 : 8;
  const f = new Uint8Array(v + ETH + 20 + l4h + pay);
  if (o.dataValid === true) f[0] = 2; // VIRTIO_NET_HDR_F_DATA_VALID
  writeMac(f, v, dst);
  writeMac(f, v + 6, src);
  f[v + 12] = 0x08;
  const l3 = v + ETH;
  emitIpv4({ src: ipSrc, dst: ipDst, protocol: proto, totalLength: 20 + l4h + pay, df: true, ttl: o.ttl ?? 64 }, f, l3);
  const l4 = l3 + 20;
  for (let k = l4 + l4h; k < f.length; k++) f[k] = k & 0xff;
  const pseudo = pseudoSumIpv4(ipSrc, ipDst, proto, l4h + pay);
  if (proto === IPPROTO_TCP) {
    emitTcp({ sport: 40000, dport: 5201, seq: o.seq ?? 1000, ack: 1, flags: 'A', window: 500 }, f, l4);
    fillChecksum(f, l4, l4h + pay, 16, pseudo);
  } else if (proto === IPPROTO_UDP) {
    emitUdp({ sport: 40001, dport: 5001, length: 8 + pay }, f, l4);
    fillChecksum(f, l4, 8 + pay, 6, pseudo, true);
  } else {
    f[l4] = o.icmpType ?? 8; // echo request (0: reply)
    fillChecksum(f, l4, 8 + pay, 2);
  }
  return f;
}

function arpRequest(v: number, src: number, spa: number, tpa: number): Uint8Array {
  const f = new Uint8Array(v + 60);
  writeMac(f, v, 0xffff_ffff_ffff);
  writeMac(f, v + 6, src);
  f[v + 12] = 0x08;
  f[v + 13] = 0x06;
  emitArp({ op: 1, sha: src, spa, tha: 0, tpa }, f, v + ETH);
  return f;
}

/** An inner frame (no virtio-net header) in NVGRE or VXLAN from the peer's PA to ours, after a 10-byte header. */
function tunnel(kind: 'nvgre' | 'vxlan', inner: Uint8Array, vsid: number, dstMac: number, srcMac: number,
  dstPa: number, srcPa: number, dataValid: boolean): Uint8Array {
  const v = 10;
  const hdr = kind === 'nvgre' ? 8 : 16;
  const f = new Uint8Array(v + ETH + 20 + hdr + inner.length);
  if (dataValid) f[0] = 2;
  writeMac(f, v, dstMac);
  writeMac(f, v + 6, srcMac);
  f[v + 12] = 0x08;
  const l3 = v + ETH;
  emitIpv4({ src: srcPa, dst: dstPa, protocol: kind === 'nvgre' ? IPPROTO_GRE : IPPROTO_UDP, totalLength: 20 + hdr + inner.length, df: true }, f, l3);
  if (kind === 'nvgre') emitGre({ protocol: 0x6558, key: nvgreKey(vsid, 0x2a) }, f, l3 + 20);
  else {
    emitUdp({ sport: 49200, dport: 4789, length: hdr + inner.length }, f, l3 + 20);
    emitVxlan({ vni: vsid }, f, l3 + 28);
  }
  f.set(inner, l3 + 20 + hdr);
  return f;
}

/** A TCP super-frame of `segs` MSS-sized segments from a TAP (12-byte virtio-net header, TCPv4 GSO, partial csum). */
function superFrame(dst: number, src: number, ipDst: number, ipSrc: number, segs: number): Uint8Array {
  const v = 12;
  const pay = segs * MSS;
  const f = ipFrame(v, dst, src, ipDst, ipSrc, IPPROTO_TCP, { payload: pay });
  const l4 = v + ETH + 20;
  // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum
  let ps = pseudoSumIpv4(ipSrc, ipDst, IPPROTO_TCP, 20 + pay);
  while (ps > 0xffff) ps = (ps & 0xffff) + (ps >>> 16);
  f[l4 + 16] = ps >>> 8;
  f[l4 + 17] = ps & 0xff;
  const dv = new DataView(f.buffer);
  f[0] = 1; // NEEDS_CSUM
  f[1] = GSO_TCPV4;
  dv.setUint16(2, ETH + 40, true); // hdr_len
  dv.setUint16(4, MSS, true); // gso_size
  dv.setUint16(6, ETH + 20, true); // csum_start
  dv.setUint16(8, 16, true); // csum_offset
  return f;
}

function vmPort(name: string, vsid: number, kind: 'vm' | 'external'): PortConfig {
  return { name, kind, mac: null, vlan: { mode: 'none' }, vsid, up: true, macLimit: 0, mtu: 1500 };
}

/**
 * The plan for one switch. `seed` (0..15) picks the addresses, so a second plan (a test's "real" switch) differs
 * from the warm-up's in every MAC, CA, PA and GUID.
 */
export function netPlan(switchName: string, seed: number): NetPlan {
  const s = seed & 15;
  const hex = s.toString(16);
  const mac = (k: number): number => 0x02_58_57_10_00_00 + s * 0x1_00_00 + k;
  const V1 = mac(1), V2 = mac(2), R1 = mac(3), R2 = mac(4), R3 = mac(5), R4 = mac(6);
  const UPLINK = 0x02_58_57_20_00_01 + s * 0x1_00_00;
  const PEER = UPLINK + 1;
  const pa = (k: number): number => (0xc0_00_02_00 + s * 16 + k) >>> 0;
  const PA_LOCAL = pa(1), PA_PEER = pa(2), PA_RW_LOCAL = pa(3), PA_RW_PEER = pa(4);
  const caV1 = ip(s, 0, 5), caV2 = ip(s, 0, 15), caR1 = ip(s, 0, 6), caR2 = ip(s, 0, 7), caR3 = ip(s, 1, 8), caR4 = ip(s, 0, 16);
  const host = 'warm-up';
  const peer = 'warm-up-peer';
  const pas = [
    { host, address: PA_LOCAL }, { host: peer, address: PA_PEER },
    { host, address: PA_RW_LOCAL }, { host: peer, address: PA_RW_PEER },
  ].map((p) => ({ host: p.host, switch: switchName, address: `${dotted(p.address)}/24`, vlan: 0 }));
  const rec = (ca: number, vsid: number, m: number, p: number, rule: 'encap' | 'vxlan' | 'rewrite', vm: string): {
    ca: string; vsid: number; mac: string; pa: string; rule: 'encap' | 'vxlan' | 'rewrite'; vm: string;
  } => ({ ca: dotted(ca), vsid, mac: formatMac(m), pa: dotted(p), rule, vm });
  const input: HostNetworkInput = {
    host,
    switchName,
    uplinkMac: UPLINK,
    underlayMtu: 1500,
    network: {
      routerMac: DEFAULT_ROUTER_MAC,
      providerAddresses: pas,
      providerRoutes: [],
      remotes: [],
      routingDomains: [{
        id: `{5857a2d1-0000-4000-8000-00000000000${hex}}`,
        name: 'warm-up',
        subnets: [
          { vsid: NET_VSID1, prefix: `${dotted(ip(s, 0, 0))}/24`, gateway: dotted(ip(s, 0, 1)) },
          { vsid: NET_VSID2, prefix: `${dotted(ip(s, 1, 0))}/24`, gateway: dotted(ip(s, 1, 1)) },
        ],
      }],
      lookupRecords: [
        rec(caV1, NET_VSID1, V1, PA_LOCAL, 'encap', 'warm-v1'),
        rec(caV2, NET_VSID1, V2, PA_RW_LOCAL, 'rewrite', 'warm-v2'),
        rec(caR1, NET_VSID1, R1, PA_PEER, 'encap', 'warm-r1'),
        rec(caR2, NET_VSID1, R2, PA_PEER, 'vxlan', 'warm-r2'),
        rec(caR3, NET_VSID2, R3, PA_PEER, 'encap', 'warm-r3'),
        rec(caR4, NET_VSID1, R4, PA_RW_PEER, 'rewrite', 'warm-r4'),
      ],
      customerRoutes: [],
    },
  };
  const t = 12; // TAP virtio-net header
  const u = 10; // AF_PACKET virtio-net header
  const hello: NetStep[] = [
    { from: FROM_PEER, frames: [arpRequest(u, PEER, PA_PEER, PA_LOCAL)] },
    { from: FROM_PEER, frames: [arpRequest(u, PEER, PA_RW_PEER, PA_RW_LOCAL)] },
  ];
  const inner = (dst: number, src: number, ipDst: number, ipSrc: number, proto: number, o: Parameters<typeof ipFrame>[6] = {}): Uint8Array =>
    ipFrame(0, dst, src, ipDst, ipSrc, proto, o);
  const run = (n: number, seq0: number, dataValid: boolean): Uint8Array[] => {
    const out: Uint8Array[] = [];
    for (let k = 0; k < n; k++) {
      const i = inner(V1, R1, caV1, caR1, IPPROTO_TCP, { payload: MSS, seq: seq0 + k * MSS });
      out.push(tunnel('nvgre', i, NET_VSID1, UPLINK, PEER, PA_LOCAL, PA_PEER, dataValid));
    }
    return out;
  };
  const ping: NetStep = { from: FROM_V1, frames: [ipFrame(t, R1, V1, caR1, caV1, IPPROTO_ICMP)] };
  const pong: NetStep = {
    from: FROM_PEER,
    frames: [tunnel('nvgre', inner(V1, R1, caV1, caR1, IPPROTO_ICMP, { icmpType: 0 }), NET_VSID1, UPLINK, PEER, PA_LOCAL, PA_PEER, false)],
  };
  const steps: NetStep[] = [
    ...hello,
    { from: FROM_V1, frames: [arpRequest(t, V1, caV1, caR1)] }, // answered from the policy table
    ping,
    pong,
    { from: FROM_V1, frames: [ipFrame(t, R1, V1, caR1, caV1, IPPROTO_TCP, { payload: 1380 })] },
    { from: FROM_PEER, frames: run(4, 5000, false) },
    { from: FROM_V1, frames: [ipFrame(t, R2, V1, caR2, caV1, IPPROTO_UDP, { payload: 26 })] },
    { from: FROM_PEER, frames: [tunnel('vxlan', inner(V1, R2, caV1, caR2, IPPROTO_UDP, { payload: 26 }), NET_VSID1, UPLINK, PEER, PA_LOCAL, PA_PEER, false)] },
    { from: FROM_V1, frames: [ipFrame(t, ROUTER_MAC, V1, caR3, caV1, IPPROTO_ICMP)] }, // routed to 5002
    { from: FROM_PEER, frames: [tunnel('nvgre', inner(V1, ROUTER_MAC, caV1, caR3, IPPROTO_ICMP, { icmpType: 0 }), NET_VSID1, UPLINK, PEER, PA_LOCAL, PA_PEER, false)] },
    { from: FROM_V2, frames: [ipFrame(t, R4, V2, caR4, caV2, IPPROTO_ICMP)] }, // IP rewrite out
    { from: FROM_PEER, frames: [ipFrame(u, UPLINK, PEER, PA_RW_LOCAL, PA_RW_PEER, IPPROTO_ICMP, { icmpType: 0 })] }, // and in
    { from: FROM_PEER, frames: run(3, 90000, true) },
    { from: FROM_V1, frames: [superFrame(R1, V1, caR1, caV1, 3)] },
  ];
  return {
    input,
    v1: vmPort('warm-v1', NET_VSID1, 'vm'),
    v2: vmPort('warm-v2', NET_VSID1, 'vm'),
    uplink: vmPort('warm-up0', 0, 'external'),
    hello,
    steps,
    ping,
    pong,
  };
}
