// dataplane/mac-table.ts: the learning table, (domain, MAC) -> port, as a preallocated open-addressing hash
// (linear probing, backward-shift deletion: no tombstones, no per-frame allocation, bounded by the switch limit).
// The data path passes a MAC as two int32 halves (hi 16 bits, lo 32 bits as a signed int): a 48-bit double
// argument would be boxed (a heap number per call) whenever the call is not inlined.

import { NO_PORT, type Millis, type PortId } from './types.js';

/** Learning-domain key: the VLAN id (0..4095), or VSID_DOMAIN + VSID for virtual-subnet ports. */
export const VSID_DOMAIN = 0x1000;
export function learningDomain(vlan: number, vsid: number): number {
  return vsid !== 0 ? VSID_DOMAIN + vsid : vlan;
}

export const macHi = (mac: number): number => Math.floor(mac / 0x1_0000_0000) & 0xffff;
export const macLo = (mac: number): number => mac % 0x1_0000_0000 | 0;

export type LearnResult = 'known' | 'learned' | 'moved' | 'refused';

export interface MacTableOptions {
  /** Most entries in the table. */
  readonly limit: number;
  /** Default most entries per port (a port may override with setPortLimit). */
  readonly limitPerPort: number;
  readonly agingMs: Millis;
}

export class MacTable {
  readonly limit: number;
  readonly agingMs: Millis;
  private readonly defaultPortLimit: number;
  private readonly mask: number;
  private readonly used: Uint8Array;
  private readonly macHi: Int32Array;
  private readonly macLo: Int32Array;
  private readonly domains: Int32Array;
  private readonly ports: Int32Array;
  private readonly seen: Float64Array;
  /** Entries and limits per port id (grown when a larger id appears; control path). */
  private perPort: Int32Array = new Int32Array(16);
  private portLimit: Int32Array = new Int32Array(16);
  size = 0;

  constructor(opts: MacTableOptions) {
    this.limit = Math.max(1, opts.limit);
    this.agingMs = opts.agingMs;
    this.defaultPortLimit = Math.max(1, opts.limitPerPort);
    let cap = 16;
    while (cap < this.limit * 2) cap *= 2; // load factor <= 0.5 keeps probes short
    this.mask = cap - 1;
    this.used = new Uint8Array(cap);
    this.macHi = new Int32Array(cap);
    this.macLo = new Int32Array(cap);
    this.domains = new Int32Array(cap);
    this.ports = new Int32Array(cap);
    this.seen = new Float64Array(cap);
  }

  get capacity(): number {
    return this.mask + 1;
  }

  /** Set port `port`'s limit (0 = default). */
  setPortLimit(port: PortId, limit: number): void {
    this.ensurePort(port);
    this.portLimit[port] = limit > 0 ? limit : 0;
  }

  private ensurePort(port: number): void {
    if (port < this.perPort.length) return;
    let n = this.perPort.length;
    while (n <= port) n *= 2;
    const a = new Int32Array(n);
    a.set(this.perPort);
    this.perPort = a;
    const b = new Int32Array(n);
    b.set(this.portLimit);
    this.portLimit = b;
  }

  private hash(domain: number, hi: number, lo: number): number {
    let h = Math.imul(lo ^ 0x9e3779b9, 0x85ebca6b);
    h ^= Math.imul(hi + (domain << 16), 0xc2b2ae35);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 13;
    return h & this.mask;
  }

  private find(domain: number, hi: number, lo: number): number {
    let s = this.hash(domain, hi, lo);
    while (this.used[s] === 1) {
      if (this.macLo[s] === lo && this.macHi[s] === hi && this.domains[s] === domain) return s;
      s = (s + 1) & this.mask;
    }
    return -1;
  }

  /** The port that MAC (hi, lo) was last seen on in `domain`, or NO_PORT (unknown or aged out). */
  lookup(domain: number, hi: number, lo: number, now: Millis): PortId {
    const s = this.find(domain, hi, lo);
    if (s < 0) return NO_PORT;
    if (now - this.seen[s]! > this.agingMs) {
      this.removeSlot(s);
      return NO_PORT;
    }
    return this.ports[s]! as PortId;
  }

  /** lookup() for a MAC as a 48-bit number (control path and tests). */
  lookupMac(domain: number, mac: number, now: Millis): PortId {
    return this.lookup(domain, macHi(mac), macLo(mac), now);
  }

  /** learn() for a MAC as a 48-bit number (control path and tests). */
  learnMac(domain: number, mac: number, port: PortId, now: Millis): LearnResult {
    return this.learn(domain, macHi(mac), macLo(mac), port, now);
  }

  /** Record that MAC (hi, lo) was seen on `port` in `domain`. */
  learn(domain: number, hi: number, lo: number, port: PortId, now: Millis): LearnResult {
    const s = this.find(domain, hi, lo);
    if (s >= 0) {
      const old = this.ports[s]!;
      if (old === port) {
        this.seen[s] = now;
        return 'known';
      }
      // moved: the new port must have room, else forget the MAC (frames to it flood) rather than misdeliver
      this.perPort[old]!--;
      if (this.overPortLimit(port)) {
        this.perPort[old]!++;
        this.removeSlot(s);
        return 'refused';
      }
      this.ports[s] = port;
      this.perPort[port]!++;
      this.seen[s] = now;
      return 'moved';
    }
    if (this.size >= this.limit || this.overPortLimit(port)) return 'refused';
    let t = this.hash(domain, hi, lo);
    while (this.used[t] === 1) t = (t + 1) & this.mask;
    this.used[t] = 1;
    this.macHi[t] = hi;
    this.macLo[t] = lo;
    this.domains[t] = domain;
    this.ports[t] = port;
    this.seen[t] = now;
    this.perPort[port]!++;
    this.size++;
    return 'learned';
  }

  private overPortLimit(port: PortId): boolean {
    if (port >= this.perPort.length) this.ensurePort(port);
    const lim = this.portLimit[port]! > 0 ? this.portLimit[port]! : this.defaultPortLimit;
    return this.perPort[port]! >= lim;
  }

  /** Entries learned on `port`. */
  portCount(port: PortId): number {
    return port < this.perPort.length ? this.perPort[port]! : 0;
  }

  /** Remove the entry in slot s and shift later entries of its probe run back (no tombstones). */
  private removeSlot(s: number): void {
    this.perPort[this.ports[s]!]!--;
    this.size--;
    let hole = s;
    let j = s;
    for (;;) {
      j = (j + 1) & this.mask;
      if (this.used[j] === 0) break;
      const home = this.hash(this.domains[j]!, this.macHi[j]!, this.macLo[j]!);
      // move j into the hole when its home is not cyclically within (hole, j]
      const inRange = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!inRange) {
        this.used[hole] = 1;
        this.macHi[hole] = this.macHi[j]!;
        this.macLo[hole] = this.macLo[j]!;
        this.domains[hole] = this.domains[j]!;
        this.ports[hole] = this.ports[j]!;
        this.seen[hole] = this.seen[j]!;
        hole = j;
      }
    }
    this.used[hole] = 0;
  }

  /** Remove every entry matching `pred`, restarting the scan after each shift. */
  private removeWhere(pred: (s: number) => boolean): number {
    let n = 0;
    let s = 0;
    while (s <= this.mask) {
      if (this.used[s] === 1 && pred(s)) {
        this.removeSlot(s);
        n++;
        continue; // the slot now holds a shifted entry (or is empty): look at it again
      }
      s++;
    }
    return n;
  }

  /** Forget every MAC learned on `port` (port removed or reconfigured). */
  flushPort(port: PortId): number {
    if (this.portCount(port) === 0) return 0;
    return this.removeWhere((s) => this.ports[s] === port);
  }

  /** Remove entries older than the aging time. Control path (about once a second). */
  expire(now: Millis): number {
    return this.removeWhere((s) => now - this.seen[s]! > this.agingMs);
  }

  clear(): void {
    this.used.fill(0);
    this.perPort.fill(0);
    this.size = 0;
  }

  /** Live entries (control path). */
  entries(now: Millis): { mac: number; domain: number; port: PortId; ageMs: Millis }[] {
    const out: { mac: number; domain: number; port: PortId; ageMs: Millis }[] = [];
    for (let s = 0; s <= this.mask; s++) {
      if (this.used[s] !== 1) continue;
      const age = now - this.seen[s]!;
      if (age > this.agingMs) continue;
      out.push({ mac: this.macHi[s]! * 0x1_0000_0000 + (this.macLo[s]! >>> 0), domain: this.domains[s]!, port: this.ports[s]! as PortId, ageMs: age });
    }
    return out;
  }
}
