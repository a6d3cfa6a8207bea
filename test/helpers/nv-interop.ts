// test/helpers/nv-interop.ts: what the interop tests against an independent tunnel peer (OVS GRE, kernel vxlan)
// share: the baseline topology's hooks, one xswitch host with a tenant VM that knows the peer, and the checks that
// do not depend on the encapsulation (ping and TCP both ways with GRO, another VSID/VNI reaching nothing and being
// counted as unknown-vsid). Each test keeps its own peer, underlay filters and peer-side counters.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { MultiHost, type NvVm } from './hosts.js';
import { Topology } from './netns.js';
import type { NvPeer } from './nv-peers.js';
import { iperf3, ping, pingUntilReply, type PingResult } from './peers.js';
import { dropCount } from './xswitchd.js';

/** A Topology created before and cleaned up after the enclosing describe's tests. */
export function topologyPerSuite(): () => Topology {
  let t: Topology | undefined;
  before(() => {
    t = Topology.create();
  });
  after(async () => {
    await t?.cleanup();
  });
  return () => t!;
}

export interface XswitchSide {
  readonly mh: MultiHost;
  readonly vm: NvVm;
}

/**
 * One xswitch host (h1) with tenant red (VSID `vsid`, 10.0.0.0/24) and VM red1 (10.0.0.5) under `rule`, and a
 * lookup record for the peer's VM (`peer.ca`, `peer.mac`) at `peer.pa`. `extra` runs before the document is
 * applied (e.g. `remotes`).
 */
export async function xswitchSide(
  vsid: number, rule: 'encap' | 'vxlan', peer: { ca: string; mac: string; pa: string },
  extra: (mh: MultiHost) => void = () => undefined,
): Promise<XswitchSide> {
  const mh = await MultiHost.create({ hosts: 1 });
  mh.addTenant({ name: 'red', subnets: [{ vsid, prefix: '10.0.0.0/24', gateway: '10.0.0.1' }] });
  const vm = await mh.addVm({ name: 'red1', host: 'h1', vsid, ca: '10.0.0.5', mac: '02:00:00:00:00:05', rule });
  mh.extra.records.push({ ca: peer.ca, vsid, mac: peer.mac, pa: peer.pa, rule, vm: null });
  extra(mh);
  await mh.applyAll();
  return { mh, vm };
}

/**
 * Peer VM -> xswitch VM first (the peer's ARP crosses the tunnel), then 5 pings each way, all answered.
 * `diagnose` adds the peer's state to the message when the first reply never comes.
 */
export async function pingBothWays(
  { mh, vm }: XswitchSide, peer: NvPeer, diagnose: () => Promise<string>,
): Promise<{ p1: PingResult; p2: PingResult }> {
  const warm = await pingUntilReply(mh.topo, peer.vmNs, vm.ca, 20_000);
  assert.ok(warm, `peer VM never got a reply from ${vm.ca}\n${await diagnose()}\n` +
    `counters: ${JSON.stringify(await mh.counters('h1'))}\n${mh.logs()}`);
  const p1 = await ping(mh.topo, peer.vmNs, vm.ca, { count: 5, interval: 0.1 });
  const p2 = await mh.ping(vm, peer.vmIp, { count: 5, interval: 0.1 });
  console.log(`# ping peer->xswitch ${p1.received}/5 rtt ${p1.rttAvgMs} ms, xswitch->peer ${p2.received}/5 rtt ${p2.rttAvgMs} ms`);
  assert.equal(p1.received, 5, p1.raw.stdout);
  assert.equal(p2.received, 5, p2.raw.stdout);
  return { p1, p2 };
}

/** iperf3 both ways (2 s each); the peer's MTU-size segments must be coalesced by GRO for xswitch's VM. */
export async function tcpBothWays({ mh, vm }: XswitchSide, peer: NvPeer, groWhy: string): Promise<void> {
  const groBefore = (await mh.counters('h1')).switch.gro?.superFrames ?? 0;
  const tcp1 = await iperf3(mh.topo, vm.ns, vm.ca, peer.vmNs, { seconds: 2 });
  assert.ok(tcp1.ok, `iperf3 peer -> xswitch: ${tcp1.error} ${tcp1.client.stderr}`);
  const gro = ((await mh.counters('h1')).switch.gro?.superFrames ?? 0) - groBefore;
  console.log(`# GRO: ${gro} super-frames built from the peer's segments`);
  assert.ok(gro > 0, groWhy);
  const tcp2 = await iperf3(mh.topo, peer.vmNs, peer.vmIp, vm.ns, { seconds: 2 });
  assert.ok(tcp2.ok, `iperf3 xswitch -> peer: ${tcp2.error} ${tcp2.client.stderr}`);
  console.log(`# iperf3 peer->xswitch ${(tcp1.bitsPerSecond / 1e6).toFixed(0)} Mbit/s (${tcp1.bytes} B), ` +
    `xswitch->peer ${(tcp2.bitsPerSecond / 1e6).toFixed(0)} Mbit/s (${tcp2.bytes} B)`);
}

/**
 * With the peer already on another VSID/VNI (`what`): 4 pings each way get no answer, `peerChecks` (the peer's own
 * counters) runs, none of the peer's frames reach xswitch's VM, and xswitch counts unknown-vsid drops (against
 * the uplink port and/or the switch totals, whichever the switch does); `summary` of that count is logged first.
 */
export async function isolatedOnOtherVsid(
  { mh, vm }: XswitchSide, peer: NvPeer, vsid: number, what: 'VSID' | 'VNI', peerChecks: () => Promise<void>,
  summary: (unknown: number) => string,
): Promise<void> {
  const before = await mh.counters('h1');
  const vmCap = await mh.capture(vm.ns, vm.tap, { seconds: 30, name: 'red1' });
  const p1 = await ping(mh.topo, peer.vmNs, vm.ca, { count: 4, interval: 0.2 });
  const p2 = await mh.ping(vm, peer.vmIp, { count: 4, interval: 0.2 });
  assert.equal(p1.received, 0, p1.raw.stdout);
  assert.equal(p2.received, 0, p2.raw.stdout);
  await peerChecks();
  await vmCap.stop();
  assert.equal(await vmCap.count(`ip.src == ${peer.vmIp} || arp.src.proto_ipv4 == ${peer.vmIp}`), 0,
    `a frame of ${what} ${vsid + 1} reached the VSID ${vsid} VM`);
  const after = await mh.counters('h1');
  const unknown = Math.max(dropCount(after.switch, 'unknown-vsid') - dropCount(before.switch, 'unknown-vsid'),
    dropCount(after.ports['uplink'], 'unknown-vsid') - dropCount(before.ports['uplink'], 'unknown-vsid'));
  console.log(summary(unknown));
  assert.ok(unknown > 0, `no unknown-vsid drop counted: ${JSON.stringify(after)}`);
  assert.ok(mh.allRunning(), mh.logs());
}
