// io/netns.ts: the other network namespaces of this host, where a persistent TAP the daemon made may have been moved
// (a VM's NIC, usually): named ones (/run/netns/*) and those of processes (/proc/PID/ns/net), one entry each.

import { readdirSync, statSync } from 'node:fs';

/** A network namespace to look in: a file setns accepts, and how to name it in messages. */
export interface NetnsRef {
  readonly path: string;
  /** "netns NAME" or "the namespace of pid N". */
  readonly label: string;
}

function nsKey(path: string): string | null {
  try {
    const st = statSync(path); // follows /proc/PID/ns/net to the nsfs inode, as the bind mounts in /run/netns are
    return `${st.dev}:${st.ino}`;
  } catch {
    return null; // the process is gone, or the file is not a namespace we may see
  }
}

/**
 * Every network namespace but the calling thread's, named ones first, deduplicated by inode. One pass over /proc:
 * build it once per apply (not per port and never per frame).
 */
export function otherNetns(runDir = '/run/netns', procDir = '/proc'): NetnsRef[] {
  const seen = new Set<string>();
  const own = nsKey(`${procDir}/thread-self/ns/net`);
  if (own !== null) seen.add(own);
  const out: NetnsRef[] = [];
  const add = (path: string, label: string): void => {
    const k = nsKey(path);
    if (k === null || seen.has(k)) return;
    seen.add(k);
    out.push({ path, label });
  };
  let named: string[] = [];
  try {
    named = readdirSync(runDir).sort();
  } catch {
    // no named namespaces on this host
  }
  for (const n of named) add(`${runDir}/${n}`, `netns ${n}`);
  let pids: string[] = [];
  try {
    pids = readdirSync(procDir).filter((d) => /^\d+$/.test(d));
  } catch {
    // no /proc: only the named ones
  }
  for (const pid of pids) add(`${procDir}/${pid}/ns/net`, `the namespace of pid ${pid}`);
  return out;
}
