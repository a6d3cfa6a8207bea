// test/e2e/nv-migration.test.ts: live migration: a VM (same namespace, CA and MAC) moves from host h1 to h2 while a
// bounded TCP stream from a VM on h3 runs to it; the lookup record's PA changes on every host; the stream survives
// and the test prints the interruption (largest gap between the receiver's ACKs, and iperf3's 0.1 s intervals).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MultiHost, NV_SWITCH, type NvVm } from '../helpers/hosts.js';
import type { BgProcess } from '../helpers/proc.js';
import { run, waitFor } from '../helpers/proc.js';

const VSID = 5001;
const PORT = 5331;
const SECONDS = 10;

interface IperfInterval {
  readonly sum: { readonly start: number; readonly end: number; readonly bytes: number };
}
interface IperfJson {
  readonly error?: string;
  readonly intervals?: readonly IperfInterval[];
  readonly end?: { readonly sum_received?: { readonly bytes?: number }; readonly sum_sent?: { readonly bytes?: number; readonly retransmits?: number } };
}

function parseJson(p: BgProcess | { stdout: string }, what: string): IperfJson {
  try {
    return JSON.parse(p.stdout) as IperfJson;
  } catch {
    throw new Error(`${what}: not JSON: ${p.stdout.slice(0, 1500)}`);
  }
}

/** Longest run of empty 0.1 s intervals (seconds) and where it started. */
function longestEmptyRun(iv: readonly IperfInterval[]): { seconds: number; at: number } {
  let best = { seconds: 0, at: 0 };
  let runStart = -1;
  let runLen = 0;
  for (const x of iv) {
    if (x.sum.bytes === 0) {
      if (runStart < 0) runStart = x.sum.start;
      runLen += x.sum.end - x.sum.start;
      if (runLen > best.seconds) best = { seconds: runLen, at: runStart };
    } else {
      runStart = -1;
      runLen = 0;
    }
  }
  return best;
}

/** Bytes received so far on the established connection to :PORT inside ns (ss -ti bytes_received). */
async function bytesReceived(mh: MultiHost, ns: string): Promise<number> {
  const r = await mh.topo.exec(ns, ['ss', '-Hti', 'state', 'established', `( sport = :${PORT} )`]);
  let max = 0;
  for (const m of r.stdout.matchAll(/bytes_received:(\d+)/g)) max = Math.max(max, Number(m[1]));
  return max;
}

describe('live migration', { timeout: 300_000 }, () => {
  let mh: MultiHost;
  let vm: NvVm;
  let snd: NvVm;
  before(async () => {
    mh = await MultiHost.create({ hosts: 3 });
    mh.addTenant({ name: 'red', subnets: [{ vsid: VSID, prefix: '10.0.0.0/24', gateway: '10.0.0.1' }] });
    vm = await mh.addVm({ name: 'mig', host: 'h1', vsid: VSID, ca: '10.0.0.5', mac: '02:00:00:00:00:05' });
    snd = await mh.addVm({ name: 'snd', host: 'h3', vsid: VSID, ca: '10.0.0.7', mac: '02:00:00:00:00:07' });
    await mh.applyAll();
  });
  after(async () => {
    await mh?.cleanup();
  });

  it('a TCP stream from h3 survives the VM moving from h1 to h2', async () => {
    assert.ok(await mh.pingUntilReply(snd, vm.ca, 20_000), `no path ${snd.ca} -> ${vm.ca}\n${mh.logs()}`);
    const h1 = mh.host('h1');
    const h2 = mh.host('h2');
    const oldTap = vm.tap;

    // Receiver in the VM (its namespace moves with it), sender on h3; ACKs from the VM captured at the sender.
    const server = mh.topo.spawn(vm.ns, ['timeout', String(SECONDS + 25), 'iperf3', '-s', '-1', '-J', '-i', '0.1', '-B', vm.ca, '-p', String(PORT)],
      { timeout: (SECONDS + 30) * 1000 });
    await waitFor(async () => {
      if (!server.running) throw new Error(`iperf3 server exited: ${server.stdout} ${server.stderr}`);
      return (await mh.topo.exec(vm.ns, ['ss', '-Hltn', `sport = :${PORT}`])).stdout.includes(String(PORT));
    }, { timeout: 10_000, what: 'iperf3 server' });
    const acks = await mh.capture(snd.ns, snd.tap, { seconds: SECONDS + 30, bpf: `tcp and src host ${vm.ca} and src port ${PORT}`, name: 'acks' });
    const client = mh.topo.spawn(snd.ns, ['timeout', String(SECONDS + 20), 'iperf3', '-c', vm.ca, '-p', String(PORT), '-t', String(SECONDS),
      '-b', '50M', '--connect-timeout', '3000', '-J'], { timeout: (SECONDS + 25) * 1000 });
    // The stream runs (1 MB arrived) before the move starts.
    await waitFor(async () => {
      if (!client.running) throw new Error(`iperf3 client exited early: ${client.stdout.slice(0, 1500)}`);
      return (await bytesReceived(mh, vm.ns)) > 1_000_000;
    }, { timeout: 10_000, interval: 100, what: 'stream running before the move' });

    const garp = async (): Promise<number> => (await mh.virt<{ counters: Record<string, number> }>('h2')).counters['garpSent'] ?? 0;
    const garp0 = await garp();
    // --- the move -------------------------------------------------------------------------------------
    const t0 = Date.now() / 1000;
    // 1. The VM's new port on h2 (same MAC, VSID); its TAP waits in h2's namespace.
    const moved = await mh.addVm({ name: 'migb', host: 'h2', vsid: VSID, ca: vm.ca, mac: vm.mac, ns: vm.ns, noRecord: true });
    await h2.d.applyOk(mh.docFor('h2'));
    await mh.topo.waitLink(h2.ns, moved.tap, 15_000);
    const tAdded = Date.now() / 1000;
    // 2. The record's PA (and VM port name) changes on every host.
    await mh.setRecord(vm.ca, VSID, { pa: h2.pa, vm: moved.name });
    const tRecord = Date.now() / 1000;
    // 3. Detach from h1 (its TAP vanishes from the VM namespace) and attach the new TAP (same MAC, CA, route).
    await h1.d.xsctlOk(['port', 'del', NV_SWITCH, vm.name]);
    await waitFor(async () => (await run(['ip', '-n', vm.ns, 'link', 'show', oldTap])).code !== 0, { timeout: 10_000, what: `${oldTap} gone from the VM` });
    const tDetached = Date.now() / 1000;
    await mh.plug(moved);
    const t1 = Date.now() / 1000;
    // Keep the helper's model in step (a later applyAll must not re-create the old port or name it in the record).
    h1.vms.splice(h1.vms.indexOf(vm), 1);
    mh.vms.splice(mh.vms.indexOf(vm), 1);
    mh.extra.records.push({ ca: vm.ca, vsid: VSID, mac: vm.mac, pa: h2.pa, rule: 'encap', vm: moved.name });
    const bytesAtMove = await bytesReceived(mh, vm.ns);
    // -------------------------------------------------------------------------------------------------------

    await client.waitExit((SECONDS + 25) * 1000);
    await server.waitExit(10_000);
    await acks.stop();
    const cj = parseJson(client, 'iperf3 client');
    const sj = parseJson(server, 'iperf3 server');
    assert.equal(client.exitCode, 0, `iperf3 client failed: ${cj.error ?? ''} ${client.stderr}\n${mh.logs()}`);
    const received = sj.end?.sum_received?.bytes ?? cj.end?.sum_received?.bytes ?? 0;
    assert.ok(received > bytesAtMove, `no bytes after the move: ${received} total, ${bytesAtMove} at the move`);

    // ACKs from the VM (as the sender saw them): the data connection is the stream with the most ACKs.
    const rows = await acks.fields(`tcp.srcport == ${PORT}`, ['frame.time_epoch', 'tcp.stream', 'tcp.ack_raw', 'tcp.len'], 'f');
    const perStream = new Map<string, number>();
    for (const r of rows) perStream.set(r[1] ?? '', (perStream.get(r[1] ?? '') ?? 0) + 1);
    const data = [...perStream.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    const times = rows.filter((r) => r[1] === data).map((r) => ({ t: Number(r[0]), ack: Number(r[2]) }));
    assert.ok(times.length > 10, `too few ACKs captured: ${times.length}`);
    let gap = 0;
    let gapAt = 0;
    for (let i = 1; i < times.length; i++) {
      const d = (times[i]?.t ?? 0) - (times[i - 1]?.t ?? 0);
      if (d > gap) {
        gap = d;
        gapAt = times[i - 1]?.t ?? 0;
      }
    }
    const ackBefore = Math.max(...times.filter((x) => x.t < t0).map((x) => x.ack));
    const acksAfter = times.filter((x) => x.t > t1 && x.ack > ackBefore);
    const ivGap = longestEmptyRun(sj.intervals ?? []);
    const ms = (x: number): string => ((x - t0) * 1000).toFixed(0);
    console.log(`# migration h1 -> h2: port on h2 ready at +${ms(tAdded)} ms, record PA changed on 3 hosts at +${ms(tRecord)} ms, ` +
      `detached from h1 at +${ms(tDetached)} ms, TAP plugged (same MAC/CA) at +${ms(t1)} ms; stream: ${received} B received, ${cj.end?.sum_sent?.retransmits ?? '?'} retransmits`);
    console.log(`# interruption: ${(gap * 1000).toFixed(0)} ms between ACKs from the VM (gap began ${((gapAt - t0) * 1000).toFixed(0)} ms after ` +
      `the move started); iperf3 0.1 s intervals: ${ivGap.seconds.toFixed(1)} s empty from t=${ivGap.at.toFixed(1)} s; ` +
      `${acksAfter.length} ACKs advancing after the move`);
    assert.ok(acksAfter.length > 0, 'no acknowledged data after the move');
    // The new host announced the VM (gratuitous ARP into its VSID).
    const garp1 = await garp();
    console.log(`# h2 gratuitous ARPs for the moved VM: ${garp1 - garp0}`);
    assert.ok(garp1 > garp0, 'h2 sent no gratuitous ARP for the VM that became local');
    const rec = (await mh.recordList('h3')).find((r) => r.ca === vm.ca && r.vsid === VSID);
    assert.equal(rec?.pa, h2.pa, `h3 record: ${JSON.stringify(rec)}`);
    assert.equal((await mh.recordList('h2')).find((r) => r.ca === vm.ca)?.local, true);
    assert.ok(mh.allRunning(), mh.logs());
  });
});
