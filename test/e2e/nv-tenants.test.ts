// test/e2e/nv-tenants.test.ts: two hosts (one xswitchd each, uplinks on an underlay bridge), tenants red and blue
// with the SAME CAs and MACs on both hosts: ping and TCP within each tenant under encap, rewrite and vxlan.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type CaptureLike, decodeWithPrefs, MultiHost, type NvRule, type NvVm } from '../helpers/hosts.js';

const RED_VSID = 5001;
const BLUE_VSID = 6001;
/** Ping payload sizes tell the tenants apart in captures: IPv4 total length = size + 8 + 20. */
const RED_PING = 111;
const BLUE_PING = 222;
const RED_LEN = RED_PING + 28;
const BLUE_LEN = BLUE_PING + 28;
/** iperf3 ports, likewise. */
const RED_PORT = 5311;
const BLUE_PORT = 5322;
const PINGS = 5;
const UNDERLAY_MTU = 1600;
/** Tenant MTU `xsctl vsid list` must show per rule on a 1600-byte underlay. */
const TENANT_MTU: Readonly<Record<NvRule, number>> = { encap: UNDERLAY_MTU - 42, vxlan: UNDERLAY_MTU - 50, rewrite: UNDERLAY_MTU };
/** Frames kept per captured packet: every header of a VXLAN-in-IPv4 TCP segment fits. */
const SNAPLEN = 200;

/** How a phase switches every record to its rule: initial document, live `xsctl record set`, or a re-apply. */
const PHASES: readonly { rule: NvRule; how: 'initial' | 'record-set' | 'apply' }[] = [
  { rule: 'encap', how: 'initial' },
  { rule: 'rewrite', how: 'record-set' },
  { rule: 'vxlan', how: 'apply' },
];

interface UnderlayRow {
  /** Any GRE header (well-formed or not). */
  readonly gre: boolean;
  readonly greKey: number | null;
  readonly greProto: number | null;
  readonly greFlags: number | null;
  readonly vni: number | null;
  readonly vxlanI: boolean;
  /** Every IPv4 header's addresses and total length, outer first. */
  readonly ipSrc: string[];
  readonly ipDst: string[];
  readonly ipLen: number[];
  readonly outerDf: boolean;
  /** Any IPv4 header with MF set or a fragment offset. */
  readonly fragment: boolean;
  readonly icmp: boolean;
  readonly tcpPorts: number[];
  readonly udpDst: number[];
}

const ROW_FIELDS = ['gre', 'gre.key', 'gre.proto', 'gre.flags_and_version', 'vxlan.vni', 'vxlan.flag_i', 'ip.src', 'ip.dst', 'ip.len',
  'ip.flags.df', 'ip.flags.mf', 'ip.frag_offset', 'icmp.type', 'tcp.srcport', 'tcp.dstport', 'udp.dstport'] as const;

/** One tshark pass: the fields the checks need, per packet (repeated fields comma-separated, outer first). */
async function underlayRows(file: string): Promise<UnderlayRow[]> {
  const raw = await decodeWithPrefs(file, [], '', ROW_FIELDS);
  const list = (v: string | undefined): string[] => (v === undefined || v === '' ? [] : v.split(','));
  const num = (v: string | undefined): number | null => (v === undefined || v === '' ? null : Number(v.split(',')[0]));
  const truthy = (v: string | undefined): boolean => v === '1' || v === 'True' || v === 'true';
  return raw.map((c) => ({
    gre: (c[0] ?? '') !== '',
    greKey: num(c[1]), greProto: num(c[2]), greFlags: num(c[3]), vni: num(c[4]), vxlanI: truthy(list(c[5])[0]),
    ipSrc: list(c[6]), ipDst: list(c[7]), ipLen: list(c[8]).map(Number),
    outerDf: truthy(list(c[9])[0]),
    fragment: list(c[10]).some(truthy) || list(c[11]).some((x) => Number(x) > 0),
    icmp: (c[12] ?? '') !== '',
    tcpPorts: [...list(c[13]), ...list(c[14])].map(Number),
    udpDst: list(c[15]).map(Number),
  }));
}

/** 16-bit one's-complement sum (folded, not complemented) of the IPv4 TCP pseudo-header: CHECKSUM_PARTIAL's seed. */
function pseudoSeed(src: string, dst: string, l4len: number): number {
  const w = [...src.split('.'), ...dst.split('.')].map(Number);
  let sum = ((w[0] ?? 0) << 8 | (w[1] ?? 0)) + ((w[2] ?? 0) << 8 | (w[3] ?? 0)) + ((w[4] ?? 0) << 8 | (w[5] ?? 0)) +
    ((w[6] ?? 0) << 8 | (w[7] ?? 0)) + 6 + l4len;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

describe('two hosts, tenants red and blue with identical CAs and MACs', { timeout: 600_000 }, () => {
  let mh: MultiHost;
  let red1: NvVm;
  let red2: NvVm;
  let blue1: NvVm;
  let blue2: NvVm;
  const vmCaps = new Map<string, CaptureLike>();
  const sent = { redPings: 0, bluePings: 0 };

  before(async () => {
    mh = await MultiHost.create({ hosts: 2, underlayMtu: UNDERLAY_MTU });
    mh.addTenant({ name: 'red', subnets: [{ vsid: RED_VSID, prefix: '10.0.0.0/24', gateway: '10.0.0.1' }] });
    mh.addTenant({ name: 'blue', subnets: [{ vsid: BLUE_VSID, prefix: '10.0.0.0/24', gateway: '10.0.0.1' }] });
    red1 = await mh.addVm({ name: 'red1', host: 'h1', vsid: RED_VSID, ca: '10.0.0.5', mac: '02:00:00:00:00:05' });
    red2 = await mh.addVm({ name: 'red2', host: 'h2', vsid: RED_VSID, ca: '10.0.0.6', mac: '02:00:00:00:00:06' });
    blue1 = await mh.addVm({ name: 'blue1', host: 'h1', vsid: BLUE_VSID, ca: '10.0.0.5', mac: '02:00:00:00:00:05' });
    blue2 = await mh.addVm({ name: 'blue2', host: 'h2', vsid: BLUE_VSID, ca: '10.0.0.6', mac: '02:00:00:00:00:06' });
    await mh.applyAll();
    // tshark in every VM namespace for the whole run: the isolation proof.
    // The tenant's own bulk TCP is left out (its SYN/FIN kept) to keep the files small; everything else is kept.
    for (const vm of mh.vms) {
      const own = vm.vsid === RED_VSID ? RED_PORT : BLUE_PORT;
      vmCaps.set(vm.name, await mh.capture(vm.ns, vm.tap, { seconds: 500, snaplen: SNAPLEN, name: vm.name, bpf: `not (tcp port ${own} and tcp[13] & 7 == 0)` }));
    }
  });

  after(async () => {
    for (const c of vmCaps.values()) await c.stop().catch(() => undefined);
    await mh?.cleanup();
  });

  for (const phase of PHASES) {
    it(`rule ${phase.rule} (${phase.how}): each tenant pings and carries TCP across hosts; the underlay shows the rule`, async (tc) => {
      const vms = [red1, red2, blue1, blue2];
      if (phase.how === 'record-set') {
        for (const vm of vms) await mh.setRule(vm, phase.rule);
      } else if (phase.how === 'apply') {
        for (const vm of vms) mh.modelRule(vm, phase.rule);
        await mh.applyAll();
      }
      // Every host stores every record with this rule and PA.
      for (const h of mh.hosts) {
        const recs = await mh.recordList(h.name);
        for (const vm of vms) {
          const r = recs.filter((x) => x.ca === vm.ca && x.vsid === vm.vsid);
          assert.equal(r.length, 1, `${h.name}: one record ${vm.ca}/${vm.vsid} in ${JSON.stringify(recs)}`);
          assert.equal(r[0]?.rule, phase.rule, `${h.name}: ${vm.name} rule`);
          assert.equal(r[0]?.pa, mh.paFor(vm, phase.rule), `${h.name}: ${vm.name} PA`);
          assert.equal(r[0]?.local, vm.host === h.name, `${h.name}: ${vm.name} local`);
        }
      }

      const ul = await mh.captureUnderlay({ seconds: 180, snaplen: SNAPLEN, name: `underlay-${phase.rule}` });
      // Full frames of TCP SYN/FIN on the underlay (small: their checksums can be checked).
      const ctl = phase.rule === 'rewrite'
        ? await mh.capture(mh.underlay, 'br0', { seconds: 180, bpf: 'tcp and tcp[13] & 3 != 0', name: 'underlay-tcpctl' })
        : null;
      try {
        for (const [a, b, size] of [[red1, red2, RED_PING], [red2, red1, RED_PING], [blue1, blue2, BLUE_PING], [blue2, blue1, BLUE_PING]] as const) {
          assert.ok(await mh.pingUntilReply(a, b.ca, 20_000, ['-s', String(size)]), `${phase.rule}: ${a.name} -> ${b.name} (${b.ca}): no reply\n${mh.logs()}`);
          const p = await mh.ping(a, b.ca, { count: PINGS, interval: 0.1, extra: ['-s', String(size)] });
          assert.equal(p.received, PINGS, `${phase.rule}: ${a.name} -> ${b.name}: ${p.raw.stdout}`);
          if (size === RED_PING) sent.redPings += PINGS;
          else sent.bluePings += PINGS;
        }
        const superFrames = async (): Promise<number> => {
          let n = 0;
          for (const h of mh.hosts) n += (await mh.counters(h.name)).switch.gro?.superFrames ?? 0;
          return n;
        };
        const groBefore = await superFrames();
        for (const [server, client, port] of [[red2, red1, RED_PORT], [blue2, blue1, BLUE_PORT]] as const) {
          const r = await mh.iperf3(server, client, { port, seconds: 2 });
          assert.ok(r.ok, `${phase.rule}: iperf3 ${client.name} -> ${server.name}: ${r.error ?? ''} ${r.client.stderr}\n${mh.logs()}`);
          assert.ok(r.bytes > 1_000_000, `${phase.rule}: iperf3 ${client.name} -> ${server.name} moved only ${r.bytes} bytes`);
          tc.diagnostic(`${phase.rule}: iperf3 ${client.name} -> ${server.name}: ${(r.bitsPerSecond / 1e6).toFixed(0)} Mbit/s, ${r.bytes} bytes`);
        }
        // The receiving switch coalesced the MTU-size segments of the bulk TCP into super-frames for the VM (GRO)
        const gro = (await superFrames()) - groBefore;
        tc.diagnostic(`${phase.rule}: ${gro} super-frames built by GRO`);
        if (phase.rule !== 'rewrite') assert.ok(gro > 0, `${phase.rule}: no GRO super-frames after bulk TCP`);
      } finally {
        await ul.stop();
        await ctl?.stop();
      }

      // One tshark pass over the underlay capture; the checks below run on its rows.
      const rows = await underlayRows(ul.file);
      const msg = `underlay capture ${ul.file} (${rows.length} packets)`;
      const count = (pred: (r: UnderlayRow) => boolean): number => rows.reduce((a, r) => a + (pred(r) ? 1 : 0), 0);
      const isPing = (r: UnderlayRow, len: number): boolean => r.icmp && r.ipLen.includes(len);
      const hasPort = (r: UnderlayRow, port: number): boolean => r.tcpPorts.includes(port);
      // Never an outer fragment.
      assert.equal(count((r) => r.fragment), 0, `fragments on the underlay (${msg})`);
      // Both tenants' pings crossed: 2 directions x PINGS requests + replies each.
      const minPkts = 2 * PINGS * 2;
      if (phase.rule === 'encap') {
        const nv = (r: UnderlayRow, vsid: number): boolean => r.greKey !== null && r.greProto === 0x6558 && r.greFlags === 0x2000 && r.greKey >>> 8 === vsid;
        const redN = count((r) => nv(r, RED_VSID) && isPing(r, RED_LEN));
        const blueN = count((r) => nv(r, BLUE_VSID) && isPing(r, BLUE_LEN));
        tc.diagnostic(`encap: ${rows.length} underlay packets; NVGRE pings VSID ${RED_VSID}: ${redN}, VSID ${BLUE_VSID}: ${blueN}`);
        assert.ok(redN >= minPkts, `red pings as NVGRE VSID ${RED_VSID}: ${redN} < ${minPkts} (${msg})`);
        assert.ok(blueN >= minPkts, `blue pings as NVGRE VSID ${BLUE_VSID}: ${blueN} < ${minPkts} (${msg})`);
        assert.ok(count((r) => nv(r, RED_VSID) && hasPort(r, RED_PORT)) > 0, `red TCP as NVGRE ${RED_VSID} (${msg})`);
        assert.ok(count((r) => nv(r, BLUE_VSID) && hasPort(r, BLUE_PORT)) > 0, `blue TCP as NVGRE ${BLUE_VSID} (${msg})`);
        // Each tenant's traffic carries its own VSID only.
        const vsidOf = (r: UnderlayRow): number => (r.greKey ?? 0) >>> 8;
        assert.equal(count((r) => r.greKey !== null && vsidOf(r) === RED_VSID && (isPing(r, BLUE_LEN) || hasPort(r, BLUE_PORT))), 0, `blue traffic under red's VSID (${msg})`);
        assert.equal(count((r) => r.greKey !== null && vsidOf(r) === BLUE_VSID && (isPing(r, RED_LEN) || hasPort(r, RED_PORT))), 0, `red traffic under blue's VSID (${msg})`);
        // One PA per host: NVGRE only between 192.0.2.1 and 192.0.2.2, outer DF.
        const h1 = mh.host('h1').pa;
        const h2 = mh.host('h2').pa;
        const bad = rows.filter((r) => r.greKey !== null &&
          (!((r.ipSrc[0] === h1 && r.ipDst[0] === h2) || (r.ipSrc[0] === h2 && r.ipDst[0] === h1)) || !r.outerDf));
        assert.equal(bad.length, 0, `NVGRE outer headers not between the host PAs with DF: ${JSON.stringify(bad.slice(0, 3))} (${msg})`);
        assert.equal(count((r) => r.vni !== null || r.udpDst.includes(4789)), 0, `VXLAN during the encap phase (${msg})`);
      } else if (phase.rule === 'vxlan') {
        const vx = (r: UnderlayRow, vsid: number): boolean => r.vni === vsid && r.vxlanI && r.udpDst.includes(4789);
        const redN = count((r) => vx(r, RED_VSID) && isPing(r, RED_LEN));
        const blueN = count((r) => vx(r, BLUE_VSID) && isPing(r, BLUE_LEN));
        tc.diagnostic(`vxlan: ${rows.length} underlay packets; VXLAN pings VNI ${RED_VSID}: ${redN}, VNI ${BLUE_VSID}: ${blueN}`);
        assert.ok(redN >= minPkts, `red pings as VXLAN VNI ${RED_VSID}: ${redN} < ${minPkts} (${msg})`);
        assert.ok(blueN >= minPkts, `blue pings as VXLAN VNI ${BLUE_VSID}: ${blueN} < ${minPkts} (${msg})`);
        assert.ok(count((r) => vx(r, RED_VSID) && hasPort(r, RED_PORT)) > 0, `red TCP as VXLAN ${RED_VSID} (${msg})`);
        assert.ok(count((r) => vx(r, BLUE_VSID) && hasPort(r, BLUE_PORT)) > 0, `blue TCP as VXLAN ${BLUE_VSID} (${msg})`);
        assert.equal(count((r) => r.vni === RED_VSID && (isPing(r, BLUE_LEN) || hasPort(r, BLUE_PORT))), 0, `blue traffic under red's VNI (${msg})`);
        assert.equal(count((r) => r.vni === BLUE_VSID && (isPing(r, RED_LEN) || hasPort(r, RED_PORT))), 0, `red traffic under blue's VNI (${msg})`);
        const h1 = mh.host('h1').pa;
        const h2 = mh.host('h2').pa;
        const bad = rows.filter((r) => r.vni !== null && !((r.ipSrc[0] === h1 && r.ipDst[0] === h2) || (r.ipSrc[0] === h2 && r.ipDst[0] === h1)));
        assert.equal(bad.length, 0, `VXLAN outer headers not between the host PAs: ${JSON.stringify(bad.slice(0, 3))} (${msg})`);
        assert.equal(count((r) => r.greKey !== null || r.gre), 0, `NVGRE during the vxlan phase (${msg})`);
      } else {
        // Plain IPv4 between the per-CA PAs: no tunnel, no CA on the wire.
        const plain = (a: NvVm, b: NvVm, len: number): number => count((r) => !r.gre && r.vni === null &&
          r.ipSrc.length === 1 && r.ipSrc[0] === a.rewritePa && r.ipDst[0] === b.rewritePa && isPing(r, len));
        const counts = [plain(red1, red2, RED_LEN), plain(red2, red1, RED_LEN), plain(blue1, blue2, BLUE_LEN), plain(blue2, blue1, BLUE_LEN)];
        tc.diagnostic(`rewrite: ${rows.length} underlay packets; plain-IP pings red1->red2 ${counts[0]}, red2->red1 ${counts[1]}, blue1->blue2 ${counts[2]}, blue2->blue1 ${counts[3]}`);
        for (const c of counts) assert.ok(c >= PINGS * 2, `rewrite pings between per-CA PAs: ${counts.join(',')} (${msg})`);
        const between = (r: UnderlayRow, a: NvVm, b: NvVm): boolean => r.ipSrc.length === 1 &&
          ((r.ipSrc[0] === a.rewritePa && r.ipDst[0] === b.rewritePa) || (r.ipSrc[0] === b.rewritePa && r.ipDst[0] === a.rewritePa));
        assert.ok(count((r) => hasPort(r, RED_PORT) && between(r, red1, red2)) > 0, `red TCP between red PAs (${msg})`);
        assert.ok(count((r) => hasPort(r, BLUE_PORT) && between(r, blue1, blue2)) > 0, `blue TCP between blue PAs (${msg})`);
        const bluePas = [blue1.rewritePa, blue2.rewritePa];
        const redPas = [red1.rewritePa, red2.rewritePa];
        const on = (r: UnderlayRow, pas: string[]): boolean => r.ipSrc.some((a) => pas.includes(a)) || r.ipDst.some((a) => pas.includes(a));
        assert.equal(count((r) => hasPort(r, RED_PORT) && on(r, bluePas)), 0, `red TCP on blue PAs (${msg})`);
        assert.equal(count((r) => hasPort(r, BLUE_PORT) && on(r, redPas)), 0, `blue TCP on red PAs (${msg})`);
        assert.equal(count((r) => r.ipSrc.concat(r.ipDst).some((a) => a.startsWith('10.0.0.'))), 0, `a CA on the underlay (${msg})`);
        assert.equal(count((r) => r.gre || r.vni !== null || r.udpDst.includes(4789)), 0, `a tunnel during the rewrite phase (${msg})`);
        // Checksums after the rewrite: every IPv4 header good; TCP handshake/teardown segments (captured in full)
        // carry either a good checksum or, when the sender left it to offload (CHECKSUM_PARTIAL through the TAP's
        // virtio-net header), exactly the pseudo-header seed of the REWRITTEN addresses.
        const badIp = await decodeWithPrefs(ul.file, ['ip.check_checksum:TRUE'], 'ip.checksum.status == 0', ['frame.number', 'ip.src', 'ip.dst']);
        assert.equal(badIp.length, 0, `IPv4 header checksums bad after rewrite: ${JSON.stringify(badIp.slice(0, 5))} (${msg})`);
        if (ctl !== null) {
          const all = await decodeWithPrefs(ctl.file, ['tcp.check_checksum:TRUE'], 'tcp',
            ['tcp.checksum.status', 'ip.src', 'ip.dst', 'ip.len', 'ip.hdr_len', 'tcp.checksum', 'tcp.flags']);
          let good = 0;
          let seeded = 0;
          const bad: string[][] = [];
          for (const r of all) {
            if (r[0] === '1') good++;
            else if (Number(r[5]) === pseudoSeed(r[1] ?? '', r[2] ?? '', Number(r[3]) - Number(r[4]))) seeded++;
            else bad.push(r);
          }
          tc.diagnostic(`rewrite: ${all.length} TCP SYN/FIN segments on the underlay: ${good} good checksum, ${seeded} offload seed of the PAs, ${bad.length} wrong`);
          assert.ok(all.length >= 4, `TCP SYN/FIN segments on the underlay: ${all.length} (${ctl.file})`);
          assert.equal(bad.length, 0, `TCP checksums neither good nor the PA pseudo-header seed: ${JSON.stringify(bad.slice(0, 5))} (${ctl.file})`);
        }
      }

      // xsctl vsid list --json: both VSIDs with the tenant MTU of this rule, on every host.
      for (const h of mh.hosts) {
        const rows = await mh.vsidList(h.name);
        for (const [vsid, name] of [[RED_VSID, 'red'], [BLUE_VSID, 'blue']] as const) {
          const r = rows.find((x) => x.vsid === vsid);
          assert.ok(r !== undefined, `${h.name}: VSID ${vsid} in vsid list ${JSON.stringify(rows)}`);
          assert.equal(r.rdName, name, `${h.name}: VSID ${vsid} routing domain`);
          assert.equal(r.prefix, '10.0.0.0/24');
          assert.equal(r.tenantMtu, TENANT_MTU[phase.rule], `${h.name}: VSID ${vsid} tenant MTU under ${phase.rule}: ${JSON.stringify(r)}`);
          assert.equal(r.records, 2, `${h.name}: VSID ${vsid} records`);
          assert.equal(r.localRecords, 1, `${h.name}: VSID ${vsid} local records`);
        }
      }
      assert.ok(mh.allRunning(), mh.logs());
    });
  }

  it('tshark in every VM namespace shows only its own tenant\'s frames, never the underlay', async (tc) => {
    for (const c of vmCaps.values()) await c.stop();
    for (const vm of [red1, red2, blue1, blue2]) {
      const c = vmCaps.get(vm.name);
      assert.ok(c !== undefined);
      const red = vm.vsid === RED_VSID;
      const [ownLen, otherLen, ownPort, otherPort] = red ? [RED_LEN, BLUE_LEN, RED_PORT, BLUE_PORT] : [BLUE_LEN, RED_LEN, BLUE_PORT, RED_PORT];
      const own = await c.count(`icmp && ip.len == ${ownLen}`);
      const ownTcp = await c.count(`tcp.port == ${ownPort}`);
      const other = await c.count(`icmp && ip.len == ${otherLen}`);
      const otherTcp = await c.count(`tcp.port == ${otherPort}`);
      const underlay = await c.count('gre || vxlan || udp.port == 4789 || ip.addr == 192.0.2.0/24 || arp.dst.proto_ipv4 == 192.0.2.0/24');
      tc.diagnostic(`${vm.name}: own pings ${own}, own TCP ${ownTcp}, other tenant pings ${other}, other TCP ${otherTcp}, underlay ${underlay}`);
      // Each VM sent and answered PINGS per direction per phase (plus warm-up pings).
      const ownSent = red ? sent.redPings : sent.bluePings;
      assert.ok(own >= ownSent, `${vm.name}: only ${own} of its tenant's ${ownSent}+ ping packets captured (${c.file})`);
      assert.ok(ownTcp > 0, `${vm.name}: its tenant's TCP not captured (${c.file})`);
      assert.equal(other, 0, `${vm.name}: ${other} ping packets of the other tenant (${c.file})`);
      assert.equal(otherTcp, 0, `${vm.name}: ${otherTcp} TCP segments of the other tenant (${c.file})`);
      assert.equal(underlay, 0, `${vm.name}: ${underlay} underlay frames (${c.file})`);
    }
    assert.ok(mh.allRunning(), mh.logs());
  });
});
