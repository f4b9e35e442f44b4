#!/usr/bin/env bash
# The whole-pipeline benchmark: traffic-counter beside tcpdump, on the same traffic, in the
# same run.
#
# trafgen blasts a traffic mix from its own network namespace over a veth pair into another
# namespace, at the generator's full rate (two trafgen processes, --cpus 2). Two mixes:
#   random       bench/mix.trafgen: millions of random IPv4/IPv6 sources and flows (a flood)
#   few-sources  bench/few-sources.trafgen: 512 sources, six servers, 51,200 flows (the
#                common case), with the same sizes, protocols, tagging and ARP share
# For each mix and each run, two captures back to back, each with its own trafgen burst (ours
# first in odd runs, tcpdump first in even runs, so a drift in the shared machine's load does
# not always favour the same tool):
#   ours     the release binary as a user would run it: headless, 2 workers, --flows, every
#            other setting at its default (table bounds, rings, filter, CPUs)
#   tcpdump  tcpdump -w /dev/null -B 65536 (64 MiB ring), the usual reference
# and for each capture: offered frames (the receiving veth's rx_packets, 1 s after the capture
# is ready to 1 s after trafgen ends), the offered rate, the capturing process's CPU time
# (utime + stime of the binary itself, not of a wrapper) per offered frame, and its losses.
#
# Why the offered rate is reported beside each tool: on veth the receive path, including the
# kernel's copy into the capture ring, runs in softirq on the *sending* CPU, and the capturing
# process shares the two cores with the two generators. A heavier capture therefore shows up
# as a lower offered rate as well as in its own CPU time, so the table gives, per run, both the
# CPU-per-frame ratio ours/tcpdump and the offered-rate ratio beside ours/beside tcpdump.
#
# Exactness ("accounted = offered"): the monitor counts from its own start, not from the 1 s
# mark, so the check compares whole lifetimes: ring drops = 0 AND frames the monitor accounted
# for (read from its rings + rejected by its socket filter, from its final snapshot) = tc0's
# rx_packets sampled right before the monitor starts and right after it exits. Nothing else
# sends on the link (IPv6 is off on both ends, no addresses), so the two must agree exactly.
# The final snapshot must also satisfy "rows + evicted + omitted = totals" for talkers and
# flows (headless files hold only the top rows and sum up the rest in omitted_*).
#
# Then: one memory check (random mix, full rate, --max-talkers 50000 --max-flows 50000; the
# target is a peak RSS beyond the rings of at most 100 MiB), and one idle run (no traffic).
# Peak RSS beyond the rings is VmHWM minus block_size x block_count x workers.
#
# Usage: bench/system.sh [SECONDS_PER_RUN] [OUTPUT_FILE] [RUNS]   (as root; make bench runs
# it with 10 target/bench/system.md). Defaults: 10 s, target/bench/system.md, 5 runs.
# For comparisons in the same harness: BENCH_BIN replaces the binary, BENCH_ARGS adds options
# to ours (e.g. "--snaplen 262144"), BENCH_TCPDUMP_ARGS adds options to tcpdump (e.g. "-s 256").
# The report prints the command lines as run.
# Needs the release binary (make build), trafgen and tcpdump (make setup installs both).
# Traffic stays inside the two namespaces this script creates (addresses in 198.18.0.0/15 and
# 2001:db8::/32, frames to a MAC nobody owns, so nothing replies); every trafgen run is
# bounded by timeout, and the namespaces and any process still running are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-10}
OUT=${2:-target/bench/system.md}
RUNS=${3:-5}
BIN=${BENCH_BIN:-target/release/traffic-counter}
MIXES=(random few-sources)
declare -A MIX_FILE=([random]=bench/mix.trafgen [few-sources]=bench/few-sources.trafgen)
CAP=tcb-cap-$$
GEN=tcb-gen-$$
WORK=$(mktemp -d)
CHILD_PID= # the capture process currently running, if any

# The command lines, exactly as run (the snapshot file is appended per run).
OURS=("$BIN" --headless -i tc0 --workers 2 --flows ${BENCH_ARGS:-})
MEMORY=("$BIN" --headless -i tc0 --workers 2 --flows --max-talkers 50000 --max-flows 50000 ${BENCH_ARGS:-})
TCPDUMP=(tcpdump -i tc0 -w /dev/null -B 65536 -q ${BENCH_TCPDUMP_ARGS:-})
TRAFGEN_OPTS=(--out tg0 --cpus 2 --no-sock-mem --notouch-irq -q)

cleanup() {
  if [ -n "$CHILD_PID" ]; then kill -KILL "$CHILD_PID" 2>/dev/null || true; fi
  for ns in "$CAP" "$GEN"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() { echo "bench/system.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, raw sockets)"
for n in "$SECS" "$RUNS"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "SECONDS_PER_RUN and RUNS must be positive integers, got '$n'"
done
command -v trafgen >/dev/null || die "trafgen missing: make setup installs it (Debian package netsniff-ng)"
command -v tcpdump >/dev/null || die "tcpdump missing: make setup installs it"
command -v python3 >/dev/null || die "python3 missing"
[ -x "$BIN" ] || die "$BIN missing: build it first (make build; make bench does)"
for mix in "${MIXES[@]}"; do
  [ -r "${MIX_FILE[$mix]}" ] || die "${MIX_FILE[$mix]} missing"
done

# Two namespaces joined by a veth pair, IPv6 off on both ends so the kernel sends nothing.
ip netns add "$CAP"
ip netns add "$GEN"
ip link add tc0 netns "$CAP" type veth peer name tg0 netns "$GEN"
for end in "$CAP tc0" "$GEN tg0"; do
  read -r ns dev <<< "$end"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
  ip -n "$ns" link set "$dev" up
done

rx_packets() { ip netns exec "$CAP" cat /sys/class/net/tc0/statistics/rx_packets; }
# utime + stime (clock ticks) of a whole process; fields counted after "(comm) ".
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
alive() { [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ] && [ -e "/proc/$1" ]; }
now_ns() { date +%s%N; }
HZ=$(getconf CLK_TCK)

# start_capture NAME READY_TEXT CMD...: runs CMD in the capture namespace, waits (up to 10 s)
# for READY_TEXT on its stderr; sets CHILD_PID to the background job and CAPTURE_PID to the
# PID of CMD's binary itself (the same process unless something wrapped it).
start_capture() {
  local name=$1 ready=$2 pid exe
  shift 2
  ip netns exec "$CAP" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  CHILD_PID=$!
  for _ in $(seq 100); do
    grep -q "$ready" "$WORK/$name.err" && break
    alive "$CHILD_PID" || break
    sleep 0.1
  done
  grep -q "$ready" "$WORK/$name.err" || {
    cat "$WORK/$name.err" >&2
    die "$name: no \"$ready\" line on stderr within 10 s"
  }
  # ip netns exec execs its command, so $! is normally the binary; check, because CPU and
  # memory are read from /proc/PID, and fall back to a child of that name.
  pid=$CHILD_PID
  exe=$(readlink "/proc/$pid/exe" || true)
  if [ "$(basename "$exe")" != "$(basename "$1")" ]; then
    pid=$(pgrep -P "$CHILD_PID" -x "$(basename "$1" | cut -c1-15)" | head -n1 || true)
    [ -n "$pid" ] || die "$name: cannot find the PID of $1 (\$! runs $exe)"
  fi
  CAPTURE_PID=$pid
}

# stop_capture SIGNAL: signals the capture process, waits (up to 20 s) for it to exit.
stop_capture() {
  kill "-$1" "$CAPTURE_PID"
  for _ in $(seq 200); do alive "$CAPTURE_PID" || break; sleep 0.1; done
  alive "$CAPTURE_PID" && die "capture process $CAPTURE_PID did not exit on SIG$1"
  wait "$CHILD_PID" || true
  CHILD_PID=
}

# run_trafgen CONFIG: full rate for SECS seconds; prints its wall time in ns.
run_trafgen() {
  local t0 rc=0
  t0=$(now_ns)
  ip netns exec "$GEN" timeout "$SECS" trafgen --cpp --in "$1" "${TRAFGEN_OPTS[@]}" \
    > "$WORK/trafgen.log" 2>&1 || rc=$?
  echo $(($(now_ns) - t0))
  # 124: stopped by timeout, the normal end.
  [ "$rc" -eq 124 ] || [ "$rc" -eq 0 ] || { tail "$WORK/trafgen.log" >&2; die "trafgen exited with $rc"; }
  # timeout signals trafgen's whole process group; make sure no generator outlives the run.
  for _ in $(seq 50); do [ -z "$(ip netns pids "$GEN")" ] && return; sleep 0.1; done
  die "trafgen processes still running in $GEN after the timeout"
}

# measure KIND NAME MIX: one capture (KIND ours, memory, tcpdump or idle) with one trafgen burst
# of MIX (none for idle); appends a line to $WORK/results.tsv for the report below.
measure() {
  local kind=$1 name=$2 mix=$3 rx_start rx0 rx1 rx_end cpu0 cpu1 t0 t1 gen_ns hwm_kib
  local snap="$WORK/$name.json" cmd
  case $kind in
    ours | idle) cmd=("${OURS[@]}" --snapshot-file "$snap") ;;
    memory) cmd=("${MEMORY[@]}" --snapshot-file "$snap") ;;
    tcpdump) cmd=("${TCPDUMP[@]}") ;;
  esac
  rx_start=$(rx_packets)
  if [ "$kind" = tcpdump ]; then
    start_capture "$name" "listening on" "${cmd[@]}"
  else
    start_capture "$name" "capturing on" "${cmd[@]}"
  fi
  sleep 1
  rx0=$(rx_packets)
  cpu0=$(cpu_ticks "$CAPTURE_PID")
  t0=$(now_ns)
  if [ "$mix" = none ]; then
    sleep "$SECS"
    gen_ns=$((SECS * 1000000000))
  else
    gen_ns=$(run_trafgen "${MIX_FILE[$mix]}")
  fi
  sleep 1
  rx1=$(rx_packets)
  cpu1=$(cpu_ticks "$CAPTURE_PID")
  t1=$(now_ns)
  hwm_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$CAPTURE_PID/status")
  if [ "$kind" = tcpdump ]; then stop_capture INT; else stop_capture TERM; fi
  rx_end=$(rx_packets)
  if [ "$kind" != tcpdump ] && [ ! -s "$snap" ]; then
    cat "$WORK/$name.err" >&2
    die "$name: no final snapshot in $snap"
  fi
  local fields=("$kind" "$name" "$mix" "$rx_start" "$rx0" "$rx1" "$rx_end" "$((cpu1 - cpu0))" \
    "$((t1 - t0))" "$gen_ns" "$hwm_kib")
  (IFS=$'\t' && echo "${fields[*]}") >> "$WORK/results.tsv"
  echo "  $name: $((rx1 - rx0)) frames offered" >&2
}

: > "$WORK/results.tsv"
# An unmeasured burst first: after the machine has sat idle, the first full-rate burst has run
# at a third to a half of the later ones (three scripts in a row, whichever binary went first),
# and run 1 always starts with ours.
echo "warm-up: one unmeasured burst of the random mix, no capture" >&2
run_trafgen "${MIX_FILE[random]}" > /dev/null
for mix in "${MIXES[@]}"; do
  for run in $(seq "$RUNS"); do
    echo "$mix, run $run of $RUNS" >&2
    if ((run % 2)); then order=(ours tcpdump); else order=(tcpdump ours); fi
    for kind in "${order[@]}"; do measure "$kind" "$kind-$mix-$run" "$mix"; done
  done
done
echo "memory check" >&2
measure memory memory random
echo "idle" >&2
measure idle idle none

# The report: one table per mix with a summary line, the memory line and the idle line.
export SECS RUNS HZ WORK
export MIX_FILES="random=${MIX_FILE[random]} few-sources=${MIX_FILE[few-sources]}"
export CMD_OURS="ip netns exec CAP ${OURS[*]} --snapshot-file F"
export CMD_MEMORY="ip netns exec CAP ${MEMORY[*]} --snapshot-file F"
export CMD_TCPDUMP="ip netns exec CAP ${TCPDUMP[*]}"
export CMD_TRAFGEN="ip netns exec GEN timeout $SECS trafgen --cpp --in MIX ${TRAFGEN_OPTS[*]}"
ENV_LINE="$(date -u '+%Y-%m-%d %H:%M UTC'), Linux $(uname -r), $(nproc) CPUs"
ENV_LINE+=", trafgen $(dpkg-query -W -f '${Version}' netsniff-ng 2>/dev/null || echo '?')"
ENV_LINE+=", $(tcpdump --version 2>&1 | head -n2 | paste -sd ' ' | sed 's/ version / /g')"
export ENV_LINE
mkdir -p "$(dirname "$OUT")"
python3 - "${MIXES[@]}" > "$OUT" <<'PY'
import json, os, re, sys

E = os.environ
secs, runs, hz, work = int(E["SECS"]), int(E["RUNS"]), int(E["HZ"]), E["WORK"]
mixes = sys.argv[1:]
mix_file = dict(kv.split("=", 1) for kv in E["MIX_FILES"].split())


def n(x):
    return f"{x:,}"


def ratio(a, b):
    return a / b if b else None


def fmt_ratio(x):
    return "n/a" if x is None else f"{x:.2f}"


def load(line):
    f = line.rstrip("\n").split("\t")
    kind, name, mix = f[:3]
    rx_start, rx0, rx1, rx_end, ticks, window_ns, gen_ns, hwm_kib = map(int, f[3:11])
    offered = rx1 - rx0
    r = dict(kind=kind, name=name, mix=mix, offered=offered, lifetime=rx_end - rx_start,
             ticks=ticks, window_s=window_ns / 1e9, rate=offered / (gen_ns / 1e9),
             ns=ticks * 1e9 / hz / offered if offered else None)
    if kind == "tcpdump":
        err = open(f"{work}/{name}.err").read()

        def stat(what):
            m = re.search(r"(\d+) packets? " + what, err)
            return int(m.group(1)) if m else None

        r["captured"], r["drops"] = stat("captured"), stat("dropped by kernel")
        r["lossless"] = r["drops"] == 0 and r["captured"] == r["lifetime"]
        return r
    d = json.load(open(f"{work}/{name}.json"))
    workers = d["workers"]
    rejects = d["filter"]["rejects"]
    r["filter"] = d["filter"]["kind"]
    r["accounted"] = sum(w["packets"] for w in workers) + sum((rejects or {}).values())
    r["ring_drops"] = sum(w["ring_drops"] for w in workers)
    r["ring"] = d["ring"]
    r["workers"] = len(workers)
    ring_bytes = d["ring"]["block_size"] * d["ring"]["block_count"] * len(workers)
    r["ring_mib"] = ring_bytes / 2**20
    r["rss"] = (hwm_kib * 1024 - ring_bytes) / 2**20
    if rejects is None and r["filter"] != "none":
        r["exact"] = None  # classic BPF: frames it rejected are not counted anywhere
    else:
        r["exact"] = r["ring_drops"] == 0 and r["accounted"] == r["lifetime"]
    # Rows in the file + rows evicted from the tables + rows left out of the file (headless
    # writes only the top rows; older binaries have no omitted_* and write every row).
    total = d["totals"]["packets"]
    et, ef = d["evicted_talkers"], d["evicted_flows"]
    ot = d.get("omitted_talkers") or {"entries": 0, "packets_sent": 0, "packets_received": 0}
    of = d.get("omitted_flows") or {"entries": 0, "packets": 0}
    holds = (
        sum(t["packets_sent"] for t in d["talkers"]) + et["packets_sent"] + ot["packets_sent"]
        == total
        and sum(t["packets_received"] for t in d["talkers"]) + et["packets_received"]
        + ot["packets_received"] == total
        and (not d["flows_enabled"] or sum(f["packets_a_to_b"] + f["packets_b_to_a"]
                                           for f in d["flows"]) + ef["packets"] + of["packets"]
             == total)
    )
    r["sums"] = (f"yes ({n(et['entries'])} talkers, {n(ef['entries'])} flows evicted; "
                 f"{n(ot['entries'])}, {n(of['entries'])} left out of the file)"
                 if holds else "NO")
    r["sums_hold"] = holds
    return r


recs = {}
for line in open(f"{work}/results.tsv"):
    r = load(line)
    recs[r["name"]] = r


def exact_text(r):
    if r["exact"] is None:
        return "unknown (classic BPF: rejects not counted)"
    if r["exact"]:
        return "yes"
    return f"NO (accounted {n(r['accounted'])} + {n(r['ring_drops'])} dropped, rx {n(r['lifetime'])})"


print("# System benchmark: traffic-counter beside tcpdump\n")
print(f"{os.environ['ENV_LINE']}. {secs} s of trafgen at full rate per capture, {runs} run(s) "
      "per mix, after one unmeasured warm-up burst; in each run the two captures follow each "
      "other, each with its own burst (ours first in odd runs, tcpdump first in even runs).\n")
print("Commands (CAP/GEN: the capture and generator namespaces, F: a per-run snapshot file, "
      "MIX: the mix's trafgen config):\n")
print("```")
for key in ("CMD_OURS", "CMD_TCPDUMP", "CMD_TRAFGEN", "CMD_MEMORY"):
    print(E[key])
print("```\n")
first = recs[f"ours-{mixes[0]}-1"]
ring = first["ring"]
print(f"Monitor defaults in effect: filter {first['filter']}, {first['workers']} workers, each ring "
      f"{ring['block_count']} blocks of {ring['block_size'] // 1024} KiB "
      f"({first['ring_mib']:.0f} MiB of rings in all).\n")
print("Offered: frames on tc0 (rx_packets) from 1 s after the capture was ready to 1 s after "
      "trafgen ended; rate = offered / trafgen's run time. CPU: the capturing process's user + "
      "system time over that window per offered frame. Ratios are ours ÷ tcpdump. "
      "Exact: no ring drops and frames accounted = rx_packets over the monitor's whole life. "
      "Peak RSS beyond rings: VmHWM minus the rings.\n")

for mix in mixes:
    print(f"## Mix `{mix}` ({mix_file[mix]})\n")
    print("| mix | run | offered frames (ours) | offered pps beside ours | accounted (ours) | ring drops "
          "(ours) | ours CPU ns/frame | offered pps beside tcpdump | tcpdump CPU ns/frame | "
          "tcpdump drops | CPU/frame ratio | offered-rate ratio | peak RSS beyond rings | "
          "exact | rows + evicted + omitted = totals |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
          "---: | --- | --- |")
    cpu_ratios, rate_ratios, exact, lossless = [], [], 0, 0
    for run in range(1, runs + 1):
        o, t = recs[f"ours-{mix}-{run}"], recs[f"tcpdump-{mix}-{run}"]
        cr = ratio(o["ns"], t["ns"]) if o["ns"] is not None and t["ns"] is not None else None
        rr = ratio(o["rate"], t["rate"])
        if cr is not None:
            cpu_ratios.append(cr)
        if rr is not None:
            rate_ratios.append(rr)
        exact += bool(o["exact"]) and o["sums_hold"]
        lossless += bool(t["lossless"])
        ns = lambda r: "n/a" if r["ns"] is None else f"{r['ns']:.0f}"
        drops = "?" if t["drops"] is None else n(t["drops"])
        print(f"| {mix} | {run} | {n(o['offered'])} | {n(round(o['rate']))} | {n(o['accounted'])} | "
              f"{n(o['ring_drops'])} | {ns(o)} | {n(round(t['rate']))} | {ns(t)} | {drops} | "
              f"{fmt_ratio(cr)} | {fmt_ratio(rr)} | {o['rss']:.1f} MiB | {exact_text(o)} | "
              f"{o['sums']} |")
    span = lambda xs: f"{min(xs):.2f}–{max(xs):.2f}" if xs else "n/a"
    print(f"\n**{mix}**: CPU per frame ours ÷ tcpdump {span(cpu_ratios)}; offered rate beside ours "
          f"÷ beside tcpdump {span(rate_ratios)}; exact (no ring drops, accounted = offered, "
          f"row sums hold) in {exact} of {runs} runs; tcpdump captured every frame in "
          f"{lossless} of {runs} runs.\n")

m = recs["memory"]
verdict = "met" if m["rss"] <= 100 else "NOT met"
print(f"Memory check (`random` mix at full rate, `{E['CMD_MEMORY']}`): "
      f"{n(m['offered'])} frames offered at {n(round(m['rate']))} pps, {n(m['accounted'])} "
      f"accounted, {n(m['ring_drops'])} ring drops, exact: {exact_text(m)}; peak RSS beyond the "
      f"rings {m['rss']:.1f} MiB (rings {m['ring_mib']:.0f} MiB; target ≤ 100 MiB: {verdict}).\n")

i = recs["idle"]
print(f"Idle, no traffic (`{E['CMD_OURS']}`): {i['ticks'] * 1000 // hz} ms of CPU in "
      f"{i['window_s']:.1f} s = {i['ticks'] * 100 / hz / i['window_s']:.2f}% of a core "
      f"(clock ticks of {1000 // hz} ms).")
PY

cat "$OUT"
