// bench/extensions/filter-pass.ts: the benchmark's filter extension: reads every ingress frame's EtherType (as
// a real filter's first classification step would) and passes all of them. Loaded by path from dist/bench/extensions.
import type { ExtensionFactory, FilterBatch, FilterContext, FilterExtension } from '../../src/extensions/api.js';

const factory: ExtensionFactory = () => {
  let ipv4 = 0;
  let other = 0;
  const ext = {
    kind: 'filter',
    name: 'bench-filter-pass',
    ingress(frames: FilterBatch, _ctx: FilterContext): void {
      for (let i = 0; i < frames.count; i++) {
        if (frames.isDropped(i)) continue;
        if (frames.etherType(i) === 0x0800) ipv4++;
        else other++;
      }
    },
    stats(): Readonly<Record<string, number>> {
      return { ipv4, other };
    },
  } satisfies FilterExtension;
  return ext;
};

export default factory;
