#!/usr/bin/env bash
# A simulated multi-host cluster network on one Linux machine: N "hosts" in network namespaces
# PREFIX-h1..hN (eth0 = SUBNET.I/24) cabled by veth pairs to a bridge that lives in its own
# namespace PREFIX-sw (SUBNET.254). Nothing is attached to the root namespace, so no traffic
# can leave the machine. Shaping puts a tbf on both ends of every host link (host egress and
# switch egress towards the host): a non-blocking switch with full-duplex NICs of RATE.
#
#   scripts/netsim.sh up N            create N hosts (default 4); fails if they exist
#   scripts/netsim.sh shape RATE      shape every link, e.g. 1gbit, 100mbit (tc units)
#   scripts/netsim.sh unshape         remove the shaping
#   scripts/netsim.sh status          addresses and qdiscs
#   scripts/netsim.sh hostfile [K]    print an Open MPI hostfile, K slots per host (default 1)
#   scripts/netsim.sh exec I CMD...   run CMD in host I (own UTS namespace, hostname hI)
#   scripts/netsim.sh down            delete every PREFIX-* namespace and its /etc/netns entry
#
# Env: NETSIM_PREFIX (default vqn), NETSIM_SUBNET (default 10.77.0), NETSIM_BURST (tbf bucket;
# default 1 ms of traffic at the rate, at least 16kb: 128kb at 1gbit, 16kb at 100mbit),
# NETSIM_QLAT (tbf latency, default 50ms).
# Ranks go into the hosts with mpirun --mca plm_rsh_agent scripts/nsrsh (see
# benchmarks/cluster/run.sh). Needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN), iproute2, util-linux.
set -euo pipefail
P=${NETSIM_PREFIX:-vqn}
NET=${NETSIM_SUBNET:-10.77.0}
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "netsim.sh: $*" >&2; exit 1; }
[[ $P =~ ^[a-z][a-z0-9]{0,5}$ ]] || die "NETSIM_PREFIX must be 1-6 lowercase letters/digits, not '$P'"
[[ $NET =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "NETSIM_SUBNET must look like 10.77.0, not '$NET'"

namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$P-(h[0-9]+|sw)$" || true; }
hosts() { namespaces | sed -n "s/^$P-h//p" | sort -n; }

cmd=${1:-}
[ -n "$cmd" ] || { usage >&2; exit 2; }
shift
case "$cmd" in -h|--help|help) usage; exit 0 ;; esac
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, veth, tc)"
for t in ip tc unshare; do command -v "$t" >/dev/null || die "'$t' not found (packages iproute2, util-linux)"; done

case "$cmd" in
up)
  n=${1:-4}
  if ! [[ $n =~ ^[1-9][0-9]?$ ]] || [ "$n" -gt 64 ]; then die "N must be 1..64, not '$n'"; fi
  [ -z "$(namespaces)" ] || die "namespaces $P-* exist already; run: scripts/netsim.sh down"
  if ! command -v ethtool >/dev/null; then
    if command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ethtool >/dev/null 2>&1 ||
        echo "netsim.sh: could not install ethtool; offloads stay on (shaping is less exact)" >&2
    else
      echo "netsim.sh: ethtool not found; offloads stay on (shaping is less exact)" >&2
    fi
  fi
  trap 'echo "netsim.sh: up failed; cleaning up" >&2; "$0" down >/dev/null 2>&1' ERR
  ip netns add "$P-sw"
  ip -n "$P-sw" link set lo up
  ip -n "$P-sw" link add br0 type bridge
  ip -n "$P-sw" link set br0 up
  ip -n "$P-sw" addr add "$NET.254/24" dev br0
  for i in $(seq 1 "$n"); do
    ip netns add "$P-h$i"
    ip -n "$P-h$i" link set lo up
    ip link add eth0 netns "$P-h$i" type veth peer name "p$i" netns "$P-sw"
    ip -n "$P-sw" link set "p$i" master br0 up
    ip -n "$P-h$i" addr add "$NET.$i/24" dev eth0
    ip -n "$P-h$i" link set eth0 up
  done
  # "ip netns exec" bind-mounts /etc/netns/<ns>/hosts over /etc/hosts: names h1..hN, sw.
  for ns in sw $(seq -f 'h%g' 1 "$n"); do
    mkdir -p "/etc/netns/$P-$ns"
    { echo "127.0.0.1 localhost"
      for i in $(seq 1 "$n"); do echo "$NET.$i h$i"; done
      echo "$NET.254 sw"; } > "/etc/netns/$P-$ns/hosts"
  done
  trap - ERR
  echo "netsim.sh: $n hosts up: $P-h1..$P-h$n ($NET.1-$NET.$n), switch $P-sw"
  ;;
shape)
  rate=${1:-}
  [[ $rate =~ ^[0-9.]+([kmg]?bit|[kmg]?bps)$ ]] || die "RATE must be a tc rate such as 1gbit or 100mbit, not '$rate'"
  [ -n "$(hosts)" ] || die "no hosts; run: scripts/netsim.sh up N"
  # Bucket: one millisecond of traffic at the rate, at least 16 kB. A bigger bucket lets small
  # messages through at memory speed (the allgather of a few-kB payload would beat the link),
  # a smaller one cannot sustain the rate with the kernel's timer granularity.
  burst=${NETSIM_BURST:-$(awk -v r="$rate" 'BEGIN {
      n = r + 0; u = substr(r, length(n "") + 1);
      m = (u ~ /^k/) ? 1e3 : (u ~ /^m/) ? 1e6 : (u ~ /^g/) ? 1e9 : 1;
      bytes = n * m / ((u ~ /bps$/) ? 1 : 8) / 1000;
      kb = int((bytes + 1023) / 1024); if (kb < 16) kb = 16; print kb "kb" }')}
  for i in $(hosts); do
    for side in "$P-h$i eth0" "$P-sw p$i"; do
      read -r ns dev <<<"$side"
      if command -v ethtool >/dev/null; then
        ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off >/dev/null 2>&1 || true
      fi
      tc -n "$ns" qdisc replace dev "$dev" root tbf rate "$rate" \
        burst "$burst" latency "${NETSIM_QLAT:-50ms}"
    done
  done
  echo "netsim.sh: every host link shaped to $rate (both directions), bucket $burst"
  ;;
unshape)
  for i in $(hosts); do
    tc -n "$P-h$i" qdisc del dev eth0 root 2>/dev/null || true
    tc -n "$P-sw" qdisc del dev "p$i" root 2>/dev/null || true
  done
  ;;
status)
  for ns in $(namespaces); do
    echo "== $ns"
    ip -n "$ns" -br addr
    tc -n "$ns" qdisc show | grep tbf || true
  done
  ;;
hostfile)
  k=${1:-1}
  for i in $(hosts); do echo "$NET.$i slots=$k"; done
  ;;
exec)
  i=${1:-}
  [[ $i =~ ^[0-9]+$ ]] || die "usage: netsim.sh exec I CMD..."
  shift
  ip netns list | grep -qE "^$P-h$i( |$)" || die "no host $P-h$i"
  # shellcheck disable=SC2016 # $0/$@ belong to the inner sh
  exec ip netns exec "$P-h$i" unshare --uts sh -c 'hostname "$0"; exec "$@"' "h$i" "$@"
  ;;
down)
  for ns in $(namespaces); do
    ip netns del "$ns"
    rm -rf "/etc/netns/$ns"
  done
  ;;
*) usage >&2; exit 2 ;;
esac
