// control/daemon.ts: xswitchd. Opens the store, restores the data path from it, serves the API on a Unix socket,
// logs JSON lines on stderr, shuts down cleanly on SIGTERM/SIGINT.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { warmUpDataPath } from './warmup.js';
import { Switch } from '../dataplane/switch.js';
import { tapIoPath } from '../io/native.js';
import { openPacketPort } from '../io/packet.js';
import { openTapPort } from '../io/tap.js';
import { type NetnsRef, otherNetns } from '../io/netns.js';
import { absolute, claimSocket, startApi } from './api.js';
import { DEFAULT_SOCKET } from './client.js';
import { objectNameProblem } from './config.js';
import { Controller } from './controller.js';
import { type Level, jsonLogger } from './log.js';
import { type OpenPort, Reconciler } from './reconciler.js';
import { openSqliteStore } from './store.js';
import { openTunnelUplink, releaseStaleTunnelBridge } from './uplink-bridge.js';
import type { Logger } from '../extensions/api.js';

export const DEFAULT_STORE = 'sqlite:/var/lib/xswitch/xswitch.db';
export { jsonLogger } from './log.js';
export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export interface DaemonFlags {
  store: string;
  socket: string;
  host: string;
  logLevel: Level;
  /** Busy-poll window after traffic, µs (0 = sleep in the event loop right away). */
  busyPollUs: number;
  /** Run the forwarding path hot once before serving (control/warmup.ts); --no-warm-up turns it off. */
  warmUp: boolean;
}

/**
 * Default busy-poll window: off. Measured on this 2-core VM (bench/forwarding, ping RTT through TAP ports), 50 µs
 * changed nothing (385 vs 377 µs) while spinning a core under traffic; the option stays for hosts with spare cores.
 */
export const DEFAULT_BUSY_POLL_US = 0;

const USAGE = `usage: xswitchd [--store sqlite:PATH] [--socket PATH] [--host NAME] [--log-level info|debug|warn]
                [--busy-poll-us N] [--no-warm-up]
  defaults: --store ${DEFAULT_STORE} (env XSWITCH_STORE), --socket ${DEFAULT_SOCKET} (env XSWITCH_SOCKET),
            --host $(hostname), --busy-poll-us ${DEFAULT_BUSY_POLL_US} (after traffic, keep reading ports this
            long before sleeping: may lower latency on a host with spare cores, for CPU while traffic flows)
  --no-warm-up: skip the start-up run of the forwarding path on private switches (about 0.5 s; plain L2 and a
            virtualization policy) that has the compiled data path ready for the first frames instead of after some
            thousands`;

export function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv): { ok: true; flags: DaemonFlags } | { ok: false; error: string; help?: boolean } {
  const flags: DaemonFlags = {
    store: env['XSWITCH_STORE'] ?? DEFAULT_STORE,
    socket: env['XSWITCH_SOCKET'] ?? DEFAULT_SOCKET,
    host: hostname().split('.')[0] ?? 'localhost',
    logLevel: 'info',
    busyPollUs: DEFAULT_BUSY_POLL_US,
    warmUp: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') return { ok: false, error: USAGE, help: true };
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const take = (): string | null => {
      if (eq > 0 && a.startsWith('--')) return a.slice(eq + 1);
      const v = argv[i + 1];
      if (v === undefined) return null;
      i++;
      return v;
    };
    const v = ['--store', '--socket', '--host', '--log-level', '--busy-poll-us'].includes(name) ? take() : undefined;
    if (v === null) return { ok: false, error: `${name} needs a value\n${USAGE}` };
    switch (name) {
      case '--store': flags.store = v!; break;
      case '--socket': flags.socket = v!; break;
      case '--host': flags.host = v!; break;
      case '--log-level':
        if (v !== 'debug' && v !== 'info' && v !== 'warn' && v !== 'error') return { ok: false, error: `--log-level must be debug, info, warn or error\n${USAGE}` };
        flags.logLevel = v;
        break;
      case '--no-warm-up': flags.warmUp = false; break;
      case '--busy-poll-us': {
        const n = Number(v);
        if (!/^\d+$/.test(v!) || n > 10_000) return { ok: false, error: `--busy-poll-us must be an integer 0..10000, got ${v}` };
        flags.busyPollUs = n;
        break;
      }
      default:
        return { ok: false, error: `unknown argument ${a}\n${USAGE}` };
    }
  }
  if (!flags.store.startsWith('sqlite:') || flags.store.length <= 'sqlite:'.length) {
    return { ok: false, error: `--store must be sqlite:PATH (etcd comes later), got ${flags.store}` };
  }
  const hp = objectNameProblem(flags.host);
  if (hp !== null) return { ok: false, error: `--host ${hp}` };
  return { ok: true, flags };
}

/**
 * Back ends as the reconciler asks for them; an uplink with tunnel offload also gets its bridge and TAP. TAP ports
 * are persistent (they outlive a daemon crash or restart, where a hypervisor put them) and are attached again by
 * name, a VM port's also in another namespace: `forget` drops the list of namespaces, built at most once per apply.
 */
function realOpenPort(log: Logger): { open: OpenPort; forget: () => void } {
  let spaces: readonly NetnsRef[] | null = null;
  const netns = (): readonly NetnsRef[] => (spaces ??= otherNetns());
  const open: OpenPort = (spec) => {
    // an internal port's TAP is the host stack's and stays here: only VM NICs are looked for elsewhere
    if (spec.backend === 'tap') return openTapPort(spec.ifname, { offload: spec.offload, persist: true, ...(spec.role === 'vm' ? { netns } : {}) });
    if (spec.role === 'external') {
      if (spec.tunnel !== null) return openTunnelUplink(spec.ifname, spec.tunnel, log);
      releaseStaleTunnelBridge(spec.ifname, log);
    }
    return openPacketPort(spec.ifname, { offload: spec.offload });
  };
  return { open, forget: () => { spaces = null; } };
}

/** Run the daemon; resolves with the exit code once it has shut down (or failed to start). */
export async function main(argv: readonly string[]): Promise<number> {
  const f = parseFlags(argv, process.env);
  if (!f.ok) {
    (f.help === true ? process.stdout : process.stderr).write(`${f.error}\n`);
    return f.help === true ? 0 : 2;
  }
  const { flags } = f;
  const log = jsonLogger(flags.logLevel);
  // A throw that reaches here is a bug: log it as one structured line, then exit (a supervisor restarts us).
  process.on('uncaughtException', (err) => {
    log.error('uncaught exception (a bug)', { error: err.stack ?? String(err) });
    process.exit(70);
  });
  const storePath = absolute(flags.store.slice('sqlite:'.length));
  const socket = absolute(flags.socket);
  const storeUrl = `sqlite:${storePath}`;
  const claimed = await claimSocket(socket);
  if (!claimed.ok) {
    log.error('cannot serve the API', { socket, error: claimed.error });
    process.stderr.write(`xswitchd: ${claimed.error}\n`);
    return 1;
  }
  const opened = openSqliteStore(storePath, flags.host);
  if (!opened.ok) {
    log.error('cannot open the store', { store: storeUrl, error: opened.error });
    process.stderr.write(`xswitchd: ${opened.error}\n`);
    return 1;
  }
  const store = opened.store;
  const createSwitch = (name: string, switchLog: Logger, batchSize?: number): Switch =>
    new Switch({ name, busyPollUs: flags.busyPollUs, ...(batchSize === undefined ? {} : { batchSize }), log: switchLog });
  if (flags.warmUp) {
    // the private switches' own messages (ports, the virtualization policy) would only confuse the log
    const silent: Logger = { info: () => undefined, warn: () => undefined };
    const w = await warmUpDataPath({ createSwitch: (name, batchSize) => createSwitch(name, silent, batchSize) });
    if ('error' in w) log.warn('data path warm-up skipped', { error: w.error });
    else {
      log.info('data path warmed up', { frames: w.frames, ms: Math.round(w.ms) });
      if (w.netSkipped !== undefined) log.warn('data path warm-up left out virtualization', { error: w.netSkipped });
    }
  }
  const ports = realOpenPort(log);
  const reconciler = new Reconciler({
    openPort: ports.open,
    beforeOpen: ports.forget,
    createSwitch: (name) =>
      createSwitch(name, { info: (m, x) => log.info(m, { switch: name, ...x }), warn: (m, x) => log.warn(m, { switch: name, ...x }) }),
    log,
    host: flags.host,
  });
  const ctl = new Controller(store, reconciler, log, { version: version(), host: flags.host, socket });
  const restored = await ctl.restore();
  if (!restored.ok) {
    log.error('cannot read the store', { store: storeUrl, error: restored.error });
    process.stderr.write(`xswitchd: ${restored.error}\n`);
    reconciler.close();
    store.close();
    return 1;
  }
  const api = await startApi(ctl, socket, log);
  if (!api.ok) {
    log.error('cannot serve the API', { socket, error: api.error });
    process.stderr.write(`xswitchd: ${api.error}\n`);
    reconciler.close();
    store.close();
    return 1;
  }
  log.info('xswitchd started', {
    version: version(), host: flags.host, socket, store: storeUrl, pid: process.pid, revision: ctl.revision,
    tapIo: tapIoPath(),
  });
  const sockFlag = socket === DEFAULT_SOCKET ? '' : ` --socket ${socket}`;
  process.stdout.write(`xswitchd: API on unix:${socket} (store ${storeUrl})\n` +
    `next: in another terminal, run examples/quickstart.sh (or: node bin/xsctl${sockFlag} apply -f examples/quickstart.yaml)\n`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info('shutting down', { signal });
      void (async () => {
        await api.api.close();
        await ctl.idle();
        reconciler.close();
        store.close();
        log.info('stopped', {});
        resolve(0);
      })();
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });
}
