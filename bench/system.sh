#!/usr/bin/env bash
# The whole-pipeline benchmark: trafgen blasts bench/mix.trafgen from its own network
# namespace over a veth pair at traffic-counter (release build, headless, 2 workers, --flows,
# bounded tables) running in another, at full rate and at fixed rates. For each run it reports
# offered frames (the receiving veth's rx_packets), frames the monitor accounted for (read from
# its rings + rejected by its filter), ring drops, the monitor's CPU time per offered frame and
# its peak RSS beyond the rings. Results go to a Markdown table.
#
# Usage: bench/system.sh [SECONDS_PER_RUN] [OUTPUT_FILE]   (as root; make bench runs it)
# Traffic stays inside the two namespaces this script creates (addresses in 198.18.0.0/15 and
# 2001:db8::/32, frames to a MAC nobody owns); every run is bounded in time, and the
# namespaces are deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-10}
OUT=${2:-target/bench/system.md}
BIN=target/release/traffic-counter
RATES=(full 400000 100000)
CAP=tcb-cap-$$
GEN=tcb-gen-$$
WORK=$(mktemp -d)
MONITOR_PID=

cleanup() {
  [ -n "$MONITOR_PID" ] && kill "$MONITOR_PID" 2>/dev/null || true
  ip netns del "$CAP" 2>/dev/null || true
  ip netns del "$GEN" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "bench/system.sh needs root (network namespaces)" >&2; exit 1; }
command -v trafgen >/dev/null || { echo "trafgen missing: make setup installs netsniff-ng" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release -p traffic-counter

ip netns add "$CAP"
ip netns add "$GEN"
ip link add tc0 netns "$CAP" type veth peer name tg0 netns "$GEN"
for pair in "$CAP tc0" "$GEN tg0"; do
  set -- $pair
  ip -n "$1" link set lo up
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
  ip -n "$1" link set "$2" up
done

rx_packets() { ip netns exec "$CAP" cat /sys/class/net/tc0/statistics/rx_packets; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

mkdir -p "$(dirname "$OUT")"
{
  echo "| offered rate | offered frames | accounted | ring drops | monitor CPU ns/frame | peak RSS beyond rings | tables + evicted = totals |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
} > "$OUT"

for rate in "${RATES[@]}"; do
  snap="$WORK/snap-$rate.json"
  ip netns exec "$CAP" "$BIN" --headless -i tc0 --workers 2 --cpus 0,1 --flows \
    --max-talkers 50000 --max-flows 50000 --interval 1 --snapshot-file "$snap" \
    > "$WORK/out-$rate.txt" 2> "$WORK/err-$rate.txt" &
  MONITOR_PID=$!
  for _ in $(seq 100); do grep -q "capturing on" "$WORK/err-$rate.txt" && break; sleep 0.1; done
  grep -q "capturing on" "$WORK/err-$rate.txt" || { cat "$WORK/err-$rate.txt" >&2; exit 1; }
  sleep 1
  rx0=$(rx_packets); cpu0=$(cpu_ticks "$MONITOR_PID")
  if [ "$rate" = full ]; then
    gen=(--cpus 2)
  else
    gen=(--cpus 1 -b "${rate}pps")
  fi
  ip netns exec "$GEN" timeout "$SECS" trafgen --cpp --in bench/mix.trafgen --out tg0 \
    "${gen[@]}" --no-sock-mem --notouch-irq -q > /dev/null 2>&1 || true
  sleep 1
  rx1=$(rx_packets); cpu1=$(cpu_ticks "$MONITOR_PID")
  hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$MONITOR_PID/status")
  kill -TERM "$MONITOR_PID"
  wait "$MONITOR_PID" || true
  MONITOR_PID=
  python3 - "$snap" "$rate" "$((rx1 - rx0))" "$((cpu1 - cpu0))" "$hz" "$hwm_kib" "$SECS" >> "$OUT" <<'PY'
import json, sys
snap, rate, offered, ticks, hz, hwm_kib, secs = sys.argv[1:]
d = json.load(open(snap))
offered, ticks, hz, hwm_kib, secs = int(offered), int(ticks), int(hz), int(hwm_kib), int(secs)
read = sum(w["packets"] for w in d["workers"])
rejects = sum((d["filter"]["rejects"] or {}).values())
drops = sum(w["ring_drops"] for w in d["workers"])
ring = d["ring"]["block_size"] * d["ring"]["block_count"] * len(d["workers"])
ns = ticks * 1e9 / hz / max(offered, 1)
label = "full (%d pps)" % (offered / secs) if rate == "full" else "%s pps" % rate
total = d["totals"]["packets"]
et, ef = d["evicted_talkers"], d["evicted_flows"]
sums_hold = (
    sum(t["packets_sent"] for t in d["talkers"]) + et["packets_sent"] == total
    and sum(t["packets_received"] for t in d["talkers"]) + et["packets_received"] == total
    and sum(f["packets_a_to_b"] + f["packets_b_to_a"] for f in d["flows"]) + ef["packets"] == total
)
sums = "yes (%d talkers, %d flows evicted)" % (et["entries"], ef["entries"]) if sums_hold else "NO"
print("| %s | %d | %d | %d | %.0f | %.1f MiB | %s |" % (label, offered, read + rejects, drops, ns, (hwm_kib * 1024 - ring) / 2**20, sums))
PY
done

# Idle: the same monitor with no traffic at all.
ip netns exec "$CAP" "$BIN" --headless -i tc0 --workers 2 --cpus 0,1 --flows \
  --max-talkers 50000 --max-flows 50000 > /dev/null 2> "$WORK/err-idle.txt" &
MONITOR_PID=$!
sleep 2
cpu0=$(cpu_ticks "$MONITOR_PID")
sleep "$SECS"
cpu1=$(cpu_ticks "$MONITOR_PID")
kill -TERM "$MONITOR_PID"
wait "$MONITOR_PID" || true
MONITOR_PID=
awk -v t=$((cpu1 - cpu0)) -v hz="$hz" -v s="$SECS" 'BEGIN {
  printf "\nIdle, no traffic: %d ms of CPU in %d s = %.2f%% of a core (clock ticks of %d ms).\n",
    t * 1000 / hz, s, t * 100 / hz / s, 1000 / hz }' >> "$OUT"

cat "$OUT"
