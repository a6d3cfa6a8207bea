// control/warmup.ts: xswitchd runs its forwarding path hot once at start, before the first real frame.
//
// Why: V8 runs new code in its interpreter and compiles a function to machine code only after it has run some
// thousands of times. A switch whose VMs send a few frames a second (pings, ARP) stays interpreted for minutes.
// Measured on this 2-core VM (bench/forwarding's topology, ping through two TAP ports): 330-410 us RTT from a fresh
// daemon, 180-250 us once 4,000 frames have passed.
//
// How: private switches, made by the daemon's own createSwitch, with TAP and AF_PACKET port back ends whose fds
// are AF_UNIX SOCK_SEQPACKET pairs instead of devices (read and written exactly like TAP fds, virtio-net header
// included), driven through the event loop like real ports. Nothing reaches any network or namespace. The
// frames are what a VM sends (ARP, ICMP, TCP, UDP, mostly one per wake-up, some bursts, several source MACs).
// Two capture and two filter extensions with different code are bound, so the compiled hook calls are generic
// and stay valid for the extensions the user binds. Compiled code refers weakly to the objects it ran on and is
// thrown away when they are collected, so the earlier switches are closed and collected (a forced full GC) before
// the last one, which stays (stopped, fds closed, ~0.7 MB). Bounded by frame count and time (about 0.5 s here).
// Each switch also has two tenant VM ports and an uplink with a virtualization policy (warmup-net.ts): NVGRE,
// VXLAN and IP rewrite both ways, policy ARP, routing between subnets, GRO and segmentation before encapsulation.
// What it does not reach: ACLs, guards, QoS and mirroring, and the user's own extension code; those compile with
// the traffic that uses them.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { CaptureExtension, FilterExtension } from '../extensions/api.js';
import type { SwitchApi, PortConfig } from '../dataplane/switch-api.js';
import type { PortId } from '../dataplane/types.js';
import { FdPort, NATIVE_MAX_BATCH, PACKET_VNET_HDR_LEN, TAP_VNET_HDR_LEN, errnoName, loadNative } from '../io/native.js';
import { PacketPort } from '../io/packet.js';
import { TapPort } from '../io/tap.js';
import { writeMac } from '../wire/ethernet.js';
import { emitIpv4 } from '../wire/ipv4.js';
import { netPlan, type NetPlan } from './warmup-net.js';

const MAC_A = 0x02_58_57_00_00_01;
const MAC_B = 0x02_58_57_00_01_01;
const MAC_C = 0x02_58_57_00_02_01;
const IP_A = 0xc0_00_02_01; // 192.0.2.0/24 (TEST-NET-1): the frames never leave the process anyway
const IP_B = 0xc0_00_02_02;
const IP_C = 0xc0_00_02_03;
const DRAIN_SLOT = 2048;
/** Source MACs port A cycles through: learning, moves and refreshes all run compiled. */
const A_MACS = 8;

export interface WarmUpOptions {
  /** The daemon's switch factory: the private switch is built like the real ones. */
  readonly createSwitch: (name: string, batchSize?: number) => SwitchApi;
  /** Frames to forward in all (default 24,000, about 0.3 s here; mostly one per event-loop turn). */
  readonly frames?: number;
  /** Private switches, one after the other (default 3). */
  readonly phases?: number;
  /** Give up after this long (default 1500 ms). */
  readonly maxMs?: number;
}

export interface WarmUpResult {
  readonly frames: number;
  readonly ms: number;
  /** Why the virtualization traffic was left out (the policy was refused), if it was. */
  readonly netSkipped?: string;
}

function vmPort(name: string): PortConfig {
  return { name, kind: 'vm', mac: null, vlan: { mode: 'none' }, vsid: 0, up: true, macLimit: 0 };
}

/** v bytes of virtio-net header (zero: no offload) + Ethernet + IPv4 + `payload` bytes of L4. */
function ipv4Frame(v: number, dst: number, src: number, ipDst: number, ipSrc: number, protocol: number, payload: number): Uint8Array {
  const f = new Uint8Array(v + 14 + 20 + payload);
  writeMac(f, v, dst);
  writeMac(f, v + 6, src);
  f[v + 12] = 0x08;
  emitIpv4({ src: ipSrc, dst: ipDst, protocol, totalLength: 20 + payload, df: true }, f, v + 14);
  if (protocol === 1) f[v + 34] = src === MAC_B ? 0 : 8; // echo reply / request
  if (protocol === 6) f[v + 34 + 12] = 0x50; // TCP data offset 5
  return f;
}

function arpFrame(v: number, dst: number, src: number, op: number, spa: number, tpa: number, tha: number): Uint8Array {
  const f = new Uint8Array(v + 60);
  writeMac(f, v, dst);
  writeMac(f, v + 6, src);
  f.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, op], v + 12);
  writeMac(f, v + 22, src);
  const dv = new DataView(f.buffer);
  dv.setUint32(v + 28, spa);
  writeMac(f, v + 32, tha);
  dv.setUint32(v + 38, tpa);
  return f;
}

function hooks(seen: Float64Array): { name: string; extension: CaptureExtension | FilterExtension; enabled: boolean }[] {
  // Different code in each, so every hook call site sees more than one target.
  const c1: CaptureExtension = {
    kind: 'capture', name: 'warm-up-capture-1',
    observe(b) { seen[0] = seen[0]! + b.count; },
  };
  const c2: CaptureExtension = {
    kind: 'capture', name: 'warm-up-capture-2',
    observe(b, dir) { for (let i = 0; i < b.count; i++) if (dir === 'ingress' && b.etherType(i) === 0x0806) seen[1]!++; },
  };
  const f1: FilterExtension = {
    kind: 'filter', name: 'warm-up-filter-1',
    ingress(b) { for (let i = 0; i < b.count; i++) if (!b.isDropped(i) && b.etherType(i) === 0x0800) seen[2]!++; },
    egress(b) { seen[3] = seen[3]! + b.count; },
  };
  const f2: FilterExtension = {
    kind: 'filter', name: 'warm-up-filter-2',
    ingress(b) { seen[4] = seen[4]! + b.count; },
  };
  return [c1, c2, f1, f2].map((e) => ({ name: e.name, extension: e, enabled: true }));
}

/** The private switches' name (the virtualization policy names it too). */
const WARM_SWITCH = 'warm-up';
/** Frames per batch on the private switch: small slabs for the switch kept after the warm-up. */
const WARM_BATCH = 4;
/** Pause after the last phase for background compile jobs still running (a few ms each here). */
const SETTLE_MS = 30;

let retained: SwitchApi | null = null;

let gcFn: (() => void) | null = null;
function fullGc(): void {
  if (gcFn === null) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

type Nat = Exclude<ReturnType<typeof loadNative>, { error: string }>;

/** A socketpair: `own` goes to a port back end (closed with it), the driver writes and drains `peer`. */
interface Pair {
  readonly own: number;
  readonly peer: number;
  owned: boolean;
}

/** Frames scripted for one source MAC of port A: [peer to write, frame]. */
function script(a: Pair, b: Pair, c: Pair | null, macA: number): [Pair, Uint8Array][] {
  const t = TAP_VNET_HDR_LEN;
  const out: [Pair, Uint8Array][] = [
    [a, arpFrame(t, 0xffff_ffff_ffff, macA, 1, IP_A, IP_B, 0)],
    [b, arpFrame(t, macA, MAC_B, 2, IP_B, IP_A, macA)],
    [a, ipv4Frame(t, MAC_B, macA, IP_B, IP_A, 1, 64)],
    [b, ipv4Frame(t, macA, MAC_B, IP_A, IP_B, 1, 64)],
    [a, ipv4Frame(t, MAC_B, macA, IP_B, IP_A, 6, 1480)],
    [b, ipv4Frame(t, macA, MAC_B, IP_A, IP_B, 6, 20)],
    [a, ipv4Frame(t, MAC_B, macA, IP_B, IP_A, 17, 26)],
  ];
  if (c !== null) {
    const v = PACKET_VNET_HDR_LEN;
    out.push(
      [c, arpFrame(v, 0xffff_ffff_ffff, MAC_C, 1, IP_C, IP_A, 0)],
      [a, ipv4Frame(t, MAC_C, macA, IP_C, IP_A, 1, 64)],
      [c, ipv4Frame(v, macA, MAC_C, IP_A, IP_C, 1, 64)],
    );
  }
  return out;
}

/** Shared by the phases: the virtualization plan, or why it was dropped. */
interface NetState {
  plan: NetPlan | null;
  skipped: string | null;
}

/**
 * One private switch: ports A and B (TAP back ends) and C (an AF_PACKET back end), and with net.plan the tenant
 * VMs V1, V2 (TAP) and the uplink (AF_PACKET) under its virtualization policy. `frames` forwarded, or `deadline`.
 * The last phase (`keep`) leaves its switch stopped but not closed (see below).
 */
async function phase(
  nat: Nat, o: WarmUpOptions, frames: number, deadline: number, pairs: Pair[], keep: boolean, net: NetState,
): Promise<number | { error: string }> {
  const open = (): Pair | { error: string } => {
    const p = nat.socketPair();
    if (typeof p === 'number') return { error: `socketpair: ${errnoName(p)}` };
    const pair = { own: p[0], peer: p[1], owned: false };
    pairs.push(pair);
    return pair;
  };
  const a = open();
  if ('error' in a) return a;
  const b = open();
  if ('error' in b) return b;
  const c = open();
  if ('error' in c) return c;
  const v1 = open();
  if ('error' in v1) return v1;
  const v2 = open();
  if ('error' in v2) return v2;
  const up = open();
  if ('error' in up) return up;
  const sw = o.createSwitch(WARM_SWITCH, WARM_BATCH);
  const backends: FdPort[] = [];
  let forwarded = 0;
  try {
    const pa = new TapPort(nat, a.own, 'warm-a', true);
    const pb = new TapPort(nat, b.own, 'warm-b', true);
    backends.push(pa, pb);
    sw.addPort(pa, vmPort('warm-a'));
    a.owned = true;
    sw.addPort(pb, vmPort('warm-b'));
    b.owned = true;
    let plan = net.plan;
    if (plan !== null) {
      const p1 = new TapPort(nat, v1.own, 'warm-v1', true);
      const p2 = new TapPort(nat, v2.own, 'warm-v2', true);
      const pu = new PacketPort(nat, up.own, 'warm-up0', true, false);
      backends.push(p1, p2, pu);
      sw.addPort(p1, plan.v1);
      v1.owned = true;
      sw.addPort(p2, plan.v2);
      v2.owned = true;
      sw.addPort(pu, plan.uplink);
      up.owned = true;
      try {
        sw.setVirtualization(plan.input);
      } catch (e) {
        // our own fixed policy: refused only if the model changed under it; warm the rest anyway
        net.skipped = e instanceof Error ? e.message : String(e);
        net.plan = plan = null;
      }
    }
    const steps = plan === null ? [] : plan.steps;
    const netPeers = [v1, v2, up];
    sw.setExtensions(hooks(new Float64Array(8)));
    sw.start();
    const one = new Uint32Array(1);
    const zero = new Uint32Array(1);
    const drainSlab = new Uint8Array(NATIVE_MAX_BATCH * DRAIN_SLOT);
    const offs = new Uint32Array(NATIVE_MAX_BATCH);
    const caps = new Uint32Array(NATIVE_MAX_BATCH).fill(DRAIN_SLOT);
    for (let k = 0; k < NATIVE_MAX_BATCH; k++) offs[k] = k * DRAIN_SLOT;
    const lens = new Uint32Array(NATIVE_MAX_BATCH);
    const tcis = new Int32Array(NATIVE_MAX_BATCH);
    const drain = (fd: number): number => {
      let got = 0;
      for (let n = NATIVE_MAX_BATCH; n === NATIVE_MAX_BATCH; got += Math.max(n, 0)) {
        n = nat.recvBatch(fd, drainSlab, offs, caps, lens, tcis, NATIVE_MAX_BATCH);
      }
      return got;
    };
    let cId: PortId | null = null;
    let renewed = false;
    let frameset = script(a, b, null, MAC_A);
    for (let round = 0; forwarded < frames; round++) {
      const progress = forwarded / frames;
      // Earlier phases attach C for their middle half (port changes run compiled too); the kept last phase has it
      // from the start and keeps it, so nothing changes shape while its code is compiled for good.
      if (cId === null && (keep ? round === 0 : progress >= 0.25 && progress < 0.75)) {
        const pc = new PacketPort(nat, c.own, 'warm-c', true, false);
        backends.push(pc);
        cId = sw.addPort(pc, vmPort('warm-c'));
        c.owned = true;
      } else if (cId !== null && !keep && progress >= 0.75) {
        sw.removePort(cId); // closes c.own
        cId = null;
      }
      if (plan !== null && !renewed && progress >= 0.25) {
        // a second layer on the same switch: V8 has seen more than one of each object the layer is made of
        renewed = true;
        sw.setVirtualization(null);
        sw.setVirtualization(plan.input);
      }
      if ((round & 255) === 0) frameset = script(a, b, cId === null ? null : c, MAC_A + ((round >> 8) % A_MACS));
      // Mostly one frame per wake-up, as an idle VM sends; every 16th round a burst of 32.
      const burst = (round & 15) === 15 ? 32 : 1;
      for (let k = 0; k < burst; k++) {
        const [to, f] = frameset[(round + k) % frameset.length]!;
        one[0] = f.length;
        if (nat.sendBatch(to.peer, f, zero, one, 1) !== 1) break; // peer full: drain first
      }
      // tenant traffic: one scripted step per round, its frames together (a TCP run reaches GRO in one batch),
      // and a ping and its reply through the tunnel: the virtualization path runs about as often as the plain one
      if (steps.length > 0 && plan !== null) {
        for (const st of [steps[round % steps.length]!, plan.ping, plan.pong]) {
          const to = netPeers[st.from]!;
          for (const f of st.frames) {
            one[0] = f.length;
            if (nat.sendBatch(to.peer, f, zero, one, 1) !== 1) break;
          }
        }
      }
      await turn();
      forwarded += drain(a.peer) + drain(b.peer) + (cId === null ? 0 : drain(c.peer));
      if (steps.length > 0) forwarded += drain(v1.peer) + drain(v2.peer) + drain(up.peer);
      if (performance.now() > deadline) break;
    }
  } finally {
    if (keep) {
      // Stopped, its fds closed, but not closed as a switch: ports, extension bindings and every object the
      // compiled code ran on stay alive (a few hundred KB with WARM_BATCH). Compiled code refers weakly to the
      // shapes (maps) of those objects; were they all garbage, the next full GC would throw the code away and
      // the first real frames would run interpreted again (measured: a GC after the warm-up did exactly that).
      sw.stop();
      for (const p of backends) p.close();
      retained = sw;
    } else {
      sw.close(); // closes the owned ends
    }
  }
  return forwarded;
}

/**
 * Run the warm-up: `phases` private switches one after the other (the later ones absorb what changes when a new
 * switch starts, as the real ones will). An error (no addon, no sockets) is returned, never thrown: the daemon
 * runs on without a warm-up.
 */
export async function warmUpDataPath(o: WarmUpOptions): Promise<WarmUpResult | { error: string }> {
  const t0 = performance.now();
  const nat = loadNative();
  if ('error' in nat) return nat;
  const deadline = t0 + (o.maxMs ?? 1500);
  const phases = Math.max(1, o.phases ?? 3);
  // Half the frames for the kept last phase: it compiles the code that stays.
  const total = o.frames ?? 24_000;
  const early = phases === 1 ? 0 : Math.ceil(total / 2 / (phases - 1));
  const pairs: Pair[] = [];
  const net: NetState = { plan: netPlan(WARM_SWITCH, 0), skipped: null };
  let frames = 0;
  try {
    for (let k = 0; k < phases && performance.now() < deadline; k++) {
      if (k === phases - 1) {
        // Let the closed switches go first: their poll handles close on a later loop turn and hold them until
        // then. Code compiled earlier that still refers to them is thrown away now, not at some later GC, and
        // the last phase compiles it again on objects that stay (the kept switch).
        for (let t = 0; t < 3; t++) await turn();
        fullGc();
      }
      const last = k === phases - 1;
      const n = await phase(nat, o, last ? total - early * (phases - 1) : early, deadline, pairs, last, net);
      if (typeof n !== 'number') return n;
      frames += n;
    }
    // V8 compiles on a background thread: give the last jobs time to finish before real frames arrive.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  } finally {
    for (const p of pairs) {
      nat.close(p.peer);
      if (!p.owned) nat.close(p.own);
    }
  }
  return { frames, ms: performance.now() - t0, ...(net.skipped === null ? {} : { netSkipped: net.skipped }) };
}
