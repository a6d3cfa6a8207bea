// bench/extensions/capture-count.ts: the benchmark's capture extension: counts frames by EtherType (ingress) and
// egress frames, the least work a real capture does on every frame. Loaded by path from dist/bench/extensions.
import type {
  CaptureContext, CaptureExtension, Direction, ExtensionFactory, ReadonlyBatch,
} from '../../src/extensions/api.js';

const ETHERTYPE_NAMES: Readonly<Record<number, string>> = {
  0x0800: 'ipv4',
  0x0806: 'arp',
  0x86dd: 'ipv6',
  0x8100: 'vlan',
};

const factory: ExtensionFactory = () => {
  // One counter per EtherType value, preallocated: nothing allocated per frame.
  const ingress = new Float64Array(0x10000);
  let egress = 0;
  let short = 0;
  const ext = {
    kind: 'capture',
    name: 'bench-capture-count',
    observe(frames: ReadonlyBatch, dir: Direction, _ctx: CaptureContext): void {
      if (dir === 'egress') {
        egress += frames.count;
        return;
      }
      for (let i = 0; i < frames.count; i++) {
        const et = frames.etherType(i);
        if (et < 0) short++;
        else ingress[et]!++;
      }
    },
    stats(): Readonly<Record<string, number>> {
      const out: Record<string, number> = { egress, short };
      for (let et = 0; et < ingress.length; et++) {
        const n = ingress[et]!;
        if (n === 0) continue;
        out[ETHERTYPE_NAMES[et] ?? `0x${et.toString(16).padStart(4, '0')}`] = n;
      }
      return out;
    },
  } satisfies CaptureExtension;
  return ext;
};

export default factory;
