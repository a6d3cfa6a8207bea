// virtualization/api.ts: the contract between the Switch and its virtualization layer (the WNV filter of the
// source articles, at the external port). The switch and its extensions see CAs and VSIDs; below this line, PAs.
//
// Where the switch calls in (all on the data path, synchronous, allocation-free in steady state, never throwing):
//   rx on the external port  -> uplinkIngress(b, i)   decapsulate / answer underlay ARP / drop / leave alone
//   built-in forwarding       -> forward(b, i)         for every frame with m.vsid !== 0 (VM port or decapsulated)
//   tx to the external port   -> encapsulate(b, i)     NVGRE / VXLAN / IP rewrite, in place, in headroom
//   about once a second       -> tick(now)             ARP refresh and aging, pending announcements

import type { DropReason } from '../dataplane/drop.js';
import type { Batch, FrameMeta } from '../dataplane/frame.js';
import type { Millis, PortId } from '../dataplane/types.js';
import type { HostNetworkInput, LookupRule } from './model.js';

/** The ports of the switch, as the layer needs them. Provided by the Switch; valid for one call. */
export interface LocalPorts {
  /** The external port, NO_PORT when the switch has none. */
  readonly external: PortId;
  /** The local VM port of `mac` in virtual subnet `vsid` (learned, else configured with that MAC/VSID), or NO_PORT. */
  find(vsid: number, mac: number): PortId;
  /** Add every up local port of m.vsid except m.inPort (never the external port) to m.dest. */
  floodLocal(m: FrameMeta): void;
  /**
   * The verdict of the sending port's ACLs (m.inPort's out-direction port ACLs and extended ACLs) on frame m as
   * its bytes and m.srcMac/m.dstMac stand: null = allowed (or no ACL, or m.trusted), else the drop reason port
   * policy would give. Counted in the rules' hits; records no connection (the frame will not leave). Called only
   * before the layer answers or drops a frame on its own account (ICMP errors), never per forwarded frame.
   */
  sourceAcl(slab: Uint8Array, m: FrameMeta): DropReason | null;
}

/** Services the Switch gives its layer (control path and slow path only: ARP, announcements). */
export interface VirtualizationHost {
  /** Count a drop against a port (NO_PORT = switch only), as the switch counts its own. */
  countDrop(port: PortId, reason: DropReason): void;
  /** Send one underlay frame (PA ARP request/reply, gratuitous ARP for a PA) out of the external port now. */
  sendUplink(bytes: Uint8Array): boolean;
  /**
   * Originate a frame as the switch in virtual subnet `vsid` (e.g. a gratuitous ARP for a CA that became local):
   * it runs through the extension pipeline and forward() like any frame.
   */
  originate(bytes: Uint8Array, vsid: number): boolean;
}

export interface VirtualizationLayer {
  /**
   * Replace the policy (control path). Rebuilds the tables; records whose PA became ours are announced
   * (gratuitous ARP into their VSID, and for `rewrite` records on the underlay for their PA); next hops of remote
   * PAs are resolved ahead of traffic. null = no virtualization (every hook leaves frames alone).
   */
  setPolicy(input: HostNetworkInput | null): void;
  /**
   * Frame i arrived on the external port and passed outer classification (m.vlan = underlay VLAN, m.vsid = 0,
   * m.etherType/l3Off set). One of:
   * - a tunnel packet for one of our PAs (NVGRE, VXLAN, or IP rewrite to a local CA's PA): decapsulated in
   *   place, m.off/m.len now the inner Ethernet frame, m.vsid its VSID, m.vlan 0, offload fields fixed up; the
   *   switch then re-classifies the inner frame (MACs, EtherType, L3 check) before the pipeline;
   * - an underlay ARP request for one of our PAs: turned into the reply in place, m.trusted = true,
   *   m.consumed = true, m.dest.only(external) (it leaves without entering the VSID world);
   * - an underlay ARP reply / request from a neighbour: learned into the ARP cache, m.consumed = true, no dest;
   * - malformed tunnel packet, unknown VSID, tunnel packet for a PA we do not own: m.drop = reason;
   * - anything else (plain underlay traffic): left alone, vsid 0, forwarded as ordinary L2.
   */
  uplinkIngress(b: Batch, i: number, now: Millis): void;
  /**
   * Built-in forwarding of frame i with m.vsid !== 0 (the switch has learned its source MAC already). Sets
   * m.dest (local VM port, local flood inside the VSID, or the external port for a remote lookup record), or
   * m.drop, or turns the frame into a reply to its sender in place (ARP reply from the policy table, ICMP
   * "fragmentation needed" / "packet too big" when the frame would exceed the tenant MTU after encapsulation, ICMP
   * time exceeded from the router; then m.trusted = true, m.dest.only(m.inPort), and the original's drop is
   * counted through host.countDrop). Before an ICMP error (or a drop for the tenant MTU or TTL) the sender's ACLs
   * judge the original through ports.sourceAcl, as port policy would judge it forwarded: a denied frame is dropped
   * with the ACL's reason and gets no answer. Routed frames (dst MAC = router MAC) get TTL - 1, source MAC =
   * router MAC, destination MAC and m.vsid of the destination record.
   * Never floods to the external port; never crosses routing domains.
   */
  forward(b: Batch, i: number, ports: LocalPorts, now: Millis): void;
  /**
   * Does frame i (a GSO super-frame headed for the external port) need software segmentation first? true for
   * encap/vxlan records (AF_PACKET cannot carry encapsulated GSO), false for rewrite. With tunnelGso (the uplink
   * has a tunnel-GSO TAP: uplink.tunnelOffload) false also for a TCP super-frame of a vxlan record that fits one
   * outer IPv4 packet with a partial checksum and no underlay VLAN: encapsulate() then marks it UDP-tunnel GSO.
   */
  needsSegmentation(b: Batch, i: number, tunnelGso: boolean): boolean;
  /**
   * Frame i (m.vsid !== 0) is about to be sent to the external port: encapsulate or rewrite it in place for its
   * lookup record (outer headers in headroom, m.off/m.len/m.vlan and offload offsets adjusted; the switch saves
   * and restores off/len/vlan/csumStart/hdrLen/gsoType around the send). A GSO frame of a vxlan record (one that
   * needsSegmentation let through) leaves whole as UDP-tunnel GSO: gsoType | GSO_UDP_TUNNEL_IPV4, outerThOff,
   * innerNhOff and hdrLen (through the inner TCP header) set, the outer IPv4 total length and UDP length those of
   * the whole frame, outer IP IDs reserved for every segment. Returns null, or the drop reason (unresolved
   * next hop, record vanished...). Frames with m.vsid === 0 are never passed here.
   */
  encapsulate(b: Batch, i: number, now: Millis): DropReason | null;
  /** ARP retries and aging, deferred announcements. */
  tick(now: Millis): void;
  status(now: Millis): VirtualizationStatus;
}

export interface VsidStatus {
  readonly vsid: number;
  readonly rdid: string;
  readonly rdName: string;
  readonly prefix: string;
  readonly gateway: string | null;
  /** Largest inner IP packet that crosses to every remote record of this VSID without exceeding the underlay MTU. */
  readonly tenantMtu: number;
  readonly records: number;
  readonly localRecords: number;
}

export interface ArpEntryStatus {
  readonly address: string;
  /** "02:..." or null while unresolved. */
  readonly mac: string | null;
  readonly state: 'reachable' | 'stale' | 'incomplete';
  readonly ageMs: number;
}

export interface RecordStatus {
  readonly ca: string;
  readonly vsid: number;
  readonly mac: string;
  readonly pa: string;
  readonly rule: LookupRule;
  readonly local: boolean;
}

export interface VirtualizationStatus {
  readonly host: string;
  readonly switchName: string;
  /** Our PAs ("192.0.2.1/24"). */
  readonly providerAddresses: readonly string[];
  readonly underlayMtu: number;
  readonly routerMac: string;
  readonly vsids: readonly VsidStatus[];
  readonly records: readonly RecordStatus[];
  readonly arp: readonly ArpEntryStatus[];
  /** Layer counters: encapsulated/decapsulated per rule, arpAnswered, paArpAnswered, routed, fragNeeded, ... */
  readonly counters: Readonly<Record<string, number>>;
}
