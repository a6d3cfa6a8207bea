// control/warmup.test.ts: xswitchd's start-up warm-up: bounded, leaves no fd behind, and a new switch's first
// frames afterwards run as compiled code, on the plain path and through a virtualization policy (checked with V8's
// own optimization status in a child process).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Switch } from '../dataplane/switch.js';
import { loadNative } from '../io/native.js';
import { warmUpDataPath } from './warmup.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const quiet = { info: (): void => undefined, warn: (): void => undefined };
const createSwitch = (name: string, batchSize?: number): Switch =>
  new Switch({ name, ...(batchSize === undefined ? {} : { batchSize }), log: quiet });

interface ChildResult {
  readonly mode: string;
  readonly warm: { frames: number; ms: number } | null;
  readonly received: number;
  readonly observed: number;
  readonly optimized: Record<string, boolean>;
  /** V8's optimization status bits of each function, for the failure message. */
  readonly bits: Record<string, string>;
}

async function child(mode: 'warm' | 'cold', net = false): Promise<ChildResult> {
  const script = join(ROOT, 'dist', 'test', 'fixtures', 'warmup-jit.js');
  // --expose-gc and WARMUP_GC: a full GC between the warm-up and the new switch, as the daemon's idle-time GC
  // would do; the compiled code must survive it.
  const r = await promisify(execFile)(process.execPath, ['--allow-natives-syntax', '--expose-gc', script, mode, ...(net ? ['net'] : [])], {
    timeout: 60_000, env: { ...process.env, WARMUP_GC: '1' },
  });
  return JSON.parse(r.stdout.trim()) as ChildResult;
}

describe('data path warm-up', () => {
  it('forwards what it asks for within its bounds and closes every fd it opened', async () => {
    // the thread's io_uring ring (made on first use, kept) is not the warm-up's: set it up before counting
    const nat = loadNative();
    assert.ok(!('error' in nat));
    nat.ioPath();
    const before = readdirSync('/proc/self/fd').length;
    const r = await warmUpDataPath({ createSwitch, frames: 3000, phases: 2 });
    assert.ok(!('error' in r), JSON.stringify(r));
    assert.ok(r.frames >= 3000 && r.frames < 3000 + 200, `frames ${r.frames}`);
    assert.equal(readdirSync('/proc/self/fd').length, before);
    // the deadline bounds it whatever the frame count
    const t = await warmUpDataPath({ createSwitch, frames: 10_000_000, maxMs: 150 });
    assert.ok(!('error' in t) && t.ms < 1500 && t.frames < 10_000_000, JSON.stringify(t));
    assert.equal(readdirSync('/proc/self/fd').length, before);
  });

  it("a new switch's first frames run compiled after the warm-up and a full GC, interpreted without it", async () => {
    const warm = await child('warm');
    const cold = await child('cold');
    // both forwarded the traffic (cold may still be settling its first frame)
    assert.ok(warm.received === 300 && cold.received >= 290, `received warm ${warm.received} cold ${cold.received}`);
    assert.ok(warm.warm !== null && warm.warm.frames >= 20_000, JSON.stringify(warm.warm));
    const notCompiled = Object.entries(warm.optimized).filter(([, v]) => !v).map(([k]) => k);
    assert.deepEqual(notCompiled, [], `interpreted after the warm-up: ${notCompiled.map((k) => `${k} (status ${warm.bits[k]})`).join(', ')}`);
    // the control: 300 frames alone do not get the data path compiled, so the check above means something
    const coldCompiled = Object.entries(cold.optimized).filter(([, v]) => v).map(([k]) => k);
    assert.ok(coldCompiled.length < Object.keys(cold.optimized).length, `all compiled without warm-up: ${coldCompiled.join(', ')}`);
  });

  it("a tenant VM's first pings through a new virtualized switch (NVGRE out and in) run compiled after it", async () => {
    const warm = await child('warm', true);
    const cold = await child('cold', true);
    // every echo request left encapsulated on the uplink and every reply reached the VM
    assert.ok(warm.received === 300 && cold.received >= 290, `received warm ${warm.received} cold ${cold.received}`);
    const notCompiled = Object.entries(warm.optimized).filter(([, v]) => !v).map(([k]) => k);
    assert.deepEqual(notCompiled, [], `interpreted after the warm-up: ${notCompiled.map((k) => `${k} (status ${warm.bits[k]})`).join(', ')}`);
    assert.ok(Object.keys(warm.optimized).some((k) => k.startsWith('Virtualization.')));
    const coldCompiled = Object.entries(cold.optimized).filter(([, v]) => v).map(([k]) => k);
    assert.ok(coldCompiled.length < Object.keys(cold.optimized).length, `all compiled without warm-up: ${coldCompiled.join(', ')}`);
  });
});
