// test/helpers/pcap.ts: a small reader and writer of pcap (µs and ns, either byte order) and pcapng
// (SHB, IDB with if_tsresol, EPB, SPB) captures. Records come out as { ts, bytes, linktype }.

import { readFileSync, writeFileSync } from 'node:fs';

export const LINKTYPE_ETHERNET = 1;

export interface PcapRecord {
  /** Seconds since the epoch (fractional). */
  ts: number;
  bytes: Uint8Array;
  linktype: number;
  /** Length on the wire (>= bytes.length when the capture was truncated by a snaplen). */
  origLength: number;
}

/** Parse a pcap or pcapng file's bytes. Throws on a malformed file (test helper, not the data path). */
export function readCapture(buf: Uint8Array): PcapRecord[] {
  if (buf.length < 4) throw new Error('capture: file too short');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const m = dv.getUint32(0, false);
  if (m === 0x0a0d0d0a) return readPcapng(buf, dv);
  return readPcap(buf, dv);
}

export function readCaptureFile(path: string | URL): PcapRecord[] {
  return readCapture(new Uint8Array(readFileSync(path)));
}

function readPcap(buf: Uint8Array, dv: DataView): PcapRecord[] {
  if (buf.length < 24) throw new Error('pcap: header too short');
  const mBE = dv.getUint32(0, false);
  let le: boolean;
  let nano: boolean;
  if (mBE === 0xa1b2c3d4 || mBE === 0xa1b23c4d) {
    le = false;
    nano = mBE === 0xa1b23c4d;
  } else {
    const mLE = dv.getUint32(0, true);
    if (mLE !== 0xa1b2c3d4 && mLE !== 0xa1b23c4d) throw new Error(`pcap: bad magic 0x${mBE.toString(16)}`);
    le = true;
    nano = mLE === 0xa1b23c4d;
  }
  const linktype = dv.getUint32(20, le) & 0x0fff_ffff;
  const out: PcapRecord[] = [];
  let p = 24;
  while (p + 16 <= buf.length) {
    const sec = dv.getUint32(p, le);
    const frac = dv.getUint32(p + 4, le);
    const incl = dv.getUint32(p + 8, le);
    const orig = dv.getUint32(p + 12, le);
    p += 16;
    if (p + incl > buf.length) throw new Error(`pcap: record at ${p - 16} runs past the file`);
    out.push({ ts: sec + frac / (nano ? 1e9 : 1e6), bytes: buf.slice(p, p + incl), linktype, origLength: orig });
    p += incl;
  }
  return out;
}

function readPcapng(buf: Uint8Array, dv: DataView): PcapRecord[] {
  const out: PcapRecord[] = [];
  let le = true;
  // per section: interfaces' link types and timestamp units (ticks per second)
  let ifaces: { linktype: number; tps: number }[] = [];
  let p = 0;
  while (p + 12 <= buf.length) {
    const typeBE = dv.getUint32(p, false);
    if (typeBE === 0x0a0d0d0a) {
      const bom = dv.getUint32(p + 8, true);
      if (bom === 0x1a2b3c4d) le = true;
      else if (bom === 0x4d3c2b1a) le = false;
      else throw new Error('pcapng: bad byte-order magic');
      ifaces = [];
    }
    const type = dv.getUint32(p, le);
    const len = dv.getUint32(p + 4, le);
    if (len < 12 || p + len > buf.length || len % 4 !== 0) throw new Error(`pcapng: bad block length ${len} at ${p}`);
    const body = p + 8;
    const bodyEnd = p + len - 4;
    if (type === 1) {
      const linktype = dv.getUint16(body, le);
      let tps = 1e6;
      // options after linktype(2) reserved(2) snaplen(4)
      for (let o = body + 8; o + 4 <= bodyEnd; ) {
        const code = dv.getUint16(o, le);
        const olen = dv.getUint16(o + 2, le);
        if (code === 0) break;
        if (code === 9 && olen >= 1) {
          const r = buf[o + 4]!;
          tps = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
        }
        o += 4 + ((olen + 3) & ~3);
      }
      ifaces.push({ linktype, tps });
    } else if (type === 6) {
      const ifId = dv.getUint32(body, le);
      const hi = dv.getUint32(body + 4, le);
      const lo = dv.getUint32(body + 8, le);
      const cap = dv.getUint32(body + 12, le);
      const orig = dv.getUint32(body + 16, le);
      const d = body + 20;
      if (d + cap > bodyEnd) throw new Error(`pcapng: EPB data past its block at ${p}`);
      const iface = ifaces[ifId];
      if (iface === undefined) throw new Error(`pcapng: EPB for unknown interface ${ifId}`);
      const ticks = hi * 2 ** 32 + lo;
      out.push({ ts: ticks / iface.tps, bytes: buf.slice(d, d + cap), linktype: iface.linktype, origLength: orig });
    } else if (type === 3) {
      const orig = dv.getUint32(body, le);
      const iface = ifaces[0];
      if (iface === undefined) throw new Error('pcapng: SPB without an interface');
      const cap = Math.min(orig, bodyEnd - body - 4);
      out.push({ ts: 0, bytes: buf.slice(body + 4, body + 4 + cap), linktype: iface.linktype, origLength: orig });
    }
    p += len;
  }
  return out;
}

/** Classic pcap, little endian, microsecond timestamps, one link type. */
export function writePcap(records: readonly { ts?: number; bytes: Uint8Array }[], linktype = LINKTYPE_ETHERNET): Uint8Array {
  let size = 24;
  for (const r of records) size += 16 + r.bytes.length;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0xa1b2c3d4, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setUint32(16, 262144, true);
  dv.setUint32(20, linktype, true);
  let p = 24;
  for (const r of records) {
    const ts = r.ts ?? 0;
    const sec = Math.floor(ts);
    dv.setUint32(p, sec, true);
    dv.setUint32(p + 4, Math.round((ts - sec) * 1e6), true);
    dv.setUint32(p + 8, r.bytes.length, true);
    dv.setUint32(p + 12, r.bytes.length, true);
    out.set(r.bytes, p + 16);
    p += 16 + r.bytes.length;
  }
  return out;
}

/** pcapng, little endian: one SHB, one IDB (µs), one EPB per record. */
export function writePcapng(records: readonly { ts?: number; bytes: Uint8Array }[], linktype = LINKTYPE_ETHERNET): Uint8Array {
  let size = 28 + 20;
  for (const r of records) size += 32 + ((r.bytes.length + 3) & ~3);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  // SHB
  dv.setUint32(0, 0x0a0d0d0a, true);
  dv.setUint32(4, 28, true);
  dv.setUint32(8, 0x1a2b3c4d, true);
  dv.setUint16(12, 1, true);
  dv.setUint16(14, 0, true);
  dv.setInt32(16, -1, true);
  dv.setInt32(20, -1, true);
  dv.setUint32(24, 28, true);
  // IDB
  let p = 28;
  dv.setUint32(p, 1, true);
  dv.setUint32(p + 4, 20, true);
  dv.setUint16(p + 8, linktype, true);
  dv.setUint32(p + 12, 262144, true);
  dv.setUint32(p + 16, 20, true);
  p += 20;
  for (const r of records) {
    const padded = (r.bytes.length + 3) & ~3;
    const bl = 32 + padded;
    const us = Math.round((r.ts ?? 0) * 1e6);
    dv.setUint32(p, 6, true);
    dv.setUint32(p + 4, bl, true);
    dv.setUint32(p + 8, 0, true);
    dv.setUint32(p + 12, Math.floor(us / 2 ** 32), true);
    dv.setUint32(p + 16, us >>> 0, true);
    dv.setUint32(p + 20, r.bytes.length, true);
    dv.setUint32(p + 24, r.bytes.length, true);
    out.set(r.bytes, p + 28);
    dv.setUint32(p + bl - 4, bl, true);
    p += bl;
  }
  return out;
}

export function writeCaptureFile(path: string | URL, records: readonly { ts?: number; bytes: Uint8Array }[], ng = false): void {
  writeFileSync(path, ng ? writePcapng(records) : writePcap(records));
}
