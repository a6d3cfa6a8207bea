// dataplane/local-ports.ts: the switch's ports as the virtualization layer sees them (virtualization/api.ts
// LocalPorts): the external port, the VM port owning a MAC in a virtual subnet, local flooding inside a VSID, the
// sending port's ACL verdict on a frame the layer answers itself.

import type { LocalPorts } from '../virtualization/api.js';
import type { DropReason } from './drop.js';
import type { FrameMeta } from './frame.js';
import { learningDomain, macHi, macLo, type MacTable } from './mac-table.js';
import { sourceAclVerdict } from './port-policy.js';
import type { PortTable } from './port-table.js';
import { NO_PORT, type Millis, type PortId } from './types.js';

export class SwitchLocalPorts implements LocalPorts {
  external: PortId = NO_PORT;
  /** Time of the current batch (MAC lookups honour aging). */
  now: Millis = 0 as Millis;

  constructor(
    private readonly ports: PortTable,
    private readonly macs: MacTable,
  ) {}

  /** Control path: after any port change. */
  refresh(): void {
    this.external = NO_PORT;
    for (const p of this.ports.list) {
      if (p.external) {
        this.external = p.id;
        break;
      }
    }
  }

  find(vsid: number, mac: number): PortId {
    const learned = this.macs.lookup(learningDomain(0, vsid), macHi(mac), macLo(mac), this.now);
    if (learned !== NO_PORT) {
      const p = this.ports.get(learned);
      if (p !== undefined && !p.external && p.vsid === vsid) return learned;
    }
    const list = this.ports.list;
    for (let k = 0; k < list.length; k++) {
      const p = list[k]!;
      if (!p.external && p.vsid === vsid && p.cfg.mac === mac) return p.id;
    }
    return NO_PORT;
  }

  floodLocal(m: FrameMeta): void {
    const list = this.ports.list;
    for (let k = 0; k < list.length; k++) {
      const p = list[k]!;
      if (p.id === m.inPort || !p.up || p.external || p.vsid !== m.vsid) continue;
      m.dest.add(p.id);
    }
  }

  sourceAcl(slab: Uint8Array, m: FrameMeta): DropReason | null {
    return sourceAclVerdict(slab, m, this.ports, this.now);
  }
}
