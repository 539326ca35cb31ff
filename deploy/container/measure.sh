#!/usr/bin/env bash
# Measures the built image under load, for sizing container resources (deploy/k8s):
# runs it (--network host, loopback, CPWC_THREADS=THREADS), sends POST /v1/detect with
# autocannon at each client concurrency for DURATION_S seconds, and samples the server's own
# /metrics every 0.5 s: resident memory (cpwc_process_resident_memory_bytes) and CPU
# (cpwc_process_cpu_seconds_total). Prints one line per level: requests/s, p50/p99 latency,
# non-2xx count, mean CPU cores, peak RSS; then the peak RSS over the whole run.
#
#   deploy/container/measure.sh [--model-dir DIR] [--image FILE] [--threads N]
#                                [--concurrency-levels 1,4] [--duration-s 20] [--help]
#
# --model-dir mounts DIR read-only and serves it (default: the model in the image).
# Environment: IMAGE (default localhost/cpwc-detect:latest). Needs the devDependency autocannon.
set -euo pipefail

log() { printf '[container-measure] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
readonly repo
readonly IMAGE=${IMAGE:-localhost/cpwc-detect:latest}
model_dir=""
image_file="$repo/datasets/shapes-test/images/test_000000.jpg"
threads=2
levels=1,4
duration_s=20
while (($# > 0)); do
  case "$1" in
    --model-dir) model_dir=$(cd "${2:?}" && pwd); shift 2 ;;
    --image) image_file=$(realpath "${2:?}"); shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --concurrency-levels) levels=${2:?}; shift 2 ;;
    --duration-s) duration_s=${2:?}; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ -d "$repo/node_modules/autocannon" ]] || die "autocannon is missing: npm ci"
[[ -f "$image_file" ]] || die "no image file $image_file"

work=$(mktemp -d /var/tmp/cpwc-measure.XXXXXX)
name="cpwc-measure-$$"
sampler=""
cleanup() {
  [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null || true
  podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
url="http://127.0.0.1:$port"
model_args=()
[[ -n "$model_dir" ]] && model_args=(-v "$model_dir:/models/measured:ro" -e CPWC_MODEL_DIR=/models/measured)
podman run -d --name "$name" --network host --read-only --health-interval disable \
  -e CPWC_HOST=127.0.0.1 -e "CPWC_PORT=$port" -e "CPWC_THREADS=$threads" -e CPWC_LOG_LEVEL=warn \
  "${model_args[@]}" "$IMAGE" >/dev/null 2>"$work/run.err" || { cat "$work/run.err" >&2; die "podman run"; }
deadline=$((SECONDS + 180))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" == 200 ]]; do
  ((SECONDS < deadline)) || { podman logs --tail 20 "$name" >&2; die "not ready within 180 s"; }
  sleep 0.5
done

# One line per sample: epoch seconds, cpu seconds, rss bytes.
sample_metrics() {
  while :; do
    curl -s --max-time 2 "$url/metrics" \
      | awk -v t="$(date +%s.%N)" '/^cpwc_process_cpu_seconds_total /{c=$2} /^cpwc_process_resident_memory_bytes /{r=$2} END{if (c != "" && r != "") print t, c, r}'
    sleep 0.5
  done
}
idle_rss=$(curl -s "$url/metrics" | awk '/^cpwc_process_resident_memory_bytes /{printf "%.0f", $2 / 1048576}')
served=${model_dir:-the model in the image}
log "$IMAGE ready on $url (model: $served); RSS after warm-up ${idle_rss} MiB; CPWC_THREADS=$threads, ${duration_s} s per level"
sample_metrics >"$work/samples-all.txt" &
sampler=$!

IFS=',' read -r -a level_list <<<"$levels"
for clients in "${level_list[@]}"; do
  start_line=$(wc -l <"$work/samples-all.txt")
  # the API, not the CLI: the CLI's -i reads the body as text and mangles binary images
  node -e '
    const autocannon = require(process.argv[1]);
    const [url, file, clients, seconds] = process.argv.slice(2);
    autocannon({ url, method: "POST", headers: { "content-type": "image/jpeg" },
      body: require("node:fs").readFileSync(file), connections: Number(clients), duration: Number(seconds) })
      .then((r) => console.log(JSON.stringify(r)), (e) => { console.error(e); process.exit(1); });
  ' "$repo/node_modules/autocannon" "$url/v1/detect" "$image_file" "$clients" "$duration_s" \
    >"$work/level.json" || die "autocannon failed"
  tail -n +"$((start_line + 1))" "$work/samples-all.txt" >"$work/level-samples.txt"
  node - "$work/level.json" "$work/level-samples.txt" "$clients" <<'EOF' || die "non-2xx answers or client errors at $clients clients"
const fs = require('node:fs');
const [resultFile, samplesFile, clients] = process.argv.slice(2);
const r = JSON.parse(fs.readFileSync(resultFile, 'utf8'));
const samples = fs.readFileSync(samplesFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' ').map(Number));
const first = samples[0], last = samples[samples.length - 1];
const cores = samples.length > 1 ? (last[1] - first[1]) / (last[0] - first[0]) : NaN;
const peakRss = Math.max(...samples.map((s) => s[2])) / 1048576;
const codes = Object.entries(r.statusCodeStats ?? {}).map(([code, s]) => `${code}x${s.count}`).join(' ');
console.log(`clients ${clients}: ${(r.requests.total / r.duration).toFixed(2)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ` +
  `status ${codes}, errors ${r.errors}, timeouts ${r.timeouts}, CPU ${cores.toFixed(2)} cores, peak RSS ${peakRss.toFixed(0)} MiB`);
if (r.non2xx > 0 || r.errors > 0) process.exitCode = 3;
EOF
done
kill "$sampler" 2>/dev/null || true
sampler=""
peak=$(awk 'BEGIN{m=0} {if ($3 > m) m=$3} END{printf "%.0f", m / 1048576}' "$work/samples-all.txt")
log "peak RSS over the run: ${peak} MiB (idle after warm-up ${idle_rss} MiB)"
