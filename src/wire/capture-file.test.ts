// wire/capture-file.test.ts: test/helpers/pcap.ts (the pcap/pcapng reader and writer the wire tests rely on),
// checked against tshark's view of the committed captures and by round trips.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { LINKTYPE_ETHERNET, readCapture, readCaptureFile, writePcap, writePcapng } from '../../test/helpers/pcap.js';

const FIX = new URL('../../../test/fixtures/wire/', import.meta.url);

describe('pcap / pcapng reader', () => {
  for (const [file, json] of [
    ['scapy-wire.pcap', 'scapy-wire.tshark.json'],
    ['scapy-crafted.pcap', 'scapy-crafted.tshark.json'],
    ['ovs-nvgre-flowid.pcapng', 'ovs-nvgre-flowid.tshark.json'],
    ['linux-vxlan-5001.pcapng', 'linux-vxlan-5001.tshark.json'],
  ] as const) {
    it(`${file}: frame count and lengths equal tshark's`, () => {
      const recs = readCaptureFile(new URL(file, FIX));
      const ts = JSON.parse(readFileSync(new URL(json, FIX), 'utf8')) as { frames: Record<string, string[]>[] };
      assert.equal(recs.length, ts.frames.length);
      recs.forEach((r, i) => {
        assert.equal(r.linktype, LINKTYPE_ETHERNET);
        assert.equal(String(r.bytes.length), ts.frames[i]!['frame.len']![0], `frame ${i + 1}`);
        assert.equal(r.origLength, r.bytes.length);
      });
    });
  }

  it('pcapng nanosecond timestamps (if_tsresol 9) come out in seconds', () => {
    const recs = readCaptureFile(new URL('ovs-nvgre-flowid.pcapng', FIX));
    assert.ok(Math.abs(recs[0]!.ts - 1795559017.867943554) < 1e-6);
    for (let i = 1; i < recs.length; i++) assert.ok(recs[i]!.ts >= recs[i - 1]!.ts);
  });

  it('round trips through both writers', () => {
    const recs = [
      { ts: 1700000000.25, bytes: new Uint8Array([1, 2, 3]) },
      { ts: 1700000001.000001, bytes: new Uint8Array(61).fill(7) },
      { ts: 0, bytes: new Uint8Array(0) },
    ];
    for (const w of [writePcap, writePcapng]) {
      const back = readCapture(w(recs));
      assert.equal(back.length, 3);
      back.forEach((r, i) => {
        assert.deepEqual(r.bytes, recs[i]!.bytes);
        assert.ok(Math.abs(r.ts - recs[i]!.ts) < 2e-6);
      });
    }
  });

  it('reads big-endian and nanosecond classic pcap', () => {
    const b = new Uint8Array(24 + 16 + 2);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, 0xa1b23c4d, false); // ns magic, big endian
    dv.setUint32(20, 1, false);
    dv.setUint32(24, 10, false);
    dv.setUint32(28, 500_000_000, false);
    dv.setUint32(32, 2, false);
    dv.setUint32(36, 2, false);
    b[40] = 0xab;
    b[41] = 0xcd;
    const r = readCapture(b);
    assert.equal(r.length, 1);
    assert.equal(r[0]!.ts, 10.5);
    assert.deepEqual([...r[0]!.bytes], [0xab, 0xcd]);
  });

  it('rejects a bad magic and a record past the end', () => {
    assert.throws(() => readCapture(new Uint8Array(24)), /bad magic/);
    const b = writePcap([{ bytes: new Uint8Array(10) }]);
    assert.throws(() => readCapture(b.subarray(0, b.length - 1)), /past the file/);
  });
});
