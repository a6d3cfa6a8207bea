#!/usr/bin/env bash
# examples/quickstart.sh: apply examples/quickstart.yaml to a running xswitchd, put its three TAPs into namespaces
# xs-demo-vm1..3 (10.0.0.1-3/24), ping between them, show the MAC table and counters. `quickstart.sh down` undoes it.
# Run as root, in the network namespace xswitchd runs in (the TAPs appear there). XSWITCH_SOCKET picks the socket.
set -euo pipefail
cd "$(dirname "$0")/.."
xsctl() { node bin/xsctl "$@"; }
N=3

if [ "${1:-up}" = "down" ]; then
  xsctl switch del sw0 || true
  for i in $(seq 1 $N); do ip netns del "xs-demo-vm$i" 2>/dev/null || true; done
  echo "quickstart: removed switch sw0 and namespaces xs-demo-vm1..$N"
  exit 0
fi

[ -f dist/examples/extensions/frame-counter.js ] || npm run build
xsctl apply -f examples/quickstart.yaml

for i in $(seq 1 $N); do
  ns="xs-demo-vm$i" tap="xs-vm$i"
  ip netns add "$ns" 2>/dev/null || true
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1
  ip -n "$ns" link set lo up
  if ! ip -n "$ns" link show "$tap" >/dev/null 2>&1; then
    # xswitchd created the TAP in this namespace; wait for it (bounded), then move it into the VM namespace.
    for _ in $(seq 1 50); do ip link show "$tap" >/dev/null 2>&1 && break; sleep 0.1; done
    ip link set "$tap" netns "$ns"
  fi
  ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$tap.disable_ipv6=1"
  ip -n "$ns" link set "$tap" address "02:00:00:00:00:0$i"
  ip -n "$ns" addr replace "10.0.0.$i/24" dev "$tap"
  ip -n "$ns" link set "$tap" up
done

for pair in "1 2" "1 3" "2 3"; do
  set -- $pair
  echo "--- ping 10.0.0.$2 from xs-demo-vm$1"
  ip netns exec "xs-demo-vm$1" ping -c 3 -i 0.2 -W 2 "10.0.0.$2"
done

echo "--- xsctl mac sw0"
xsctl mac sw0
echo "--- xsctl counters sw0"
xsctl counters sw0
echo "--- xsctl ext list sw0"
xsctl ext list sw0
echo "quickstart: done. Remove it with: examples/quickstart.sh down"
