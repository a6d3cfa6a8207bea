// test/e2e/nv-ipv6.test.ts: IPv6 customer addresses over an IPv4 underlay. Two hosts, red and blue with the SAME
// dual-stack CAs and MACs: `ping -6` across hosts works per tenant with NVGRE (and VXLAN); every neighbor
// solicitation is answered by the local switch (tshark on the underlay: no NS inside GRE; the VM sees the NA);
// tenants stay isolated; on a 1500-byte underlay `ping -6 -M do` of the tenant MTU passes and one byte more gets
// "Packet too big" with the tenant MTU; IPv6 is routed between two subnets of one routing domain.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MultiHost, type NvVm } from '../helpers/hosts.js';
import { dropCount, type Counters } from '../helpers/xswitchd.js';

const UNDERLAY_MTU = 1500;
/** IPv6 40 + ICMPv6 8. */
const PING6_HDR = 48;

function mtuDrops(c: Counters): number {
  const ports = Object.values(c.ports).reduce((a, p) => a + dropCount(p, 'tenant-mtu-exceeded'), 0);
  return Math.max(ports, dropCount(c.switch, 'tenant-mtu-exceeded'));
}

/** The MTU ping -6 reports for a packet too big (from the switch, or the cached PMTU afterwards), or null. */
function ptbMtu(out: string): number | null {
  const m = /Packet too big: mtu=(\d+)|message too long, mtu[=:] ?(\d+)/.exec(out);
  return m === null ? null : Number(m[1] ?? m[2]);
}

describe('IPv6 CAs across two hosts (red and blue with the same CAs and MACs)', { timeout: 400_000 }, () => {
  let mh: MultiHost;
  const vm: Record<string, NvVm> = {};
  before(async () => {
    mh = await MultiHost.create({ hosts: 2, underlayMtu: UNDERLAY_MTU });
    for (const [t, base] of [['red', 5000], ['blue', 6000]] as const) {
      mh.addTenant({ name: t, subnets: [
        { vsid: base + 1, prefix: '10.0.0.0/24', gateway: '10.0.0.1', prefix6: 'fd00:1::/64', gateway6: 'fd00:1::1' },
        { vsid: base + 2, prefix: '10.0.1.0/24', gateway: '10.0.1.1', prefix6: 'fd00:2::/64', gateway6: 'fd00:2::1' },
      ] });
      vm[`${t}1`] = await mh.addVm({ name: `${t}1`, host: 'h1', vsid: base + 1, ca: '10.0.0.5', ca6: 'fd00:1::5', mac: '02:00:00:00:00:05' });
      vm[`${t}2`] = await mh.addVm({ name: `${t}2`, host: 'h2', vsid: base + 1, ca: '10.0.0.6', ca6: 'fd00:1::6', mac: '02:00:00:00:00:06' });
    }
    // a second red subnet on host 2 for the distributed router
    vm['red3'] = await mh.addVm({ name: 'red3', host: 'h2', vsid: 5002, ca: '10.0.1.7', ca6: 'fd00:2::7', mac: '02:00:00:00:00:07' });
    await mh.applyAll();
  });
  after(async () => {
    await mh?.cleanup();
  });

  it('ping -6 crosses hosts per tenant over NVGRE; every NS is answered locally (none inside GRE); tenants isolated', async () => {
    const under = await mh.captureUnderlay({ seconds: 90, bpf: 'ip', name: 'underlay-v6' });
    const red1 = vm['red1']!;
    const red2 = vm['red2']!;
    const blue1 = vm['blue1']!;
    const blue2 = vm['blue2']!;
    const blueCap = await mh.capture(blue2.ns, blue2.tap, { seconds: 60, name: 'blue2-v6', bpf: 'icmp6' });
    const redCap = await mh.capture(red1.ns, red1.tap, { seconds: 60, name: 'red1-v6', bpf: 'icmp6' });
    for (const v of [red1, red2, blue1, blue2]) await mh.topo.exec(v.ns, ['ip', '-6', 'neigh', 'flush', 'dev', v.tap]);
    const red = await mh.ping(red1, 'fd00:1::6', { count: 5, interval: 0.2, extra: ['-6'] });
    assert.equal(red.received, 5, `red ping -6: ${red.raw.stdout} ${red.raw.stderr}\n${mh.logs()}`);
    // blue's namespace saw none of red's echo requests (the same addresses and MACs)
    await redCap.waitCount('icmpv6.type == 136 && icmpv6.nd.na.target_address == fd00:1::6', 1);
    const blueSawRed = await blueCap.count('icmpv6.type == 128');
    await blueCap.stop();
    await redCap.stop();
    assert.equal(blueSawRed, 0, 'a red echo request reached blue');
    const na = await redCap.fields('icmpv6.type == 136', ['eth.src', 'icmpv6.nd.na.flag.s', 'icmpv6.opt.linkaddr']);
    console.log(`# red1 got ${na.length} NA(s) from the switch: ${JSON.stringify(na[0])}`);
    const blue = await mh.ping(blue1, 'fd00:1::6', { count: 5, interval: 0.2, extra: ['-6'] });
    assert.equal(blue.received, 5, `blue ping -6: ${blue.raw.stdout} ${blue.raw.stderr}`);

    const echo = await under.waitCount('gre && icmpv6.type == 128', 10);
    await under.stop();
    const keys = new Set((await under.fields('gre && icmpv6.type == 128', ['gre.key'])).map((r) => Number(r[0]) >>> 8));
    const nsInside = await under.count('gre && icmpv6.type == 135');
    const anyNd = await under.count('icmpv6.type >= 133 && icmpv6.type <= 137');
    console.log(`# underlay: ${echo} ICMPv6 echo requests in NVGRE, VSIDs ${[...keys].join(',')}; NS inside GRE: ${nsInside}; ND anywhere: ${anyNd}`);
    assert.deepEqual([...keys].sort(), [5001, 6001]);
    assert.equal(nsInside, 0, 'a neighbor solicitation crossed the underlay');
    assert.equal(anyNd, 0, 'neighbor discovery crossed the underlay');
    const v1 = await mh.virt<{ counters: Record<string, number> }>('h1');
    assert.ok((v1.counters['ndAnswered'] ?? 0) >= 2, JSON.stringify(v1.counters));
    console.log(`# h1 ndAnswered ${v1.counters['ndAnswered']}`);
    assert.ok(mh.allRunning(), mh.logs());
  });

  it('xsctl shows the IPv6 prefix and records; ping -6 -M do -s 1410 passes, -s 1411 gets "Packet too big" mtu 1458', async () => {
    const rows = await mh.vsidList('h1');
    const r = rows.find((x) => x.vsid === 5001);
    assert.ok(r !== undefined && r.prefix.includes('fd00:1::/64') && r.tenantMtu === UNDERLAY_MTU - 42, JSON.stringify(rows));
    const recs = await mh.recordList('h1');
    assert.ok(recs.some((x) => x.ca === 'fd00:1::6' && x.vsid === 5001 && x.mac === '02:00:00:00:00:06'), JSON.stringify(recs));
    const text = (await mh.host('h1').d.xsctlOk(['network'])).stdout;
    assert.match(text, /5001\s+10\.0\.0\.0\/24 fd00:1::\/64\s+10\.0\.0\.1 fd00:1::1/, text);
    assert.match(text, /fd00:1::6\s+5001\s+02:00:00:00:00:06/, text);
    const red1 = vm['red1']!;
    const fit = UNDERLAY_MTU - 42 - PING6_HDR;
    const ok = await mh.ping(red1, 'fd00:1::6', { count: 3, interval: 0.2, extra: ['-6', '-M', 'do', '-s', String(fit)] });
    assert.equal(ok.received, 3, `-s ${fit}: ${ok.raw.stdout} ${ok.raw.stderr}`);
    const cap = await mh.capture(red1.ns, red1.tap, { seconds: 30, name: 'red1-ptb', bpf: 'icmp6' });
    const before = await mh.counters('h1');
    const big = await mh.ping(red1, 'fd00:1::6', { count: 3, interval: 0.2, extra: ['-6', '-M', 'do', '-s', String(fit + 1)] });
    const out = big.raw.stdout + big.raw.stderr;
    assert.equal(big.received, 0, out);
    assert.equal(ptbMtu(out), UNDERLAY_MTU - 42, `ping output: ${out}`);
    const ptb = await cap.waitCount('icmpv6.type == 2 && icmpv6.mtu == 1458 && icmpv6.checksum.status == 1', 1);
    await cap.stop();
    const after = await mh.counters('h1');
    console.log(`# -s ${fit}: 3/3; -s ${fit + 1}: "${/(Packet too big[^\n]*|message too long[^\n]*)/.exec(out)?.[0] ?? ''}"; ` +
      `${ptb} ICMPv6 packet too big in the VM; tenant-mtu-exceeded +${mtuDrops(after) - mtuDrops(before)}`);
    assert.ok(mtuDrops(after) - mtuDrops(before) >= 1, `tenant-mtu-exceeded not counted: ${JSON.stringify(after)}`);
  });

  it('TCP over IPv6 (iperf3, bounded) crosses hosts over NVGRE from a sender that never learned the path MTU', async () => {
    // blue2 -> blue1: blue2 has not sent anything big yet, so its 1500-byte segments must come back as packet too big
    const blue1 = vm['blue1']!;
    const blue2 = vm['blue2']!;
    const before = await mh.counters('h2');
    const tcp = await mh.iperf3(blue1, blue2, { seconds: 2, port: 5361, dst: 'fd00:1::5' });
    const after = await mh.counters('h2');
    const route = await mh.topo.exec(blue2.ns, ['ip', '-6', 'route', 'get', 'fd00:1::5']);
    console.log(`# iperf3 -6 blue2 -> blue1 over NVGRE: ${(tcp.bitsPerSecond / 1e6).toFixed(0)} Mbit/s, ${tcp.bytes} B; ` +
      `h2 tenant-mtu-exceeded +${mtuDrops(after) - mtuDrops(before)}; ${route.stdout.trim().replace(/\s+/g, ' ')}`);
    assert.ok(tcp.ok, `iperf3 failed: ${tcp.error} ${tcp.client.stderr}\n${mh.logs()}`);
    assert.match(route.stdout, /mtu 1458/, 'the sender never learned the tenant MTU');
  });

  it('routes IPv6 between two red subnets across hosts (hop limit - 1, router MAC); blue has no such VM', async () => {
    const red1 = vm['red1']!;
    const red3 = vm['red3']!;
    const cap = await mh.capture(red3.ns, red3.tap, { seconds: 30, name: 'red3-v6', bpf: 'icmp6' });
    const p = await mh.ping(red1, 'fd00:2::7', { count: 3, interval: 0.2, extra: ['-6'] });
    assert.equal(p.received, 3, `${p.raw.stdout} ${p.raw.stderr}\n${mh.logs()}`);
    await cap.waitCount('icmpv6.type == 128', 3);
    await cap.stop();
    const rows = await cap.fields('icmpv6.type == 128', ['ipv6.hlim', 'eth.src']);
    console.log(`# red3 received echo requests with hop limit ${rows[0]?.[0]} from ${rows[0]?.[1]}`);
    assert.equal(rows[0]?.[0], '63');
    assert.equal(rows[0]?.[1], '02:58:53:00:00:01');
    const b = await mh.ping(vm['blue1']!, 'fd00:2::7', { count: 2, interval: 0.2, extra: ['-6'] });
    assert.equal(b.received, 0, 'blue reached a red VM');
  });

  it('VXLAN: ping -6 across hosts for both tenants', async () => {
    for (const v of Object.values(vm)) {
      await mh.setRule(v, 'vxlan');
      await mh.setRecord(v.ca6!, v.vsid, { rule: 'vxlan', pa: mh.paFor(v, 'vxlan') });
    }
    const under = await mh.captureUnderlay({ seconds: 60, bpf: 'udp port 4789', name: 'underlay-vxlan6' });
    for (const t of ['red', 'blue']) {
      const p = await mh.ping(vm[`${t}1`]!, 'fd00:1::6', { count: 3, interval: 0.2, extra: ['-6'] });
      assert.equal(p.received, 3, `${t} over VXLAN: ${p.raw.stdout} ${p.raw.stderr}\n${mh.logs()}`);
    }
    const n = await under.waitCount('vxlan && icmpv6.type == 128', 6);
    const vnis = new Set((await under.fields('vxlan && icmpv6.type == 128', ['vxlan.vni'])).map((r) => Number(r[0])));
    await under.stop();
    console.log(`# VXLAN: ${n} ICMPv6 echo requests, VNIs ${[...vnis].join(',')}`);
    assert.deepEqual([...vnis].sort(), [5001, 6001]);
    assert.ok(mh.allRunning(), mh.logs());
  });
});
