#!/usr/bin/env bash
# examples/tenants.sh: network virtualization on one machine. Two simulated hosts (namespaces xs-tn-ha, xs-tn-hb,
# each running its own xswitchd with its own store and socket) joined by an underlay bridge (namespace xs-tn-ul),
# and two tenants, red and blue, with one VM on each host, using the SAME addresses 10.0.0.1/10.0.0.2 and the SAME
# MACs (examples/tenants/*.yaml). Each tenant's VMs ping across the hosts through NVGRE; the underlay carries only
# the provider addresses, with the tenant's VSID in the GRE key; the tenants never see each other.
#   examples/tenants.sh          build it, ping, show the policy and the underlay
#   examples/tenants.sh down     stop both daemons (by the PIDs this script recorded) and remove the namespaces
# Run as root from the repository (after scripts/install.sh). State (stores, sockets, logs, PIDs): $STATE.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${XSWITCH_DEMO_STATE:-/run/xswitch-tenants-demo}
P=xs-tn
HOSTS="a b"
xsctl() { local h=$1; shift; node bin/xsctl --socket "$STATE/h$h.sock" "$@"; }

down() {
  for h in $HOSTS; do
    f="$STATE/h$h.pid"
    if [ -f "$f" ]; then
      pid=$(cat "$f")
      # only the daemon this script started: check the PID still runs xswitchd before signalling it
      if grep -q xswitchd "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
      rm -f "$f"
    fi
  done
  for ns in "$P-red1" "$P-blue1" "$P-red2" "$P-blue2" "$P-ha" "$P-hb" "$P-ul"; do ip netns del "$ns" 2>/dev/null || true; done
  echo "tenants: removed the demo namespaces; logs and stores stay in $STATE"
}

if [ "${1:-up}" = "down" ]; then down; exit 0; fi
[ -f dist/src/control/daemon.js ] || npm run build
if ip netns list | grep -q "^$P-ul"; then down >/dev/null; fi   # a previous demo still up: start afresh
mkdir -p "$STATE"

newns() {
  ip netns add "$1"
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$1" link set lo up
}

# the underlay: a bridge acting as the physical network between the hosts' uplinks (MTU 1600: room for NVGRE)
newns "$P-ul"
ip -n "$P-ul" link add br0 type bridge stp_state 0 forward_delay 0
ip -n "$P-ul" link set br0 up
for h in $HOSTS; do
  newns "$P-h$h"
  ip link add "$P-u$h" mtu 1600 type veth peer name up0 mtu 1600 netns "$P-h$h"
  ip link set "$P-u$h" netns "$P-ul"
  ip -n "$P-ul" link set "$P-u$h" master br0 up
  ip -n "$P-h$h" link set up0 up
  ip netns exec "$P-h$h" node bin/xswitchd --store "sqlite:$STATE/h$h.db" --socket "$STATE/h$h.sock" --host "host-$h" \
    >"$STATE/h$h.log" 2>&1 &
  echo $! >"$STATE/h$h.pid"
done
for h in $HOSTS; do
  for _ in $(seq 1 100); do xsctl "$h" status >/dev/null 2>&1 && break; sleep 0.1; done
  cat "examples/tenants/host-$h.yaml" examples/tenants/network.yaml >"$STATE/host-$h.yaml"
  xsctl "$h" apply -f "$STATE/host-$h.yaml"
done

# the VMs: each TAP appears in its host's namespace; move it into the VM namespace and address it
vm() { # vm NAME HOST CA MAC
  local ns="$P-$1" tap="xs-$1"
  newns "$ns"
  for _ in $(seq 1 50); do ip -n "$P-h$2" link show "$tap" >/dev/null 2>&1 && break; sleep 0.1; done
  ip -n "$P-h$2" link set "$tap" netns "$ns"
  ip -n "$ns" link set "$tap" address "$4" mtu 1500
  ip -n "$ns" addr replace "$3/24" dev "$tap"
  ip -n "$ns" link set "$tap" up
}
vm red1 a 10.0.0.1 02:00:00:00:00:01
vm blue1 a 10.0.0.1 02:00:00:00:00:01
vm red2 b 10.0.0.2 02:00:00:00:00:02
vm blue2 b 10.0.0.2 02:00:00:00:00:02

ip netns exec "$P-ul" timeout 6 tcpdump -lni br0 -c 8 ip proto 47 >"$STATE/underlay.txt" 2>/dev/null &
dump=$!
sleep 0.5
for t in red blue; do
  echo "--- $t: ping 10.0.0.2 (host-b) from ${t}1 (host-a)"
  ip netns exec "$P-${t}1" ping -c 3 -i 0.2 -W 2 10.0.0.2
done
wait "$dump" || true
echo "--- the underlay (tcpdump on the bridge): only PAs; the GRE key carries the VSID (5001 red, 6001 blue) << 8"
cat "$STATE/underlay.txt"
echo "--- xsctl vsid list (host-a): virtual subnets, routing domains, tenant MTU"
xsctl a vsid list
echo "--- xsctl record list (host-a): lookup records, CA -> PA"
xsctl a record list
echo "tenants: done. Try \`ip netns exec $P-red1 ping 10.0.0.2\` or remove it all with: examples/tenants.sh down"
