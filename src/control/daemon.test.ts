// control/daemon.test.ts: xswitchd's flags: contract defaults, environment overrides, clear refusals.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_STORE, parseFlags } from './daemon.js';

describe('xswitchd flags', () => {
  it('uses the contract defaults, and XSWITCH_SOCKET / XSWITCH_STORE', () => {
    const d = parseFlags([], {});
    assert.ok(d.ok);
    assert.equal(d.flags.store, DEFAULT_STORE);
    assert.equal(d.flags.store, 'sqlite:/var/lib/xswitch/xswitch.db');
    assert.equal(d.flags.socket, '/run/xswitch/xswitchd.sock');
    assert.equal(d.flags.logLevel, 'info');
    const e = parseFlags([], { XSWITCH_SOCKET: '/tmp/a.sock', XSWITCH_STORE: 'sqlite:/tmp/a.db' });
    assert.ok(e.ok);
    assert.deepEqual([e.flags.socket, e.flags.store], ['/tmp/a.sock', 'sqlite:/tmp/a.db']);
  });

  it('takes --store, --socket, --host, --log-level, --busy-poll-us, --no-warm-up (also with =)', () => {
    const f = parseFlags(['--store', 'sqlite:/x.db', '--socket=/y.sock', '--host', 'h1', '--log-level', 'debug', '--busy-poll-us=50', '--no-warm-up'], { XSWITCH_SOCKET: '/ignored' });
    assert.ok(f.ok);
    assert.deepEqual(f.flags, { store: 'sqlite:/x.db', socket: '/y.sock', host: 'h1', logLevel: 'debug', busyPollUs: 50, warmUp: false });
    const d = parseFlags([], {});
    assert.ok(d.ok && d.flags.busyPollUs === 0 && d.flags.warmUp);
  });

  it('refuses unknown flags, missing values, other stores, bad hosts and levels', () => {
    for (const [args, re] of [
      [['--frob'], /unknown argument --frob/],
      [['--store'], /--store needs a value/],
      [['--store', 'etcd:http://x'], /sqlite:PATH/],
      [['--host', 'a b'], /--host/],
      [['--log-level', 'loud'], /--log-level must be/],
      [['--busy-poll-us', '-5'], /--busy-poll-us must be an integer/],
      [['--busy-poll-us', '20000'], /--busy-poll-us must be an integer/],
    ] as const) {
      const r = parseFlags(args, {});
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.error, re);
    }
    const h = parseFlags(['--help'], {});
    assert.ok(!h.ok && h.help === true);
  });
});
