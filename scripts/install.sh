#!/usr/bin/env bash
# scripts/install.sh: install everything xswitch and its test suite need on a fresh Debian machine (as root):
# the Debian packages (network tools, and the real peers the tests talk to), the npm packages (`npm ci` builds the
# native addon and better-sqlite3 against the local Node headers), and the TypeScript build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  iproute2 iputils-ping ethtool procps \
  build-essential python3 ca-certificates \
  tshark tcpdump \
  openvswitch-switch openvswitch-common \
  python3-scapy \
  iperf3 sockperf hping3 arping netsniff-ng socat tcpreplay
npm ci --no-audit --no-fund
npm run build
