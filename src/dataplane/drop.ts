// dataplane/drop.ts: the one registry of drop reasons. Docs, counters and metrics all come from here;
// a drop that is not listed here does not compile.

export const DROP_REASONS = {
  runt: 'shorter than an Ethernet header (14 bytes)',
  truncated: 'shorter than its headers claim',
  'bad-l3-header': 'ARP/IPv4/IPv6 header inconsistent with its EtherType (version, IHL < 5, lengths, options)',
  oversize: 'longer than the port MTU allows',
  'bad-src-mac': 'source MAC is multicast/broadcast or all zeros',
  'bad-vnet-hdr': 'virtio-net header inconsistent with the frame',
  'vlan-not-allowed': 'VLAN not in the port allowed list',
  'vlan-tagged-on-access': 'tagged frame on an access port',
  'qinq-not-allowed': 'stacked 802.1ad/802.1Q tags on a port that does not carry them',
  'vsid-mismatch': 'VSID differs from the port VSID',
  'no-destination': 'no port to deliver to (unknown destination not flooded, or all destinations excluded)',
  'hairpin': 'destination is the port the frame came from',
  'port-down': 'destination port is administratively down',
  'port-down-rx': 'received on a port that is administratively down',
  'extension-drop': 'dropped by a filtering or forwarding extension',
  'extension-fault': 'an extension threw while holding this frame',
  'tx-full': 'the destination port could not take the frame (queue full)',
  'tx-error': 'the destination port returned an error on send',
  'gso-unsupported': 'a large segment the destination cannot carry and the switch cannot segment',
  'inject-invalid': 'an injected or originated frame was malformed',
  'inject-queue-full': "the switch's queue for frames originated or cloned by extensions was full",
} as const satisfies Record<string, string>;

export type DropReason = keyof typeof DROP_REASONS;
export const DROP_REASON_LIST = Object.keys(DROP_REASONS) as DropReason[];
/** Dense index of each reason, for counter arrays. */
export const DROP_INDEX: Record<DropReason, number> = Object.fromEntries(
  DROP_REASON_LIST.map((r, i) => [r, i]),
) as Record<DropReason, number>;
export const DROP_REASON_COUNT = DROP_REASON_LIST.length;
