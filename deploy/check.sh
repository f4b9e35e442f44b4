#!/usr/bin/env bash
# Checks every deployment artefact in deploy/ (make check-deploy runs it).
#
# Needs root: it installs missing Debian and PyPI packages, and runs the release binary on
# the loopback interface (AF_PACKET, eBPF) under strace and inside the built image.
# Needs the release binary: TRAFFIC_COUNTER_BIN, default target/release/traffic-counter
# (cargo build --release -p traffic-counter).
#
# Each check prints what it verified; the last line is "deploy checks: N passed, M failed"
# and the exit status is non-zero if any check failed. Nothing outside private temporary
# directories (mktemp -d: mode 0700, unpredictable names) is written, except package installs.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
BIN=${TRAFFIC_COUNTER_BIN:-target/release/traffic-counter}
K8S_VERSION=1.30.0
# systemd-analyze security: exposure on its 0-10 scale times 10; 20 is "OK" (<= 2.0).
EXPOSURE_MAX=20

UNIT=deploy/systemd/traffic-counter.service
DROPINS=(deploy/systemd/traffic-counter.service.d/*.conf)
ENVFILE=deploy/systemd/traffic-counter.env
DS=deploy/kubernetes/daemonset.yaml
PROFILE=deploy/kubernetes/seccomp/traffic-counter.json
PROM=deploy/prometheus
DASH=deploy/grafana/traffic-counter.json
DC=(python3 deploy/lib/deploycheck.py)

if [ "$(id -u)" -ne 0 ]; then
  echo "deploy/check.sh must run as root (sudo $0)" >&2
  exit 2
fi
# Run through sudo, the binary would drop to the invoking user after setup and could not
# write into this script's root-owned scratch directory: the checks run it as root, or as the
# unit's identity, explicitly.
unset SUDO_UID SUDO_GID SUDO_USER

# --- what the checks need ------------------------------------------------------------------
debs=()
command -v promtool >/dev/null || debs+=(prometheus)
command -v prometheus >/dev/null || debs+=(prometheus)
command -v systemd-analyze >/dev/null || debs+=(systemd)
command -v buildah >/dev/null || debs+=(buildah)
command -v strace >/dev/null || debs+=(strace)
command -v shellcheck >/dev/null || debs+=(shellcheck)
command -v python3 >/dev/null || debs+=(python3 python3-pip)
if [ ${#debs[@]} -gt 0 ]; then
  echo "installing: ${debs[*]}"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null; }; then
    echo "apt-get install ${debs[*]} failed" >&2
    exit 2
  fi
fi
if ! python3 -c 'import yaml, kubernetes_validate' 2>/dev/null; then
  echo "installing: kubernetes-validate 1.37.0 (PyPI; bundles the $K8S_VERSION schemas)"
  python3 -m pip install -q kubernetes-validate==1.37.0 2>/dev/null ||
    python3 -m pip install -q --break-system-packages kubernetes-validate==1.37.0 ||
    { echo "pip install kubernetes-validate failed" >&2; exit 2; }
fi
if [ ! -x "$BIN" ]; then
  echo "no binary at $BIN: run cargo build --release -p traffic-counter (make check-deploy does)" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/deploy-check.XXXXXX") || exit 2
state="" # the unprivileged run's own directory (check_systemd_identity)
cleanup() {
  [ -n "${prom_pid:-}" ] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
  if [ -d "$work/containers" ]; then
    buildah "${BUILDAH[@]}" rm --all >/dev/null 2>&1
    buildah "${BUILDAH[@]}" rmi --all --force >/dev/null 2>&1
  fi
  rm -rf "$work"
  [ -n "$state" ] && rm -rf "$state"
}
trap cleanup EXIT
BUILDAH=(--root "$work/containers/root" --runroot "$work/containers/run" --storage-driver vfs)

passed=0
failed=0
failed_names=()
# run_check NAME FUNCTION: runs FUNCTION, shows its output indented, counts the result.
run_check() {
  local name=$1 fn=$2 log="$work/log" rc
  echo "== $name"
  "$fn" >"$log" 2>&1
  rc=$?
  sed 's/^/   /' "$log"
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "   PASS"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    echo "   FAIL (exit $rc)"
  fi
}

# --- systemd ---------------------------------------------------------------------------------
# systemd-analyze verify checks that ExecStart's binary exists, so the unit is verified in a
# scratch root: this machine's unit directory (for the targets the unit orders against), the
# release binary at the unit's ExecStart path, the unit, and optionally the examples.
make_root() {
  local root=$1 exe
  exe=$("${DC[@]}" exec-path "$UNIT") || return 1
  mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system" "$root$(dirname "$exe")" "$root/etc/default"
  cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
  cp "$BIN" "$root$exe"
  cp "$UNIT" "$root/etc/systemd/system/"
}
# Any output of verify is a finding: it exits 0 on unknown keys and unparsable values.
verify_unit() {
  local root=$1 out rc
  out=$(systemd-analyze verify --root="$root" traffic-counter.service 2>&1)
  rc=$?
  [ -n "$out" ] && echo "$out"
  [ $rc -eq 0 ] && [ -z "$out" ]
}
check_systemd_verify() {
  make_root "$work/root-unit" || return 1
  verify_unit "$work/root-unit" || return 1
  echo "systemd-analyze verify: no findings for $UNIT (ExecStart: the release binary)"
}
check_systemd_dropins() {
  local root="$work/root-dropins"
  make_root "$root" || return 1
  mkdir -p "$root/etc/systemd/system/traffic-counter.service.d"
  cp "${DROPINS[@]}" "$root/etc/systemd/system/traffic-counter.service.d/"
  cp "$ENVFILE" "$root/etc/default/traffic-counter"
  verify_unit "$root" || return 1
  echo "systemd-analyze verify: no findings with ${DROPINS[*]##*/} and $ENVFILE installed"
}
check_systemd_security() {
  local out rc
  out=$(systemd-analyze security --offline=yes --root="$work/root-unit" --threshold=$EXPOSURE_MAX traffic-counter.service 2>&1)
  rc=$?
  echo "$out" | grep -E '^(✗|X) ' | sed 's/  \+/  /g'
  echo "$out" | tail -1
  [ $rc -eq 0 ] || { echo "exposure above $((EXPOSURE_MAX / 10)).$((EXPOSURE_MAX % 10))"; return 1; }
}
# The unit's identity, emulated with setpriv: an unprivileged UID, no groups, the unit's
# AmbientCapabilities= (= its bounding set) and no_new_privs. The binary must capture on lo
# with the eBPF filter, and must fail without the ambient capabilities (which is also why
# the DaemonSet cannot use runAsNonRoot: Kubernetes grants no ambient capabilities).
check_systemd_identity() {
  local caps uid=61234 dir out
  caps=$("${DC[@]}" unit-caps "$UNIT") || return 1
  # A private directory of its own for that UID ($work stays 0700, closed to it); this script
  # only tests the file it writes there, never writes through it.
  state=$(mktemp -d "${TMPDIR:-/tmp}/deploy-check-state.XXXXXX") || return 1
  dir=$state
  chown "$uid:$uid" "$dir" || return 1
  local common=("--reuid=$uid" "--regid=$uid" --clear-groups --bounding-set="-all,$caps" --no-new-privs)
  local run=("$BIN" --headless -i lo --workers 1 --block-count 8 --duration 2 --snapshot-file "$dir/snapshot.json")
  out=$(setpriv "${common[@]}" --inh-caps="-all,$caps" --ambient-caps="-all,$caps" "${run[@]}" --filter ebpf 2>&1) ||
    { echo "$out"; echo "UID $uid with ambient $caps could not capture"; return 1; }
  echo "$out" | grep 'capturing'
  echo "$out" | grep -q 'filter ebpf' || { echo "$out"; echo "eBPF filter not loaded"; return 1; }
  [ -s "$dir/snapshot.json" ] || { echo "no snapshot written"; return 1; }
  echo "ok: UID $uid, ambient $caps, no_new_privs: captures with the eBPF filter and writes its snapshot"
  if out=$(setpriv "${common[@]}" --inh-caps=-all "${run[@]}" --filter classic 2>&1); then
    echo "$out"; echo "captured without ambient capabilities: the check is not testing what it claims"; return 1
  fi
  echo "ok: the same UID without ambient capabilities cannot capture: $(echo "$out" | grep -o 'needs CAP_NET_RAW')"
}
check_memory() { "${DC[@]}" check-memory "$UNIT" "$DS"; }
check_flags() {
  "$BIN" --help >"$work/help.txt" || return 1
  "${DC[@]}" check-flags "$work/help.txt" "$UNIT" "$DS" "$ENVFILE" "${DROPINS[@]}"
}
check_seccomp_profile() { "${DC[@]}" check-seccomp "$UNIT" "$PROFILE"; }
# The binary, headless on lo with the eBPF filter, flows and a snapshot file (and the metrics
# listener once the binary has one), under strace: every syscall it makes must be allowed by
# SystemCallFilter= / the seccomp profile (equal, see the previous check).
check_syscalls() {
  local args=(--headless -i lo --flows --filter ebpf --workers 2 --block-size 1M --block-count 8
    --interval 1 --duration 3 --snapshot-file "$work/snapshot.json")
  local port=""
  if grep -q -- '--metrics ' "$work/help.txt" 2>/dev/null; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    args+=(--metrics "127.0.0.1:$port")
  fi
  strace -f -qq -o "$work/strace.log" "$BIN" "${args[@]}" >"$work/run.log" 2>&1 &
  local pid=$!
  if [ -n "$port" ]; then
    python3 - "$port" "$pid" <<'EOF' || return 1
import sys, time, urllib.error, urllib.request
# Exercises the listener for the syscall trace; what it answers is the exporter's own tests' job.
# Polls /healthz until it reports a first snapshot (200), for as long as the traced run lasts,
# so that /metrics is then scraped with a snapshot to encode.
port, pid = sys.argv[1], int(sys.argv[2])
def get(path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
def running():  # not yet exited (a zombie until the shell reaps it)?
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
while True:
    try:
        status = get("/healthz")
    except OSError:
        status = None
    if status == 200:
        break
    if not running():
        sys.exit(f"127.0.0.1:{port}/healthz never answered 200 while the binary ran (last: {status})")
    time.sleep(0.05)  # poll interval
print("GET /healthz: 200")
print(f"GET /metrics: {get('/metrics')}")
EOF
  fi
  wait $pid || { echo "the binary failed:"; cat "$work/run.log"; return 1; }
  grep -q 'filter ebpf' "$work/run.log" || { echo "the eBPF filter was not used:"; cat "$work/run.log"; return 1; }
  echo "run: ${args[*]}"
  "${DC[@]}" check-syscalls "$work/strace.log" "$PROFILE"
}

# --- Kubernetes ------------------------------------------------------------------------------
check_k8s_schema() { python3 -m kubernetes_validate --strict -k "$K8S_VERSION" deploy/kubernetes/*.yaml; }
check_k8s_policy() { "${DC[@]}" check-k8s "$DS"; }
check_image_build() {
  local image
  image=$(BUILDAH_OPTS="${BUILDAH[*]}" CONTEXT="$work/image-context" \
    deploy/kubernetes/build-image.sh "$BIN" "$work/traffic-counter.oci.tar" 2>"$work/build.log") ||
    { cat "$work/build.log"; return 1; }
  echo "built $image ($(du -h "$work/traffic-counter.oci.tar" | cut -f1) as an OCI archive)"
  buildah "${BUILDAH[@]}" inspect --type image --format '{{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}} user {{.OCIv1.Config.User}}' "$image"
  echo
  echo "$image" >"$work/image"
  grep -qE "^ +image: $image\$" "$DS" || { echo "$DS does not run $image, the image this build tags"; return 1; }
  echo "$DS runs $image"
}
# The image's binary, run as in the DaemonSet: UID 0, capabilities exactly NET_RAW and BPF,
# the Localhost seccomp profile, host network. buildah's chroot isolation needs no OCI runtime.
# (In buildah 1.28 --cap-drop ALL wins over --cap-add, so its default set is dropped by name.)
image_run() {
  local profile=$1 caps=$2
  shift 2
  local ctr drops=() c
  for c in CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT SETFCAP; do
    drops+=(--cap-drop "CAP_$c")
  done
  ctr=$(buildah "${BUILDAH[@]}" from --security-opt seccomp="$profile" "$(cat "$work/image")") || return 1
  # shellcheck disable=SC2086
  timeout 30 buildah "${BUILDAH[@]}" run --isolation chroot --network host "${drops[@]}" $caps "$ctr" -- "$@" 2>&1
  local rc=$?
  buildah "${BUILDAH[@]}" rm "$ctr" >/dev/null
  return $rc
}
check_image_run() {
  [ -s "$work/image" ] || { echo "no image (the build failed)"; return 1; }
  local run=(/usr/bin/traffic-counter --headless -i lo --filter ebpf --workers 1 --block-count 8 --duration 2
    --snapshot-file /var/lib/traffic-counter/snapshot.json)
  local out
  out=$(image_run "$PROFILE" "--cap-add CAP_NET_RAW --cap-add CAP_BPF" "${run[@]}") ||
    { echo "$out"; echo "the image did not capture with NET_RAW+BPF and $PROFILE"; return 1; }
  echo "$out" | grep -E 'capturing'
  echo "$out" | grep -E '^[0-9.]+s ' | tail -1
  echo "$out" | grep -q 'filter ebpf' || { echo "$out"; echo "eBPF filter not loaded"; return 1; }
  echo "ok: capture with only NET_RAW+BPF and the Localhost profile, eBPF filter loaded"
  # Each capability is needed: without NET_RAW no capture (classic filter, which needs
  # nothing else); without BPF no eBPF filter.
  if out=$(image_run "$PROFILE" "" "${run[@]/ebpf/classic}"); then
    echo "$out"; echo "the image captured without NET_RAW: the check is not testing what it claims"; return 1
  fi
  echo "$out" | grep -q 'CAP_NET_RAW' || { echo "$out"; echo "expected a CAP_NET_RAW error"; return 1; }
  echo "ok: without NET_RAW it refuses to capture, naming CAP_NET_RAW"
  if out=$(image_run "$PROFILE" "--cap-add CAP_NET_RAW" "${run[@]}"); then
    echo "$out"; echo "the eBPF filter loaded without BPF: the check is not testing what it claims"; return 1
  fi
  echo "$out" | grep -q 'CAP_BPF' || { echo "$out"; echo "expected a CAP_BPF error"; return 1; }
  echo "ok: without BPF --filter ebpf refuses, naming CAP_BPF"
  # For the record (not a pass/fail condition): under the runtimes' default profile bpf(2)
  # needs CAP_SYS_ADMIN, which is why the DaemonSet uses the Localhost profile.
  if [ -f /usr/share/containers/seccomp.json ]; then
    out=$(image_run /usr/share/containers/seccomp.json "--cap-add CAP_NET_RAW --cap-add CAP_BPF" \
      "${run[@]/ebpf/auto}")
    echo "info: with NET_RAW+BPF under containers-common's default profile, --filter auto ran:" \
      "$(echo "$out" | sed -n 's/.*capturing.*, filter \([a-z]*\).*/\1/p')"
  fi
}

# --- Prometheus ------------------------------------------------------------------------------
k8s_native() { printf 'scrape_configs:\n- job_name: x\n  kubernetes_sd_configs: [{role: pod}]\n' >"$work/sd.yml" && promtool check config "$work/sd.yml" >/dev/null 2>&1; }
check_prom_config() {
  local native=()
  if k8s_native; then native=(--native-k8s); else
    echo "this promtool ($(promtool --version 2>&1 | head -1 | awk '{print $3}')) is built without kubernetes_sd (Debian's is)"
  fi
  echo '[]' >"$work/k8s-targets.json"
  "${DC[@]}" promtool-config "$PROM/prometheus.yml" "$work/prometheus.yml" "$work/k8s-targets.json" "${native[@]}" || return 1
  if [ ${#native[@]} -gt 0 ]; then promtool check config "$PROM/prometheus.yml"; else promtool check config "$work/prometheus.yml"; fi
}
# A real Prometheus with the scrape config, the kubernetes_sd job fed through file_sd with the
# labels pod discovery would give three pods: it must keep only the annotated traffic-counter
# pod, scrape it on its node address and name it after its node.
check_prom_relabel() {
  [ -f "$work/prometheus.yml" ] || { echo "needs the config from the previous check"; return 1; }
  python3 - "$work" <<'EOF' || return 1
import json, sys, yaml
work = sys.argv[1]
def pod(name, app, scrape, ip, node):
    return {"targets": [f"{ip}:1"], "labels": {
        "__meta_kubernetes_pod_name": name, "__meta_kubernetes_pod_ip": ip,
        "__meta_kubernetes_pod_node_name": node,
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": app,
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": scrape,
        "__meta_kubernetes_pod_annotation_prometheus_io_port": "9848",
        "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics"}}
json.dump([pod("traffic-counter-x1", "traffic-counter", "true", "192.0.2.11", "node-1"),
           pod("traffic-counter-x2", "traffic-counter", "false", "192.0.2.12", "node-2"),
           pod("other-x3", "other", "true", "192.0.2.13", "node-3")],
          open(f"{work}/k8s-targets.json", "w"))
cfg = yaml.safe_load(open(f"{work}/prometheus.yml"))
for job in cfg["scrape_configs"]:
    if "kubernetes_sd_configs" in job:  # a promtool with kubernetes_sd: feed the same job by file
        del job["kubernetes_sd_configs"]
        job["file_sd_configs"] = [{"files": [f"{work}/k8s-targets.json"]}]
yaml.safe_dump(cfg, open(f"{work}/prometheus-relabel.yml", "w"))
EOF
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  prometheus --config.file="$work/prometheus-relabel.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$port" >"$work/prometheus.log" 2>&1 &
  prom_pid=$!
  python3 - "$port" "$prom_pid" <<'EOF'
import json, os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
def get(path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
        return json.load(r)
deadline = time.time() + 30
while True:
    try:
        data = get("/api/v1/targets?state=any")["data"]
        rules = get("/api/v1/rules")["data"]["groups"]
        k8s = [t for t in data["activeTargets"] if t["labels"]["job"] == "traffic-counter-kubernetes"]
        if k8s or time.time() > deadline:
            break
    except OSError:
        try:  # exited (a zombie until the shell waits for it)?
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            state = "Z"
        if state == "Z":
            sys.exit("prometheus exited (config or rules rejected)")
        if time.time() > deadline:
            sys.exit("prometheus did not come up")
    time.sleep(0.3)  # poll interval; the deadline above bounds the wait
dropped = [t for t in data["droppedTargets"]
           if t["discoveredLabels"].get("job") == "traffic-counter-kubernetes"]
static = [t for t in data["activeTargets"] if t["labels"]["job"] == "traffic-counter"]
errors = []
if len(k8s) != 1:
    errors.append(f"expected 1 kubernetes target, got {len(k8s)}")
else:
    t = k8s[0]
    want = {"instance": "node-1", "pod": "traffic-counter-x1", "deployment": "kubernetes"}
    got = {k: t["labels"].get(k) for k in want}
    if got != want:
        errors.append(f"kubernetes target labels {got}, want {want}")
    if t["scrapeUrl"] != "http://192.0.2.11:9848/metrics":
        errors.append(f"kubernetes target scrapes {t['scrapeUrl']}")
    print(f"kubernetes_sd job: kept {t['labels']['pod']} as instance={t['labels']['instance']}, scrape {t['scrapeUrl']}")
if len(dropped) != 2:
    errors.append(f"expected 2 dropped pods (not annotated, other app), got {len(dropped)}")
else:
    print("kubernetes_sd job: dropped the pod with prometheus.io/scrape=false and the other app's pod")
if [t["scrapeUrl"] for t in static] != ["http://127.0.0.1:9848/metrics"]:
    errors.append(f"static job targets {[t['scrapeUrl'] for t in static]}")
else:
    print("static job: http://127.0.0.1:9848/metrics")
names = sorted(r["name"] for g in rules for r in g["rules"])
print(f"prometheus loaded {len(names)} rules from rules.yml")
if len(names) != 11:
    errors.append(f"expected 11 rules loaded, got {names}")
for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
EOF
  local rc=$?
  kill "$prom_pid" 2>/dev/null
  wait "$prom_pid" 2>/dev/null
  prom_pid=""
  [ $rc -eq 0 ] || { tail -5 "$work/prometheus.log"; return 1; }
}
check_prom_rules() { promtool check rules "$PROM/rules.yml"; }
check_prom_rules_test() { (cd "$PROM" && promtool test rules rules_test.yml); }
check_prom_rule_metrics() { "${DC[@]}" check-rule-metrics "$PROM/rules.yml"; }

# --- Grafana ---------------------------------------------------------------------------------
check_dashboard() { "${DC[@]}" check-dashboard "$DASH" "$work/dashboard-promql.yml"; }
check_dashboard_promql() {
  [ -f "$work/dashboard-promql.yml" ] || { echo "needs the previous check's output"; return 1; }
  echo "every dashboard expression (Grafana variables substituted) as a recording rule:"
  promtool check rules "$work/dashboard-promql.yml"
}

check_shellcheck() { shellcheck deploy/check.sh deploy/kubernetes/*.sh && echo "shellcheck: no findings in deploy/check.sh deploy/kubernetes/*.sh"; }

run_check "systemd: unit verifies" check_systemd_verify
run_check "systemd: unit verifies with the drop-ins and environment file" check_systemd_dropins
run_check "systemd: security exposure at most $((EXPOSURE_MAX / 10)).$((EXPOSURE_MAX % 10))" check_systemd_security
run_check "systemd: an unprivileged user with the unit's ambient capabilities captures" check_systemd_identity
run_check "systemd + kubernetes: memory limits derived from the ring geometry" check_memory
run_check "systemd + kubernetes: every option used exists in the binary" check_flags
run_check "systemd + kubernetes: seccomp profile equals SystemCallFilter=" check_seccomp_profile
run_check "systemd + kubernetes: the binary's syscalls are all allowed" check_syscalls
run_check "kubernetes: manifests validate (strict, $K8S_VERSION)" check_k8s_schema
run_check "kubernetes: DaemonSet security and scrape policy" check_k8s_policy
run_check "kubernetes: image builds offline (buildah, FROM scratch)" check_image_build
run_check "kubernetes: image captures with only NET_RAW+BPF" check_image_run
run_check "prometheus: promtool check config" check_prom_config
run_check "prometheus: relabelling in a real server" check_prom_relabel
run_check "prometheus: promtool check rules" check_prom_rules
run_check "prometheus: promtool test rules" check_prom_rules_test
run_check "prometheus: rules use only traffic-counter metrics" check_prom_rule_metrics
run_check "grafana: dashboard structure and metric names" check_dashboard
run_check "grafana: dashboard expressions parse as PromQL" check_dashboard_promql
run_check "deploy scripts: shellcheck" check_shellcheck

[ $failed -eq 0 ] || printf 'failed: %s\n' "${failed_names[@]}"
echo "deploy checks: $passed passed, $failed failed"
[ $failed -eq 0 ]
