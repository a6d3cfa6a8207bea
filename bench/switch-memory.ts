// bench/switch-memory.ts: frames per second through the Switch between two memory ports, with MAC learning, one
// capture and one filter extension enabled. Prints figures; asserts nothing.

import type { CaptureExtension, FilterExtension } from '../src/extensions/api.js';
import { memoryPort } from '../src/io/memory.js';
import { Switch } from '../src/dataplane/switch.js';
import { emitEthernet } from '../src/wire/ethernet.js';

const MAC_A = 0x02_00_00_00_00_0a;
const MAC_B = 0x02_00_00_00_00_0b;

function frame(dst: number, src: number, len: number): Uint8Array {
  const f = new Uint8Array(len);
  emitEthernet({ dst, src, tags: [], etherType: 0x0800 }, f, 0);
  // a consistent IPv4 header (the edge drops one whose lengths contradict the frame as bad-l3-header)
  f[14] = 0x45;
  f[16] = ((len - 14) >> 8) & 0xff;
  f[17] = (len - 14) & 0xff;
  f[22] = 64; // TTL
  f[23] = 17; // UDP
  return f;
}

function run(len: number, withExtensions: boolean, seconds: number): void {
  const sw = new Switch({ name: 'bench' });
  const a = memoryPort('a', { keepSent: false });
  const b = memoryPort('b', { keepSent: false });
  const cfg = (name: string) => ({ name, kind: 'vm' as const, mac: null, vlan: { mode: 'none' as const }, vsid: 0, up: true, macLimit: 0 });
  sw.addPort(a, cfg('a'));
  sw.addPort(b, cfg('b'));
  let bytesSeen = 0;
  const capture = {
    kind: 'capture',
    name: 'bytes',
    observe(f) {
      for (let i = 0; i < f.count; i++) bytesSeen += f.length(i);
    },
  } satisfies CaptureExtension;
  const filter = {
    kind: 'filter',
    name: 'ttl-zero',
    ingress(f) {
      for (let i = 0; i < f.count; i++) if (f.byte(i, 22) === 0) f.drop(i);
    },
  } satisfies FilterExtension;
  if (withExtensions) {
    sw.setExtensions([
      { name: 'bytes', extension: capture, enabled: true },
      { name: 'ttl-zero', extension: filter, enabled: true },
    ]);
  }
  const ab = frame(MAC_B, MAC_A, len);
  const ba = frame(MAC_A, MAC_B, len);
  const step = (): void => {
    for (let k = 0; k < 64; k++) {
      a.inject(ab);
      b.inject(ba);
    }
    sw.poll();
  };
  for (let i = 0; i < 2000; i++) step(); // warm up
  const f0 = sw.frameTotals().forwarded;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < seconds * 1000) {
    for (let i = 0; i < 200; i++) step();
    t = performance.now();
  }
  const frames = sw.frameTotals().forwarded - f0;
  const fps = frames / ((t - t0) / 1000);
  const ext = withExtensions ? 'learning + capture + filter' : 'learning only';
  console.log(
    `${String(len).padStart(5)} B  ${ext.padEnd(28)} ${(fps / 1e6).toFixed(2)} Mframes/s  ${((fps * len * 8) / 1e9).toFixed(2)} Gbit/s` +
      `  (batch 64, memory ports copy in and count out)`,
  );
  sw.close();
}

const secs = Number(process.argv[2] ?? 2);
for (const len of [64, 1514]) {
  run(len, false, secs);
  run(len, true, secs);
}
