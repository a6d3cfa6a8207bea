// examples/extensions/frame-counter.ts: a small capture extension, loaded by path: it counts the frames and bytes
// it sees in each direction (and broadcasts on ingress), shown by `xsctl ext list SWITCH`.
//
// Use it (after `npm run build`, the compiled module is dist/examples/extensions/frame-counter.js):
//   xsctl ext add sw0 count --path dist/examples/extensions/frame-counter.js [--config '{"broadcast": false}']
// or in a document (a relative path is resolved against the document's directory):
//   extensions: [ { name: count, path: ../dist/examples/extensions/frame-counter.js } ]
// Config keys: broadcast (boolean, default true): also count ingress broadcast frames.

import type { CaptureContext, CaptureExtension, Direction, ExtensionFactory, ReadonlyBatch } from '../../src/extensions/api.js';

const BROADCAST = 0xffff_ffff_ffff;

const frameCounter: ExtensionFactory = (config) => {
  for (const k of Object.keys(config)) if (k !== 'broadcast') return { error: `unknown config key "${k}" (known: broadcast)` };
  const broadcast = config['broadcast'] ?? true;
  if (typeof broadcast !== 'boolean') return { error: 'broadcast must be true or false' };
  // Plain numbers, updated in place: nothing allocated per frame.
  const counts = { ingressFrames: 0, ingressBytes: 0, egressFrames: 0, egressBytes: 0, broadcastFrames: 0 };
  return {
    kind: 'capture',
    name: 'frame-counter',
    observe(frames: ReadonlyBatch, dir: Direction, _ctx: CaptureContext): void {
      for (let i = 0; i < frames.count; i++) {
        if (frames.isDropped(i)) continue;
        const len = frames.length(i);
        if (dir === 'ingress') {
          counts.ingressFrames++;
          counts.ingressBytes += len;
          if (broadcast && frames.dstMac(i) === BROADCAST) counts.broadcastFrames++;
        } else {
          counts.egressFrames++;
          counts.egressBytes += len;
        }
      }
    },
    stats: () => counts,
  } satisfies CaptureExtension;
};

export default frameCounter;
