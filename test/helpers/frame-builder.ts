// test/helpers/frame-builder.ts: a chained builder of test frames on top of the wire emit functions;
// lengths, next-protocol fields and checksums are filled in automatically unless given explicitly.
//
//   frame().eth({ src: 0x020000000001, dst: '02:00:00:00:00:02' }).vlan({ vid: 10, pcp: 3 })
//     .ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 64 }).udp({ sport: 1000, dport: 53 }).payload(32).bytes()
//   frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.2' }).gre({ vsid: 5001, flowId: 0x2a }).eth().ipv4().icmp().bytes()
//   frame().eth().ipv4().udp().vxlan({ vni: 5001 }).eth().arp({ tpa: '10.0.0.2' }).bytes()
//
// Programmer errors (bad address strings, .vlan() without .eth()) throw: this is test code, not the data path.

import { parseIpv4Address, parseIpv6Address } from '../../src/wire/addresses.js';
import { emitArp, ARP_OP_REQUEST, ARP_LEN } from '../../src/wire/arp.js';
import { fillChecksum, pseudoSumIpv4, pseudoSumIpv6 } from '../../src/wire/checksum.js';
import { emitDhcp, dhcpLength, isDhcpServerMessage, type DhcpOption } from '../../src/wire/dhcp.js';
import {
  emitEthernet,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_TEB,
  ETHERTYPE_VLAN,
  ETH_HLEN,
  VLAN_HLEN,
  parseMac,
} from '../../src/wire/ethernet.js';
import { emitGre, greHeaderLength, GRE_PROTO_TEB, nvgreKey } from '../../src/wire/gre.js';
import { emitIcmp, ICMP_ECHO_REQUEST, ICMP_HLEN } from '../../src/wire/icmp.js';
import { emitIcmpv6, icmpv6Length, ICMPV6_ECHO_REQUEST, type Icmpv6Init, type NdOptionInit } from '../../src/wire/icmpv6.js';
import {
  emitIpv4,
  ipv4HeaderLength,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_IPIP,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  type Ipv4Init,
} from '../../src/wire/ipv4.js';
import { emitIpv6, emitIpv6Ext, ipv6ExtLength, IPV6_HLEN, IPV6_NO_NEXT_HEADER, type Ipv6ExtInit } from '../../src/wire/ipv6.js';
import { emitTcp, tcpHeaderLength, type TcpInit } from '../../src/wire/tcp.js';
import { emitUdp, UDP_HLEN, UDP_PORT_DHCP_CLIENT, UDP_PORT_DHCP_SERVER } from '../../src/wire/udp.js';
import { emitVxlan, VXLAN_HLEN, VXLAN_PORT } from '../../src/wire/vxlan.js';

export type MacInput = number | string;
export type Ipv4Input = number | string;
export type Ipv6Input = string | Uint8Array;

export const DEFAULT_SRC_MAC = 0x02_00_00_00_00_01;
export const DEFAULT_DST_MAC = 0x02_00_00_00_00_02;

export function mac(m: MacInput): number {
  if (typeof m === 'number') return m;
  const v = parseMac(m);
  if (v === null) throw new Error(`frame-builder: bad MAC '${m}'`);
  return v;
}

export function ip4(a: Ipv4Input): number {
  if (typeof a === 'number') return a >>> 0;
  const v = parseIpv4Address(a);
  if (v === null) throw new Error(`frame-builder: bad IPv4 address '${a}'`);
  return v;
}

export function ip6(a: Ipv6Input): Uint8Array {
  if (typeof a !== 'string') return a;
  const v = parseIpv6Address(a);
  if (v === null) throw new Error(`frame-builder: bad IPv6 address '${a}'`);
  return v;
}

export interface EthSpec {
  src?: MacInput;
  dst?: MacInput;
  /** EtherType; default from the next layer (0x88b5, local experimental, when nothing follows). */
  type?: number;
}
export interface VlanSpec {
  vid: number;
  pcp?: number;
  dei?: number;
  /** Default 0x8100; 0x88a8 for an 802.1ad S-tag. */
  tpid?: number;
}
export interface ArpSpec {
  op?: number;
  sha?: MacInput;
  spa?: Ipv4Input;
  tha?: MacInput;
  tpa?: Ipv4Input;
  htype?: number;
  ptype?: number;
  hlen?: number;
  plen?: number;
}
export type Ipv4Spec = Omit<Partial<Ipv4Init>, 'src' | 'dst'> & { src?: Ipv4Input; dst?: Ipv4Input };
export interface Ipv6Spec {
  src?: Ipv6Input;
  dst?: Ipv6Input;
  /** Upper-layer protocol (after any extension headers); default from the next layer. */
  nextHeader?: number;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  payloadLength?: number;
  /** Extension headers in order, e.g. [{ type: 0 }, { type: 44, id: 7 }]. */
  ext?: Ipv6ExtInit[];
}
export interface UdpSpec {
  sport?: number;
  dport?: number;
  length?: number;
  /** Written as given (0 = no checksum over IPv4); default computed. */
  checksum?: number;
}
export type TcpSpec = Partial<TcpInit>;
export interface IcmpSpec {
  type?: number;
  code?: number;
  id?: number;
  seq?: number;
  mtu?: number;
  gateway?: Ipv4Input;
  rest?: number;
  checksum?: number;
}
export type Icmpv6Spec = Omit<Partial<Icmpv6Init>, 'target' | 'destination'> & {
  target?: Ipv6Input;
  destination?: Ipv6Input;
  /** Shorthands for the source / target link-layer address options (appended after `options`). */
  sll?: MacInput;
  tll?: MacInput;
  options?: NdOptionInit[];
};
export interface GreSpec {
  protocol?: number;
  key?: number;
  /** NVGRE: key = vsid << 8 | flowId. */
  vsid?: number;
  flowId?: number;
  sequence?: number;
  checksum?: boolean | number;
  rawFlags?: number;
}
export interface VxlanSpec {
  vni: number;
  flags?: number;
}
export interface DhcpSpec {
  op?: number;
  messageType?: number;
  xid?: number;
  secs?: number;
  broadcast?: boolean;
  ciaddr?: Ipv4Input;
  yiaddr?: Ipv4Input;
  siaddr?: Ipv4Input;
  giaddr?: Ipv4Input;
  chaddr?: MacInput;
  hops?: number;
  requestedIp?: Ipv4Input;
  serverId?: Ipv4Input;
  options?: DhcpOption[];
  noEnd?: boolean;
}

type Layer =
  | { k: 'eth'; f: EthSpec; tags: VlanSpec[] }
  | { k: 'arp'; f: ArpSpec }
  | { k: 'ipv4'; f: Ipv4Spec }
  | { k: 'ipv6'; f: Ipv6Spec }
  | { k: 'udp'; f: UdpSpec }
  | { k: 'tcp'; f: TcpSpec }
  | { k: 'icmp'; f: IcmpSpec }
  | { k: 'icmpv6'; f: Icmpv6Spec; init: Icmpv6Init }
  | { k: 'gre'; f: GreSpec }
  | { k: 'vxlan'; f: VxlanSpec }
  | { k: 'dhcp'; f: DhcpSpec }
  | { k: 'raw'; bytes: Uint8Array };

function assertNever(x: never): never {
  throw new Error(`frame-builder: unhandled layer ${JSON.stringify(x)}`);
}

function ipProtocolOf(next: Layer | undefined): number {
  if (next === undefined) return IPV6_NO_NEXT_HEADER;
  switch (next.k) {
    case 'udp':
      return IPPROTO_UDP;
    case 'tcp':
      return IPPROTO_TCP;
    case 'icmp':
      return IPPROTO_ICMP;
    case 'icmpv6':
      return IPPROTO_ICMPV6;
    case 'gre':
      return IPPROTO_GRE;
    case 'ipv4':
      return IPPROTO_IPIP;
    case 'ipv6':
      return IPPROTO_IPV6;
    case 'eth':
    case 'arp':
    case 'vxlan':
    case 'dhcp':
    case 'raw':
      return 253; // RFC 3692 experimental
    default:
      return assertNever(next);
  }
}

function etherTypeOf(next: Layer | undefined): number {
  if (next === undefined) return 0x88b5;
  if (next.k === 'ipv4') return ETHERTYPE_IPV4;
  if (next.k === 'ipv6') return ETHERTYPE_IPV6;
  if (next.k === 'arp') return ETHERTYPE_ARP;
  if (next.k === 'eth') return ETHERTYPE_TEB;
  return 0x88b5;
}

function icmpv6Init(f: Icmpv6Spec): Icmpv6Init {
  const options: NdOptionInit[] = [...(f.options ?? [])];
  if (f.sll !== undefined) options.push({ kind: 'sll', mac: mac(f.sll) });
  if (f.tll !== undefined) options.push({ kind: 'tll', mac: mac(f.tll) });
  const { target, destination, sll: _s, tll: _t, options: _o, ...rest } = f;
  const init: Icmpv6Init = { ...rest, type: f.type ?? ICMPV6_ECHO_REQUEST, options };
  if (target !== undefined) init.target = ip6(target);
  if (destination !== undefined) init.destination = ip6(destination);
  return init;
}

function dhcpInit(f: DhcpSpec): Parameters<typeof emitDhcp>[0] {
  const o: Parameters<typeof emitDhcp>[0] = {};
  if (f.op !== undefined) o.op = f.op;
  if (f.messageType !== undefined) o.messageType = f.messageType;
  o.xid = f.xid ?? 0x12345678;
  if (f.secs !== undefined) o.secs = f.secs;
  if (f.broadcast !== undefined) o.broadcast = f.broadcast;
  if (f.ciaddr !== undefined) o.ciaddr = ip4(f.ciaddr);
  if (f.yiaddr !== undefined) o.yiaddr = ip4(f.yiaddr);
  if (f.siaddr !== undefined) o.siaddr = ip4(f.siaddr);
  if (f.giaddr !== undefined) o.giaddr = ip4(f.giaddr);
  o.chaddr = mac(f.chaddr ?? DEFAULT_SRC_MAC);
  if (f.hops !== undefined) o.hops = f.hops;
  if (f.requestedIp !== undefined) o.requestedIp = ip4(f.requestedIp);
  if (f.serverId !== undefined) o.serverId = ip4(f.serverId);
  if (f.options !== undefined) o.options = f.options;
  if (f.noEnd !== undefined) o.noEnd = f.noEnd;
  return o;
}

function layerLength(l: Layer): number {
  switch (l.k) {
    case 'eth':
      return ETH_HLEN + VLAN_HLEN * l.tags.length;
    case 'arp':
      return ARP_LEN;
    case 'ipv4':
      return ipv4HeaderLength(l.f);
    case 'ipv6': {
      let n = IPV6_HLEN;
      for (const e of l.f.ext ?? []) n += ipv6ExtLength(e);
      return n;
    }
    case 'udp':
      return UDP_HLEN;
    case 'tcp':
      return tcpHeaderLength(l.f);
    case 'icmp':
      return ICMP_HLEN;
    case 'icmpv6':
      return icmpv6Length(l.init);
    case 'gre':
      return greHeaderLength(greKeyed(l.f));
    case 'vxlan':
      return VXLAN_HLEN;
    case 'dhcp':
      return dhcpLength(dhcpInit(l.f));
    case 'raw':
      return l.bytes.length;
    default:
      return assertNever(l);
  }
}

function greKeyed(f: GreSpec): Parameters<typeof emitGre>[0] {
  const g: Parameters<typeof emitGre>[0] = { protocol: f.protocol ?? GRE_PROTO_TEB };
  const key = f.key ?? (f.vsid !== undefined ? nvgreKey(f.vsid, f.flowId ?? 0) : undefined);
  if (key !== undefined) g.key = key;
  if (f.sequence !== undefined) g.sequence = f.sequence;
  if (f.checksum !== undefined) g.checksum = f.checksum;
  if (f.rawFlags !== undefined) g.rawFlags = f.rawFlags;
  return g;
}

export class FrameBuilder {
  private readonly layers: Layer[] = [];
  private minLength = 0;

  eth(f: EthSpec = {}): this {
    this.layers.push({ k: 'eth', f, tags: [] });
    return this;
  }
  /** Add an 802.1Q (or, with tpid 0x88a8, 802.1ad) tag to the Ethernet header just added; call twice for QinQ. */
  vlan(t: VlanSpec): this {
    const last = this.layers[this.layers.length - 1];
    if (last === undefined || last.k !== 'eth') throw new Error('frame-builder: vlan() must follow eth()');
    last.tags.push(t);
    return this;
  }
  /** An S-tag (0x88a8, svid) then a C-tag (0x8100, cvid). */
  qinq(svid: number, cvid: number, pcp = 0): this {
    return this.vlan({ tpid: 0x88a8, vid: svid, pcp }).vlan({ tpid: ETHERTYPE_VLAN, vid: cvid, pcp });
  }
  arp(f: ArpSpec = {}): this {
    this.layers.push({ k: 'arp', f });
    return this;
  }
  ipv4(f: Ipv4Spec = {}): this {
    this.layers.push({ k: 'ipv4', f });
    return this;
  }
  ipv6(f: Ipv6Spec = {}): this {
    this.layers.push({ k: 'ipv6', f });
    return this;
  }
  udp(f: UdpSpec = {}): this {
    this.layers.push({ k: 'udp', f });
    return this;
  }
  tcp(f: TcpSpec = {}): this {
    this.layers.push({ k: 'tcp', f });
    return this;
  }
  icmp(f: IcmpSpec = {}): this {
    this.layers.push({ k: 'icmp', f });
    return this;
  }
  icmpv6(f: Icmpv6Spec = {}): this {
    this.layers.push({ k: 'icmpv6', f, init: icmpv6Init(f) });
    return this;
  }
  gre(f: GreSpec = {}): this {
    this.layers.push({ k: 'gre', f });
    return this;
  }
  /** NVGRE: GRE with key = vsid << 8 | flowId and protocol 0x6558; follow with .eth(). */
  nvgre(vsid: number, flowId = 0): this {
    return this.gre({ vsid, flowId, protocol: GRE_PROTO_TEB });
  }
  vxlan(f: VxlanSpec): this {
    this.layers.push({ k: 'vxlan', f });
    return this;
  }
  dhcp(f: DhcpSpec = {}): this {
    this.layers.push({ k: 'dhcp', f });
    return this;
  }
  /** Payload bytes, or a length (filled with i & 0xff). */
  payload(p: Uint8Array | number): this {
    let bytes: Uint8Array;
    if (typeof p === 'number') {
      bytes = new Uint8Array(p);
      for (let i = 0; i < p; i++) bytes[i] = i & 0xff;
    } else bytes = p;
    this.layers.push({ k: 'raw', bytes });
    return this;
  }
  /** Zero-pad the frame to at least n bytes (60: Ethernet minimum without FCS); lengths exclude the padding. */
  pad(n = 60): this {
    this.minLength = n;
    return this;
  }

  get length(): number {
    let n = 0;
    for (const l of this.layers) n += layerLength(l);
    return Math.max(n, this.minLength);
  }

  /** Write the frame into u8 at off; returns its length. */
  into(u8: Uint8Array, off: number): number {
    const b = this.bytes();
    u8.set(b, off);
    return b.length;
  }

  bytes(): Uint8Array {
    const ls = this.layers;
    const lens = ls.map(layerLength);
    const offs: number[] = [];
    let total = 0;
    for (const l of lens) {
      offs.push(total);
      total += l;
    }
    const out = new Uint8Array(Math.max(total, this.minLength));
    for (let i = 0; i < ls.length; i++) this.emitLayer(out, ls, i, offs[i]!, total - offs[i]!);
    // checksums innermost first: an outer checksum (GRE, ICMP error) covers the inner ones
    for (let i = ls.length - 1; i >= 0; i--) this.checksumLayer(out, ls, i, offs, total - offs[i]!);
    return out;
  }

  private emitLayer(out: Uint8Array, ls: Layer[], i: number, off: number, rest: number): void {
    const l = ls[i]!;
    const next = ls[i + 1];
    switch (l.k) {
      case 'eth': {
        const tags = l.tags.map((t) => ({ tpid: t.tpid ?? ETHERTYPE_VLAN, pcp: t.pcp ?? 0, dei: t.dei ?? 0, vid: t.vid }));
        emitEthernet(
          { dst: mac(l.f.dst ?? DEFAULT_DST_MAC), src: mac(l.f.src ?? DEFAULT_SRC_MAC), tags, etherType: l.f.type ?? etherTypeOf(next) },
          out,
          off,
        );
        return;
      }
      case 'arp': {
        const f = l.f;
        const init: Parameters<typeof emitArp>[0] = {
          op: f.op ?? ARP_OP_REQUEST,
          sha: mac(f.sha ?? DEFAULT_SRC_MAC),
          spa: ip4(f.spa ?? '10.0.0.1'),
          tha: mac(f.tha ?? 0),
          tpa: ip4(f.tpa ?? '10.0.0.2'),
        };
        if (f.htype !== undefined) init.htype = f.htype;
        if (f.ptype !== undefined) init.ptype = f.ptype;
        if (f.hlen !== undefined) init.hlen = f.hlen;
        if (f.plen !== undefined) init.plen = f.plen;
        emitArp(init, out, off);
        return;
      }
      case 'ipv4': {
        const { src, dst, ...rest4 } = l.f;
        emitIpv4(
          {
            ...rest4,
            src: ip4(src ?? '10.0.0.1'),
            dst: ip4(dst ?? '10.0.0.2'),
            protocol: l.f.protocol ?? ipProtocolOf(next),
            totalLength: l.f.totalLength ?? rest,
          },
          out,
          off,
        );
        return;
      }
      case 'ipv6': {
        const f = l.f;
        const ext = f.ext ?? [];
        const upper = f.nextHeader ?? ipProtocolOf(next);
        const init: Parameters<typeof emitIpv6>[0] = {
          src: ip6(f.src ?? 'fd00::1'),
          dst: ip6(f.dst ?? 'fd00::2'),
          nextHeader: ext.length > 0 ? ext[0]!.type : upper,
          payloadLength: f.payloadLength ?? rest - IPV6_HLEN,
        };
        if (f.hopLimit !== undefined) init.hopLimit = f.hopLimit;
        if (f.trafficClass !== undefined) init.trafficClass = f.trafficClass;
        if (f.flowLabel !== undefined) init.flowLabel = f.flowLabel;
        let p = off + emitIpv6(init, out, off);
        for (let j = 0; j < ext.length; j++) {
          p += emitIpv6Ext(ext[j]!, j + 1 < ext.length ? ext[j + 1]!.type : upper, out, p);
        }
        return;
      }
      case 'udp': {
        const f = l.f;
        const dhcpReply = next?.k === 'dhcp' && isDhcpServerMessage(next.f.messageType ?? 0);
        const sport = f.sport ?? (next?.k === 'dhcp' ? (dhcpReply ? UDP_PORT_DHCP_SERVER : UDP_PORT_DHCP_CLIENT) : 49152);
        const dport =
          f.dport ??
          (next?.k === 'vxlan' ? VXLAN_PORT : next?.k === 'dhcp' ? (dhcpReply ? UDP_PORT_DHCP_CLIENT : UDP_PORT_DHCP_SERVER) : 9);
        emitUdp({ sport, dport, length: f.length ?? rest, checksum: f.checksum ?? 0 }, out, off);
        return;
      }
      case 'tcp':
        emitTcp({ ...l.f, sport: l.f.sport ?? 49152, dport: l.f.dport ?? 80 }, out, off);
        return;
      case 'icmp': {
        const f = l.f;
        const { gateway, type, ...r } = f;
        const init: Parameters<typeof emitIcmp>[0] = { ...r, type: type ?? ICMP_ECHO_REQUEST };
        if (gateway !== undefined) init.gateway = ip4(gateway);
        emitIcmp(init, out, off);
        return;
      }
      case 'icmpv6':
        emitIcmpv6(l.init, out, off);
        return;
      case 'gre': {
        const g = greKeyed(l.f);
        if (l.f.protocol === undefined) g.protocol = next?.k === 'ipv4' ? ETHERTYPE_IPV4 : next?.k === 'ipv6' ? ETHERTYPE_IPV6 : GRE_PROTO_TEB;
        emitGre(g, out, off);
        return;
      }
      case 'vxlan':
        emitVxlan(l.f, out, off);
        return;
      case 'dhcp':
        emitDhcp(dhcpInit(l.f), out, off);
        return;
      case 'raw':
        out.set(l.bytes, off);
        return;
      default:
        assertNever(l);
    }
  }

  /** The pseudo-header sum for layer i from the IP layer before it (0 when there is none). */
  private pseudo(out: Uint8Array, ls: Layer[], i: number, offs: number[], protocol: number, len: number): number {
    const ip = ls[i - 1];
    const o = offs[i - 1]!;
    if (ip?.k === 'ipv4') return pseudoSumIpv4(ip4(ip.f.src ?? '10.0.0.1'), ip4(ip.f.dst ?? '10.0.0.2'), protocol, len);
    if (ip?.k === 'ipv6') return pseudoSumIpv6(out, o + 8, o + 24, protocol, len);
    return 0;
  }

  private checksumLayer(out: Uint8Array, ls: Layer[], i: number, offs: number[], rest: number): void {
    const l = ls[i]!;
    const off = offs[i]!;
    switch (l.k) {
      case 'udp':
        if (l.f.checksum === undefined) fillChecksum(out, off, rest, 6, this.pseudo(out, ls, i, offs, IPPROTO_UDP, rest), true);
        return;
      case 'tcp':
        if (l.f.checksum === undefined) fillChecksum(out, off, rest, 16, this.pseudo(out, ls, i, offs, IPPROTO_TCP, rest));
        return;
      case 'icmp':
        if (l.f.checksum === undefined) fillChecksum(out, off, rest, 2);
        return;
      case 'icmpv6':
        if (l.f.checksum === undefined) fillChecksum(out, off, rest, 2, this.pseudo(out, ls, i, offs, IPPROTO_ICMPV6, rest));
        return;
      case 'gre':
        if (l.f.checksum === true) fillChecksum(out, off, rest, 4);
        return;
      case 'eth':
      case 'arp':
      case 'ipv4':
      case 'ipv6':
      case 'vxlan':
      case 'dhcp':
      case 'raw':
        return;
      default:
        assertNever(l);
    }
  }
}

export function frame(): FrameBuilder {
  return new FrameBuilder();
}
