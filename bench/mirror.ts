// bench/mirror.ts: the cost of port mirroring on the switch path, in one run: 64-byte frames between two memory
// ports with (1) no mirror, (2) a destination port but no source (mirroring idle), (3) port a a source and a
// third port the destination (every frame copied once). Rounds alternate so machine noise hits every case alike.
// Prints figures; asserts nothing.

import { memoryPort } from '../src/io/memory.js';
import { Switch } from '../src/dataplane/switch.js';
import type { PortConfig } from '../src/dataplane/switch-api.js';
import { emitEthernet } from '../src/wire/ethernet.js';

const MAC_A = 0x02_00_00_00_00_0a;
const MAC_B = 0x02_00_00_00_00_0b;

function frame(dst: number, src: number, len: number): Uint8Array {
  const f = new Uint8Array(len);
  // IEEE 802 local experimental EtherType: no L3 header for the edge check to refuse
  emitEthernet({ dst, src, tags: [], etherType: 0x88b5 }, f, 0);
  return f;
}

type Mode = 'off' | 'idle' | 'copy';

function setup(mode: Mode): { sw: Switch; step: () => void } {
  const sw = new Switch({ name: 'bench' });
  const cfg = (name: string, mirror: NonNullable<PortConfig['mirror']>): PortConfig => ({ name, kind: 'vm', mac: null, vlan: { mode: 'none' }, vsid: 0, up: true, macLimit: 0, mirror });
  const a = memoryPort('a', { keepSent: false });
  const b = memoryPort('b', { keepSent: false });
  sw.addPort(a, cfg('a', mode === 'copy' ? 'source' : 'none'));
  sw.addPort(b, cfg('b', 'none'));
  if (mode !== 'off') sw.addPort(memoryPort('m', { keepSent: false }), cfg('m', 'destination'));
  const ab = frame(MAC_B, MAC_A, 64);
  const ba = frame(MAC_A, MAC_B, 64);
  const step = (): void => {
    for (let k = 0; k < 64; k++) {
      a.inject(ab);
      b.inject(ba);
    }
    sw.poll();
  };
  for (let i = 0; i < 2000; i++) step();
  return { sw, step };
}

const secs = Number(process.argv[2] ?? 1);
const rounds = Number(process.argv[3] ?? 3);
const modes: Mode[] = ['off', 'idle', 'copy'];
const rigs = modes.map(setup);
const frames = [0, 0, 0];
const ms = [0, 0, 0];
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < modes.length; k++) {
    const { sw, step } = rigs[k]!;
    const f0 = sw.frameTotals().forwarded;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < secs * 1000) {
      for (let i = 0; i < 200; i++) step();
      t = performance.now();
    }
    frames[k]! += sw.frameTotals().forwarded - f0;
    ms[k]! += t - t0;
  }
}
const base = frames[0]! / ms[0]!;
for (let k = 0; k < modes.length; k++) {
  const fps = (frames[k]! / ms[k]!) * 1000;
  const copies = rigs[k]!.sw.switchCounters().mirrored ?? 0;
  console.log(`mirror ${modes[k]!.padEnd(5)} ${(fps / 1e6).toFixed(2)} Mframes/s forwarded  (${((frames[k]! / ms[k]! / base) * 100).toFixed(1)}% of no mirror; ${copies} copies)`);
}
for (const r of rigs) r.sw.close();
