// dataplane/drop.ts: the one registry of drop reasons. Docs, counters and metrics all come from here;
// a drop that is not listed here does not compile.

export const DROP_REASONS = {
  runt: 'shorter than an Ethernet header (14 bytes)',
  truncated: 'shorter than its headers claim',
  'bad-l3-header': 'ARP/IPv4/IPv6 header inconsistent with its EtherType (version, IHL < 5, lengths, options)',
  oversize: 'longer than the port MTU allows',
  'egress-oversize': "longer than the destination port's MTU allows (not sent to that port; other destinations get it)",
  'bad-src-mac': 'source MAC is multicast/broadcast or all zeros',
  'bad-vnet-hdr': 'virtio-net header inconsistent with the frame',
  'vlan-not-allowed': 'VLAN not in the port allowed list',
  'vlan-tagged-on-access': 'tagged frame on an access port',
  'vlan-tagged-on-vsid-port': '802.1Q-tagged frame from a port in a virtual subnet (a VSID port carries untagged frames only)',
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
  // port ACLs (src/policy)
  'acl-deny': 'denied by a port ACL (the most specific matching rule of the input port, out, or of the destination, in)',
  'extended-acl-deny': 'denied by an extended port ACL (the matching rule of highest weight; no tracked connection admitted it)',
  'acl-ipv6-chain-unknown': 'IPv6 packet on a port with extended ACLs whose extension header chain is cut short or longer than 8 headers: its upper-layer protocol is unknown, so no rule can judge it',
  'acl-fragment-unknown': 'IP fragment on a port with extended ACLs that cannot be judged: a later one whose first was not seen (or came after it) and the rules need its ports, or an IPv6 first one whose header chain does not reach its upper layer',
  // port guards and private VLANs (src/policy)
  'dhcp-guard': 'DHCP server message (DHCPv4 offer/ack/nak, DHCPv6 advertise/reply) from a port with DHCP guard on',
  'router-guard': 'router advertisement or redirect (ICMPv6 134/137, ICMPv4 5) from a port with router guard on',
  'mac-spoof': "source MAC is not the port's MAC on a port that does not allow MAC spoofing",
  'storm-control': "broadcast/multicast/unknown-unicast frame over the port's storm limit (frames per second)",
  'pvlan-blocked': 'private VLAN: destination not reachable from this isolated/community port',
  // port mirroring (src/policy/mirror.ts)
  'mirror-tx-full': 'a mirror destination port could not take a copy (queue full); the original frame is not affected',
  // QoS (src/policy/qos.ts)
  'qos-queue-full': "the destination port's scheduler queue (maxMbps / linkMbps) for this source was full (only the uplink's frames: other sources are read no faster)",
  'qos-flushed': 'waiting in a scheduler queue when its port or its linkMbps went away',
  // network virtualization (src/virtualization)
  'bad-encap': 'malformed NVGRE/GRE or VXLAN packet on the underlay (flags, protocol, lengths, outer fragment)',
  'unknown-vsid': 'tunnel packet or frame for a VSID that has no virtual subnet on this host',
  'pa-not-owned': 'tunnel or rewritten packet addressed to a provider address this host does not own',
  'pa-unresolved': 'the next hop towards a remote provider address is not resolved by ARP yet',
  'no-lookup-record': 'no lookup record for the destination in its VSID or routing domain (never flooded across hosts)',
  'tenant-mtu-exceeded': 'too big for the tenant MTU after encapsulation (ICMP fragmentation needed / packet too big sent back)',
  'ttl-exceeded': 'routed between virtual subnets with TTL <= 1',
  'no-route': 'routed frame with no lookup record or customer route in its routing domain',
  'rewrite-unsupported': 'a frame an IP rewrite record cannot carry (not IPv4, or an IPv4 fragment)',
} as const satisfies Record<string, string>;

export type DropReason = keyof typeof DROP_REASONS;
export const DROP_REASON_LIST = Object.keys(DROP_REASONS) as DropReason[];
/** Dense index of each reason, for counter arrays. */
export const DROP_INDEX: Record<DropReason, number> = Object.fromEntries(
  DROP_REASON_LIST.map((r, i) => [r, i]),
) as Record<DropReason, number>;
export const DROP_REASON_COUNT = DROP_REASON_LIST.length;
