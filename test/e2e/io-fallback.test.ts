// test/e2e/io-fallback.test.ts: xswitchd on a host that refuses io_uring (kernel.io_uring_disabled, a container's
// seccomp profile): TAP batches fall back to one read()/write() per frame, the daemon says so on its start line, and
// two TAP VMs still ping and carry TCP. The refusal is real: the daemon runs under a seccomp filter that fails
// io_uring_setup/enter/register with EPERM (test/helpers/py/no-io-uring.py).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { iperf3, ping, pingUntilReply, PYTHON, pyScript } from '../helpers/peers.js';
import { startTapSwitch, type TapVm, type Xswitchd } from '../helpers/xswitchd.js';

/** The tapIo field of the daemon's "xswitchd started" log line. */
function startLineIo(d: Xswitchd): string | null {
  const text = `${d.proc?.stdout ?? ''}\n${d.proc?.stderr ?? ''}`;
  const m = /"tapIo":"([^"]*)"/.exec(text);
  return m === null ? null : (m[1] ?? null);
}

describe('xswitchd without io_uring', { timeout: 180_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vms: TapVm[];
  before(async () => {
    t = Topology.create();
    ({ d, vms } = await startTapSwitch(t, 2, { wrap: [PYTHON, pyScript('no-io-uring.py')] }));
  });
  after(async () => {
    await t?.cleanup();
  });

  it('says on its start line that TAP batches use the syscall loop, and why', () => {
    assert.equal(startLineIo(d), 'syscalls (Operation not permitted)', d.logTail());
  });

  it('forwards pings, bursts and TCP between two TAP VMs', async (tc) => {
    const [vm1, vm2] = vms as [TapVm, TapVm];
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip), `no reply\n${d.logTail()}`);
    // bursts: the batch path (many frames per wake-up), not only one frame at a time
    const burst = await ping(t, vm1.ns, vm2.ip, { count: 400, interval: 0.002, extra: ['-s', '1400'] });
    assert.equal(burst.received, 400, burst.raw.stdout);
    const r = await iperf3(t, vm2.ns, vm2.ip, vm1.ns, { seconds: 2 });
    assert.ok(r.ok, `iperf3: ${r.error ?? ''} ${r.client.stderr}\n${d.logTail()}`);
    assert.ok(r.bytes > 10_000_000, `iperf3 moved only ${r.bytes} bytes`);
    tc.diagnostic(`iperf3 vm1 -> vm2 without io_uring: ${(r.bitsPerSecond / 1e9).toFixed(2)} Gbit/s`);
  });
});
