// test/e2e/nv-routing.test.ts: distributed routing between the virtual subnets of one routing domain across hosts
// (gateway answered with the router MAC, TTL decremented once, source MAC = router MAC), and no path between
// routing domains that use the very same prefixes and gateways.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MultiHost, type NvVm } from '../helpers/hosts.js';
import { dropCount } from '../helpers/xswitchd.js';

const ROUTER_MAC = '02:58:53:00:0a:0b';
const SENT_TTL = 50;

describe('distributed routing across hosts', { timeout: 300_000 }, () => {
  let mh: MultiHost;
  let red1: NvVm;
  let red2: NvVm;
  let blue1: NvVm;
  let blue2: NvVm;
  before(async () => {
    mh = await MultiHost.create({ hosts: 2 });
    mh.extra.routerMac = ROUTER_MAC;
    const subnets = (base: number) => [
      { vsid: base + 1, prefix: '10.0.0.0/24', gateway: '10.0.0.1' },
      { vsid: base + 2, prefix: '10.0.1.0/24', gateway: '10.0.1.1' },
    ];
    mh.addTenant({ name: 'red', subnets: subnets(5000) });
    mh.addTenant({ name: 'blue', subnets: subnets(6000) });
    red1 = await mh.addVm({ name: 'red1', host: 'h1', vsid: 5001, ca: '10.0.0.5', mac: '02:00:00:00:00:05' });
    red2 = await mh.addVm({ name: 'red2', host: 'h2', vsid: 5002, ca: '10.0.1.6', mac: '02:00:00:00:01:06' });
    // Blue: the same prefixes and gateways, blue1 even the same CA as red1; blue2 a CA red does not have.
    blue1 = await mh.addVm({ name: 'blue1', host: 'h1', vsid: 6001, ca: '10.0.0.5', mac: '02:00:00:00:b0:05' });
    blue2 = await mh.addVm({ name: 'blue2', host: 'h2', vsid: 6002, ca: '10.0.1.7', mac: '02:00:00:00:b1:07' });
    await mh.applyAll();
  });
  after(async () => {
    await mh?.cleanup();
  });

  it('red 5001 (h1) -> red 5002 (h2): gateway = router MAC, TTL - 1, source MAC = router MAC, both ways', async () => {
    assert.ok(await mh.pingUntilReply(red1, red2.ca, 20_000), `no routed path ${red1.ca} -> ${red2.ca}\n` +
      `h1 counters: ${JSON.stringify(await mh.counters('h1'))}\nh1 virt: ${JSON.stringify(await mh.virt('h1'))}\n${mh.logs()}`);
    const gw = await mh.topo.execOk(red1.ns, ['ip', 'neigh', 'show', '10.0.0.1']);
    assert.match(gw.stdout, new RegExp(`lladdr ${ROUTER_MAC}`), `gateway 10.0.0.1 not resolved to the router MAC: ${gw.stdout}`);
    const capDst = await mh.capture(red2.ns, red2.tap, { seconds: 30, bpf: 'icmp', name: 'red2' });
    const capSrc = await mh.capture(red1.ns, red1.tap, { seconds: 30, bpf: 'icmp', name: 'red1' });
    const p = await mh.ping(red1, red2.ca, { count: 5, interval: 0.1, extra: ['-t', String(SENT_TTL)] });
    assert.equal(p.received, 5, p.raw.stdout);
    // Requests at the destination: routed once on h1 (TTL 50 -> 49), rewritten MACs.
    await capDst.waitCount(`icmp.type == 8 && ip.src == ${red1.ca}`, 5);
    // Replies back at the source: routed once on h2 (the receiver's TTL 64 -> 63).
    await capSrc.waitCount(`icmp.type == 0 && ip.src == ${red2.ca}`, 5);
    await capDst.stop();
    await capSrc.stop();
    const req = await capDst.fields(`icmp.type == 8 && ip.src == ${red1.ca}`, ['ip.ttl', 'eth.src', 'eth.dst'], 'f');
    const rep = await capSrc.fields(`icmp.type == 0 && ip.src == ${red2.ca}`, ['ip.ttl', 'eth.src', 'eth.dst'], 'f');
    console.log(`# request at red2: ttl ${req[0]?.[0]} src ${req[0]?.[1]} dst ${req[0]?.[2]}; reply at red1: ttl ${rep[0]?.[0]} src ${rep[0]?.[1]} dst ${rep[0]?.[2]}; rtt ${p.rttAvgMs} ms`);
    for (const r of req) assert.deepEqual(r, [String(SENT_TTL - 1), ROUTER_MAC, red2.mac]);
    for (const r of rep) assert.deepEqual(r, ['63', ROUTER_MAC, red1.mac]);
    const tcp = await mh.iperf3(red2, red1, { seconds: 2, port: 5321 });
    assert.ok(tcp.ok, `routed iperf3: ${tcp.error} ${tcp.client.stderr}`);
    console.log(`# routed iperf3 red1 -> red2: ${(tcp.bitsPerSecond / 1e6).toFixed(0)} Mbit/s`);
  });

  it('blue (same prefixes, same CA 10.0.0.5) routes inside blue only; red and blue never reach each other', async () => {
    const capRed2 = await mh.capture(red2.ns, red2.tap, { seconds: 40, name: 'red2-iso' });
    const capBlue2 = await mh.capture(blue2.ns, blue2.tap, { seconds: 40, name: 'blue2-iso' });
    const before1 = await mh.counters('h1');
    // Positive control: blue's own router works (so the failures below are isolation, not a broken router).
    assert.ok(await mh.pingUntilReply(blue1, blue2.ca, 20_000), `blue routed path ${blue1.ca} -> ${blue2.ca} failed\n${mh.logs()}`);
    const okBlue = await mh.ping(blue1, blue2.ca, { count: 3, interval: 0.1, extra: ['-s', '111'] });
    assert.equal(okBlue.received, 3, okBlue.raw.stdout);
    // Blue -> red2's CA (in blue's prefix 10.0.1.0/24, no such blue VM) and red -> blue2's CA: nothing.
    const x1 = await mh.ping(blue1, red2.ca, { count: 4, interval: 0.2, extra: ['-s', '222'] });
    const x2 = await mh.ping(red1, blue2.ca, { count: 4, interval: 0.2, extra: ['-s', '333'] });
    assert.equal(x1.received, 0, x1.raw.stdout);
    assert.equal(x2.received, 0, x2.raw.stdout);
    await capBlue2.waitCount('icmp && ip.len == 139', 3);
    await capRed2.stop();
    await capBlue2.stop();
    // ip.len = 20 + 8 + size: 250 (blue -> red CA), 361 (red -> blue CA); neither reached the other tenant's VM.
    assert.equal(await capRed2.count('ip.len == 250 || ip.len == 361 || ip.len == 139'), 0, 'a blue frame reached red2');
    assert.equal(await capBlue2.count('ip.len == 250 || ip.len == 361'), 0, 'a red frame reached blue2');
    assert.equal(await capRed2.count(`eth.src == ${blue1.mac} || eth.dst == ${blue1.mac}`), 0);
    const after1 = await mh.counters('h1');
    const reasons = ['no-route', 'no-lookup-record'];
    const deltas = reasons.map((r) => dropCount(after1.switch, r) - dropCount(before1.switch, r));
    const delta = reasons.map((r, i) => `${r} +${deltas[i]}`).join(', ');
    console.log(`# blue1 -> blue2 3/3; blue1 -> ${red2.ca} 0/4; red1 -> ${blue2.ca} 0/4; h1 drops: ${delta}`);
    // Every one of the 8 cross-tenant echo requests was dropped on h1 and counted.
    assert.ok(deltas.reduce((a, b) => a + b, 0) >= 8, `cross-tenant drops not counted on h1: ${delta}`);
    assert.ok(mh.allRunning(), mh.logs());
  });
});
