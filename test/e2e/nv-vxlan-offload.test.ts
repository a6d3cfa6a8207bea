// test/e2e/nv-vxlan-offload.test.ts: uplink.tunnelOffload: VXLAN TCP super-frames cross the underlay whole (UDP-tunnel
// GSO through a TAP bridged to up0), and the kernel segments them correctly when up0 cannot: two hosts, tenants red
// and blue with identical CAs, real iperf3 streams, underlay counters and tshark on the underlay.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tunnelNames } from '../../src/control/uplink-bridge.js';
import { type CaptureLike, decodeWithPrefs, MultiHost, NV_SWITCH, type NvVm, UPLINK_IF } from '../helpers/hosts.js';
import { run, waitFor } from '../helpers/proc.js';

const RED_VSID = 5001;
const BLUE_VSID = 6001;
const RED_PORT = 5411;
const BLUE_PORT = 5422;
const UNDERLAY_MTU = 1600;
/** Largest underlay frame without GSO: the MTU plus the Ethernet header. */
const MAX_WIRE_FRAME = UNDERLAY_MTU + 14;
const NAMES = tunnelNames(NV_SWITCH);

interface LinkStats {
  rxBytes: number;
  rxPackets: number;
}

describe('uplink tunnelOffload: VXLAN super-frames on the underlay', { timeout: 600_000 }, () => {
  let mh: MultiHost;
  let red1: NvVm;
  let red2: NvVm;
  let blue1: NvVm;
  let blue2: NvVm;
  /** The underlay bridge port that is h1's up0 peer: its rx is what h1 sends. */
  let p1: string;

  async function stats(ns: string, ifname: string): Promise<LinkStats> {
    const r = await mh.topo.execOk(ns, ['cat', `/sys/class/net/${ifname}/statistics/rx_bytes`, `/sys/class/net/${ifname}/statistics/rx_packets`]);
    const [b, p] = r.stdout.trim().split('\n').map(Number);
    return { rxBytes: b ?? 0, rxPackets: p ?? 0 };
  }

  /** iperf3 client -> server (bounded); returns bytes and what h1's uplink put on the underlay meanwhile. */
  async function stream(server: NvVm, client: NvVm, port: number, seconds = 2): Promise<{ bytes: number; mbps: number; perFrame: number; frames: number }> {
    const before = await stats(mh.underlay, p1);
    const r = await mh.iperf3(server, client, { port, seconds });
    const afterS = await stats(mh.underlay, p1);
    assert.ok(r.ok, `iperf3 ${client.name} -> ${server.name}: ${r.error ?? ''} ${r.client.stderr}\n${mh.logs()}`);
    assert.ok(r.bytes > 1_000_000, `iperf3 ${client.name} -> ${server.name} moved only ${r.bytes} bytes`);
    const frames = afterS.rxPackets - before.rxPackets;
    return { bytes: r.bytes, mbps: r.bitsPerSecond / 1e6, frames, perFrame: frames > 0 ? (afterS.rxBytes - before.rxBytes) / frames : 0 };
  }

  async function linkJson(ns: string, ifname: string): Promise<Record<string, unknown> | null> {
    const r = await run(['ip', '-n', ns, '-j', '-d', 'link', 'show', 'dev', ifname]);
    if (r.code !== 0) return null;
    return (JSON.parse(r.stdout) as Record<string, unknown>[])[0] ?? null;
  }

  async function masterOfUplink(ns: string): Promise<string | null> {
    const j = await linkJson(ns, UPLINK_IF);
    return typeof j?.['master'] === 'string' ? j['master'] : null;
  }

  before(async () => {
    mh = await MultiHost.create({ hosts: 2, underlayMtu: UNDERLAY_MTU });
    p1 = mh.topo.ifname('p1');
    for (const h of mh.hosts) mh.uplinkOptions.set(h.name, { tunnelOffload: true });
    mh.addTenant({ name: 'red', subnets: [{ vsid: RED_VSID, prefix: '10.0.0.0/24', gateway: '10.0.0.1' }] });
    mh.addTenant({ name: 'blue', subnets: [{ vsid: BLUE_VSID, prefix: '10.0.0.0/24', gateway: '10.0.0.1' }] });
    red1 = await mh.addVm({ name: 'red1', host: 'h1', vsid: RED_VSID, ca: '10.0.0.5', mac: '02:00:00:00:00:05', rule: 'vxlan' });
    red2 = await mh.addVm({ name: 'red2', host: 'h2', vsid: RED_VSID, ca: '10.0.0.6', mac: '02:00:00:00:00:06', rule: 'vxlan' });
    blue1 = await mh.addVm({ name: 'blue1', host: 'h1', vsid: BLUE_VSID, ca: '10.0.0.5', mac: '02:00:00:00:00:05', rule: 'vxlan' });
    blue2 = await mh.addVm({ name: 'blue2', host: 'h2', vsid: BLUE_VSID, ca: '10.0.0.6', mac: '02:00:00:00:00:06', rule: 'vxlan' });
    await mh.applyAll();
    for (const [a, b] of [[red1, red2], [red2, red1], [blue1, blue2], [blue2, blue1]] as const) {
      assert.ok(await mh.pingUntilReply(a, b.ca, 20_000), `${a.name} -> ${b.name}: no reply\n${mh.logs()}`);
    }
  });

  after(async () => {
    await mh?.cleanup();
  });

  it('makes the bridge and a TAP port that never receives, with the uplink in the bridge', async () => {
    for (const h of mh.hosts) {
      assert.equal(await masterOfUplink(h.ns), NAMES.bridge, `${h.name}: up0 in ${NAMES.bridge}`);
      const tap = await linkJson(h.ns, NAMES.tap);
      assert.ok(tap !== null, `${h.name}: TAP ${NAMES.tap} exists`);
      assert.equal(tap['master'], NAMES.bridge);
      const info = (tap['linkinfo'] as { info_slave_data?: Record<string, unknown> } | undefined)?.info_slave_data ?? {};
      for (const k of ['learning', 'flood', 'mcast_flood', 'bcast_flood']) assert.equal(info[k], false, `${h.name}: ${NAMES.tap} ${k} off: ${JSON.stringify(info)}`);
      const br = await linkJson(h.ns, NAMES.bridge);
      const bri = (br?.['linkinfo'] as { info_data?: Record<string, unknown> } | undefined)?.info_data ?? {};
      assert.equal(bri['stp_state'], 0, `${h.name}: stp off`);
    }
  });

  it('carries both tenants as VXLAN super-frames (one VNI each), decoded by tshark with valid inner TCP headers', async (tc) => {
    const ul: CaptureLike = await mh.capture(mh.underlay, p1, { seconds: 120, snaplen: 200, bpf: 'udp dst port 4789', name: 'offload-on' });
    let red;
    let blue;
    try {
      red = await stream(red2, red1, RED_PORT);
      blue = await stream(blue2, blue1, BLUE_PORT);
    } finally {
      await ul.stop();
    }
    tc.diagnostic(`red ${red.mbps.toFixed(0)} Mbit/s, ${red.perFrame.toFixed(0)} B/frame on the underlay; blue ${blue.mbps.toFixed(0)} Mbit/s, ${blue.perFrame.toFixed(0)} B/frame`);
    assert.ok(red.perFrame > MAX_WIRE_FRAME, `red: ${red.perFrame.toFixed(0)} B/frame on the underlay: no super-frames\n${mh.logs()}`);
    assert.ok(blue.perFrame > MAX_WIRE_FRAME, `blue: ${blue.perFrame.toFixed(0)} B/frame on the underlay: no super-frames`);
    const rows = await decodeWithPrefs(ul.file, [], 'vxlan && tcp', ['frame.len', 'ip.len', 'udp.length', 'vxlan.vni', 'tcp.dstport', 'tcp.srcport', 'ip.src', 'ip.dst', 'udp.checksum']);
    const big = rows.filter((r) => Number(r[0]) > MAX_WIRE_FRAME);
    tc.diagnostic(`${rows.length} VXLAN TCP frames captured, ${big.length} over ${MAX_WIRE_FRAME} bytes`);
    assert.ok(big.length > 10, `super-frames in the capture: ${big.length} (${ul.file})`);
    for (const r of big.slice(0, 200)) {
      const frameLen = Number(r[0]);
      const ipLen = (r[1] ?? '').split(',').map(Number);
      // outer IPv4 and UDP lengths are those of the whole super-frame
      assert.equal(ipLen[0], frameLen - 14, `outer IPv4 total length of a ${frameLen}-byte frame: ${r.join(' ')}`);
      assert.equal(Number(r[2]), frameLen - 34, `outer UDP length: ${r.join(' ')}`);
      assert.equal((r[6] ?? '').split(',')[0], mh.host('h1').pa);
      assert.equal((r[7] ?? '').split(',')[0], mh.host('h2').pa);
      assert.equal(Number(r[8]), 0, 'outer UDP checksum 0');
      const vni = Number(r[3]);
      const port = Number(r[4]);
      assert.ok((vni === RED_VSID && port === RED_PORT) || (vni === BLUE_VSID && port === BLUE_PORT), `tenant traffic under its own VNI only: ${r.join(' ')}`);
    }
    assert.ok(big.some((r) => Number(r[3]) === RED_VSID) && big.some((r) => Number(r[3]) === BLUE_VSID), 'both tenants as super-frames');
    const c = await mh.counters('h1');
    assert.equal(c.switch.drops['gso-unsupported'] ?? 0, 0, JSON.stringify(c.switch.drops));
    // the bridge hands the TAP nothing (its tx is what the kernel queues for the TAP's reader), in either host
    for (const h of mh.hosts) {
      const t = await mh.topo.execOk(h.ns, ['cat', `/sys/class/net/${NAMES.tap}/statistics/tx_packets`, `/sys/class/net/${NAMES.tap}/statistics/rx_packets`]);
      const [toTap, fromTap] = t.stdout.trim().split('\n').map(Number);
      tc.diagnostic(`${h.name}: ${NAMES.tap} got ${toTap} frames from the bridge, sent ${fromTap}`);
      assert.equal(toTap, 0, `${h.name}: frames forwarded to the TAP`);
    }
    const v = await mh.virt<{ counters: Record<string, number> }>('h1');
    assert.ok((v.counters['encapsulatedVxlanGso'] ?? 0) > 100, `layer counters: ${JSON.stringify(v.counters)}`);
  });

  it('the kernel segments them correctly when up0 cannot: MTU-size VXLAN with verified inner TCP and outer IPv4 checksums', async (tc) => {
    const h1 = mh.host('h1');
    const feats = (await mh.topo.execOk(h1.ns, ['ethtool', '-k', UPLINK_IF])).stdout;
    assert.match(feats, /tx-udp_tnl-segmentation: on/, `veth offers tunnel TSO: ${feats}`);
    // no tunnel TSO and no checksum offload: the kernel segments in software and fills every checksum itself
    await mh.topo.execOk(h1.ns, ['ethtool', '-K', UPLINK_IF, 'tx-udp_tnl-segmentation', 'off', 'tx-udp_tnl-csum-segmentation', 'off', 'tx', 'off']);
    try {
      const after = (await mh.topo.execOk(h1.ns, ['ethtool', '-k', UPLINK_IF])).stdout;
      assert.match(after, /tx-udp_tnl-segmentation: off/);
      // whole frames (checksums verified), one in eight by outer IP ID so the file stays small; h1's only (the
      // capture also sees h2's, whose checksums its own offload leaves partial)
      const ul: CaptureLike = await mh.capture(mh.underlay, p1, { seconds: 120, snaplen: 262144, bpf: 'udp dst port 4789 and (ip[4:2] & 7) == 0', name: 'offload-sw' });
      let red;
      try {
        red = await stream(red2, red1, RED_PORT, 2);
      } finally {
        await ul.stop();
      }
      tc.diagnostic(`software segmentation: red ${red.mbps.toFixed(0)} Mbit/s, ${red.perFrame.toFixed(0)} B/frame on the underlay`);
      assert.ok(red.perFrame <= MAX_WIRE_FRAME, `${red.perFrame.toFixed(0)} B/frame: frames over the MTU left up0`);
      const rows = await decodeWithPrefs(ul.file, ['tcp.check_checksum:TRUE', 'ip.check_checksum:TRUE'], `vxlan && tcp.len > 0 && tcp.port == ${RED_PORT} && ip.src == ${h1.pa}`,
        ['frame.len', 'ip.len', 'ip.checksum.status', 'tcp.checksum.status', 'vxlan.vni', 'udp.length', 'ip.id']);
      tc.diagnostic(`${rows.length} VXLAN data segments captured`);
      assert.ok(rows.length > 50, `VXLAN TCP data segments in the capture: ${rows.length} (${ul.file})`);
      const mtuSize = rows.filter((r) => Number(r[0]) >= 1500).length;
      assert.ok(mtuSize > rows.length / 2, `mostly MTU-size segments: ${mtuSize} of ${rows.length}`);
      for (const r of rows) {
        const frameLen = Number(r[0]);
        const ipLen = (r[1] ?? '').split(',').map(Number);
        assert.ok(frameLen <= MAX_WIRE_FRAME, `frame of ${frameLen} bytes`);
        assert.equal(ipLen[0], frameLen - 14, `outer IPv4 total length per segment: ${r.join(' ')}`);
        assert.equal(Number(r[5]), frameLen - 34, `outer UDP length per segment: ${r.join(' ')}`);
        assert.equal(r[2], '1,1', `outer and inner IPv4 header checksums good: ${r.join(' ')}`);
        assert.equal(r[3], '1', `inner TCP checksum good: ${r.join(' ')}`);
        assert.equal(Number(r[4]), RED_VSID);
      }
      // an outer IP ID per segment, as the kernel's own vxlan gives them (not one per super-frame); the sample
      // holds at most 8192 values (IDs = 0 mod 8) and the 16-bit ID may wrap during the stream
      const ids = new Set(rows.map((r) => (r[6] ?? '').split(',')[0]));
      assert.ok(ids.size > Math.min(rows.length, 8192) * 0.9, `outer IP IDs mostly distinct: ${ids.size} of ${rows.length}`);
    } finally {
      await mh.topo.execOk(h1.ns, ['ethtool', '-K', UPLINK_IF, 'tx-udp_tnl-segmentation', 'on', 'tx-udp_tnl-csum-segmentation', 'on', 'tx', 'on']);
    }
    const back = await stream(red2, red1, RED_PORT);
    assert.ok(back.perFrame > MAX_WIRE_FRAME, `super-frames again with tunnel TSO back on: ${back.perFrame.toFixed(0)} B/frame`);
  });

  it('keeps working across restarts: SIGKILL adopts the bridge, a clean stop removes it and a start makes it again', async (tc) => {
    const h1 = mh.host('h1');
    const h2 = mh.host('h2');
    await h1.d.kill('SIGKILL');
    assert.equal(await masterOfUplink(h1.ns), NAMES.bridge, 'h1: the bridge outlives a killed daemon');
    await h2.d.stop();
    await waitFor(async () => (await linkJson(h2.ns, NAMES.bridge)) === null, { timeout: 10_000, what: 'h2 bridge removed on stop' });
    assert.equal(await masterOfUplink(h2.ns), null, 'h2: up0 out of any bridge after a clean stop');
    const up = await linkJson(h2.ns, UPLINK_IF);
    assert.ok(Array.isArray(up?.['flags']) && (up['flags'] as string[]).includes('UP'), 'h2: up0 still up');
    await h1.d.start();
    await h2.d.start();
    for (const vm of [...h1.vms, ...h2.vms]) {
      vm.plugged = false;
      await mh.plug(vm);
    }
    assert.match(h1.d.logTail(20_000), /tunnel-offload bridge adopted/);
    assert.match(h2.d.logTail(20_000), /tunnel-offload bridge created/);
    for (const h of [h1, h2]) assert.equal(await masterOfUplink(h.ns), NAMES.bridge, `${h.name}: up0 in the bridge again`);
    assert.ok(await mh.pingUntilReply(red1, red2.ca, 20_000), `red after restart\n${mh.logs()}`);
    assert.ok(await mh.pingUntilReply(blue1, blue2.ca, 20_000), `blue after restart\n${mh.logs()}`);
    const r = await stream(red2, red1, RED_PORT);
    tc.diagnostic(`after restart: ${r.mbps.toFixed(0)} Mbit/s, ${r.perFrame.toFixed(0)} B/frame`);
    assert.ok(r.perFrame > MAX_WIRE_FRAME, `super-frames after restart: ${r.perFrame.toFixed(0)} B/frame`);
  });

  it('removing the option removes the bridge and the TAP and restores the uplink; traffic goes on segmented', async (tc) => {
    for (const h of mh.hosts) mh.uplinkOptions.delete(h.name);
    await mh.applyAll();
    for (const h of mh.hosts) {
      assert.equal(await linkJson(h.ns, NAMES.bridge), null, `${h.name}: bridge gone`);
      assert.equal(await linkJson(h.ns, NAMES.tap), null, `${h.name}: TAP gone`);
      assert.equal(await masterOfUplink(h.ns), null, `${h.name}: up0 in no bridge`);
    }
    assert.ok(await mh.pingUntilReply(red1, red2.ca, 20_000), `red without the option\n${mh.logs()}`);
    const r = await stream(red2, red1, RED_PORT);
    tc.diagnostic(`without tunnelOffload: ${r.mbps.toFixed(0)} Mbit/s, ${r.perFrame.toFixed(0)} B/frame`);
    assert.ok(r.perFrame <= MAX_WIRE_FRAME, `segmented before encapsulation again: ${r.perFrame.toFixed(0)} B/frame`);
  });
});
