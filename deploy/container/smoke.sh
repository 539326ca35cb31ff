#!/usr/bin/env bash
# End-to-end container check on a machine without a Docker engine or a registry:
#   1. installs and configures buildah + podman (deploy/container/setup.sh)
#   2. lints the Dockerfile and the deploy/ manifests (deploy/container/lint.sh)
#   3. builds the base image if missing, then the app image (deploy/container/build.sh);
#      promtool checks deploy/prometheus.yml (deploy/container/prometheus.sh)
#   4. for each case, runs the image hardened (read-only root, no capabilities, uid 1000)
#      on a free loopback port and checks: /readyz within
#      READY_TIMEOUT_S, the image's HEALTHCHECK, tini as PID 1, POST /v1/detect of a real
#      image returns detections from the expected model, /metrics counts it (and, in the
#      first case, a real Prometheus with deploy/prometheus.yml scrapes it), and SIGTERM
#      sent once all 6 requests of a burst have been read by the server (running, queued or
#      answered, from /metrics; CPWC_DRAIN_DELAY_MS=DRAIN_DELAY_MS) gives a clean exit within STOP_TIMEOUT_S:
#      every request answered 200, status 0, the server's 'stopped' log line with drained
#      true; onnxruntime's telemetry stays off.
# Cases: default  the model baked into the image (models/shapes-cpwc-r50-fpn); --network host,
#                 CPWC_HOST=127.0.0.1 and CPWC_PORT=<free port>
#        mounted  test/fixtures/models/tiny-fpn mounted read-only at /models/tiny-fpn,
#                 selected with CPWC_MODEL_DIR; the image's own host/port (0.0.0.0:8080)
#                 published with -p 127.0.0.1:<free port>:8080
# Exits non-zero with a message naming the failed check. Containers are removed on exit.
#
#   deploy/container/smoke.sh [--cases default,mounted] [--skip-build] [--help]
#
# Environment: IMAGE (default localhost/cpwc-detect:latest), READY_TIMEOUT_S (default 180),
#   STOP_TIMEOUT_S (default 30), DRAIN_DELAY_MS (default 500), plus those of deploy/container/build.sh.
set -euo pipefail

log() { printf '[container-smoke] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
readonly repo
export IMAGE=${IMAGE:-localhost/cpwc-detect:latest}
readonly READY_TIMEOUT_S=${READY_TIMEOUT_S:-180}
readonly STOP_TIMEOUT_S=${STOP_TIMEOUT_S:-30}
readonly DRAIN_DELAY_MS=${DRAIN_DELAY_MS:-500}
readonly BURST=6
readonly DEFAULT_MODEL=models/shapes-cpwc-r50-fpn
readonly DEFAULT_IMAGE=datasets/shapes-test/images/test_000000.jpg
readonly TEST_MODEL=test/fixtures/models/tiny-fpn
readonly TEST_IMAGE=datasets/shapes-test/images/test_000000.jpg

cases=default,mounted
build=1
while (($# > 0)); do
  case "$1" in
    --cases) cases=${2:?--cases needs a list}; shift 2 ;;
    --skip-build) build=0; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[[ $(id -u) -eq 0 ]] || die "must run as root (rootful podman)"
for tool in curl node; do
  command -v "$tool" >/dev/null || die "$tool is needed on the host"
done

work=$(mktemp -d /var/tmp/cpwc-smoke.XXXXXX)
containers=()
cleanup() {
  local name
  for name in "${containers[@]}"; do
    podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

timings=()
started_all=$SECONDS
timed() {
  local label=$1 started=$SECONDS
  shift
  "$@"
  timings+=("$(printf '%-34s %4d s' "$label" $((SECONDS - started)))")
}

free_port() {
  node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

show_logs() {
  log "last container log lines of $1:"
  podman logs --tail 30 "$1" 2>&1 | sed 's/^/    /' >&2 || true
}

# podman prints systemd-timer errors for HEALTHCHECK images on hosts without systemd; its
# stderr goes to a file that is shown only when the command fails.
podman_quiet() {
  podman "$@" 2>"$work/podman.err" || { cat "$work/podman.err" >&2; return 1; }
}

wait_ready() {
  local name=$1 url=$2 deadline=$((SECONDS + READY_TIMEOUT_S)) status
  while ((SECONDS < deadline)); do
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/readyz" || true)
    [[ "$status" == 200 ]] && return 0
    if [[ "$(podman inspect --format '{{.State.Running}}' "$name")" != true ]]; then
      show_logs "$name"
      die "$name exited before becoming ready (exit code $(podman inspect --format '{{.State.ExitCode}}' "$name"))"
    fi
    sleep 0.5
  done
  show_logs "$name"
  die "$name: /readyz not 200 within ${READY_TIMEOUT_S} s (last status '$status')"
}

# check_detections FILE MODEL_NAME: the /v1/detect response is from that model and holds
# at least one well-formed detection inside the image.
check_detections() {
  node - "$1" "$2" <<'EOF'
const fs = require('node:fs');
const [file, expectedModel] = process.argv.slice(2);
const body = JSON.parse(fs.readFileSync(file, 'utf8'));
const fail = (why) => { console.error(`bad /v1/detect response: ${why}\n${JSON.stringify(body).slice(0, 600)}`); process.exit(1); };
if (body.model !== expectedModel) fail(`model is '${body.model}', expected '${expectedModel}'`);
if (!Array.isArray(body.detections) || body.detections.length === 0) fail('no detections');
for (const d of body.detections) {
  const b = d.box ?? {};
  const ok = typeof d.label === 'string' && Number.isInteger(d.class_id) && d.score >= 0 && d.score <= 1
    && b.xmin >= 0 && b.ymin >= 0 && b.xmin < b.xmax && b.ymin < b.ymax && b.xmax <= body.width && b.ymax <= body.height;
  if (!ok) fail(`malformed detection ${JSON.stringify(d)}`);
}
const top = body.detections[0];
console.log(`${body.detections.length} detections, top ${top.label} ${top.score.toFixed(3)}, ${Math.round(body.timings_ms.total)} ms in the pipeline`);
EOF
}

# run_case NAME EXPECTED_MODEL_NAME IMAGE_FILE NETWORK [podman run args...]
#   NETWORK host:    --network host, the server told to listen on 127.0.0.1:<free port>
#   NETWORK publish: the image's own CPWC_HOST/CPWC_PORT (0.0.0.0:8080) published on 127.0.0.1:<free port>
run_case() {
  local case_name=$1 expected_model=$2 image_file=$3 network=$4
  shift 4
  local name="cpwc-smoke-$$-$case_name" port url status started network_args
  port=$(free_port)
  url="http://127.0.0.1:$port"
  case "$network" in
    host) network_args=(--network host -e CPWC_HOST=127.0.0.1 -e "CPWC_PORT=$port") ;;
    publish) network_args=(-p "127.0.0.1:$port:8080") ;;
    *) die "run_case: unknown network '$network'" ;;
  esac
  containers+=("$name")
  log "[$case_name] starting $name on $url (network: $network)"
  started=$SECONDS
  podman_quiet run -d --name "$name" "${network_args[@]}" \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    --health-interval disable -e CPWC_DRAIN_DELAY_MS="$DRAIN_DELAY_MS" \
    "$@" "$IMAGE" >/dev/null || die "[$case_name] podman run failed"
  wait_ready "$name" "$url"
  timings+=("$(printf '%-34s %4d s' "[$case_name] start to ready" $((SECONDS - started)))")

  podman_quiet healthcheck run "$name" >/dev/null \
    || die "[$case_name] the image's HEALTHCHECK reports unhealthy"
  [[ "$(podman exec "$name" id -u)" == 1000 ]] || die "[$case_name] server does not run as uid 1000"
  [[ "$(podman exec "$name" cat /proc/1/comm)" == tini ]] || die "[$case_name] PID 1 is not tini"
  status=$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")
  [[ "$status" == 200 ]] || die "[$case_name] /healthz returned $status"

  status=$(curl -sS -o "$work/detect.json" -w '%{http_code}' --max-time 60 \
    -H 'Content-Type: image/jpeg' --data-binary "@$repo/$image_file" "$url/v1/detect") \
    || die "[$case_name] POST /v1/detect failed"
  [[ "$status" == 200 ]] || { cat "$work/detect.json" >&2; die "[$case_name] POST /v1/detect returned $status"; }
  local summary
  summary=$(check_detections "$work/detect.json" "$expected_model") || die "[$case_name] /v1/detect response check failed"
  log "[$case_name] /v1/detect $(basename "$image_file"): $summary"

  curl -sS -f -o "$work/metrics.txt" "$url/metrics" || die "[$case_name] GET /metrics failed"
  grep -qE '^cpwc_images_total\{outcome="ok",model="'"$expected_model"'"\} 1$' "$work/metrics.txt" \
    || die "[$case_name] /metrics lacks cpwc_images_total{outcome=\"ok\",model=\"$expected_model\"} 1"
  grep -qE '^cpwc_http_request_duration_seconds_count\{.*route="/v1/detect".*\} 1$' "$work/metrics.txt" \
    || die "[$case_name] /metrics lacks the /v1/detect request count"
  local rss
  rss=$(awk '/^cpwc_process_resident_memory_bytes /{printf "%.0f", $2 / 1048576}' "$work/metrics.txt")
  log "[$case_name] /metrics ok; resident memory after one inference: ${rss:-?} MiB"
  if ((prometheus_scraped == 0)); then
    "$repo/deploy/container/prometheus.sh" scrape "127.0.0.1:$port" || die "[$case_name] Prometheus scrape"
    prometheus_scraped=1
  fi

  # SIGTERM while requests are in flight: every one must still get its answer.
  local i burst_pids=() deadline
  for ((i = 0; i < BURST; i++)); do
    curl -s -o /dev/null -w '%{http_code}' --max-time 60 -H 'Content-Type: image/jpeg' \
      --data-binary "@$repo/$image_file" "$url/v1/detect" >"$work/burst-$i.status" 2>/dev/null &
    burst_pids+=($!)
  done
  # precondition: every request of the burst has reached the server and been read (running,
  # queued, or already answered), so SIGTERM cannot race a request still being connected
  deadline=$((SECONDS + 30))
  until [[ "$(curl -s --max-time 2 "$url/metrics" | awk -v before=1 '
      /^cpwc_inferences_in_flight / { n += $2 }
      /^cpwc_queue_depth / { n += $2 }
      /^cpwc_images_total\{outcome="ok"[,}]/ { n += $2 - before }
      END { print n + 0 }')" == "$BURST" ]]; do
    ((SECONDS < deadline)) || die "[$case_name] the $BURST requests were not all running, queued or answered within 30 s"
    sleep 0.02
  done
  log "[$case_name] SIGTERM with all $BURST requests read by the server"
  started=$SECONDS
  podman kill --signal TERM "$name" >/dev/null || die "[$case_name] podman kill failed"
  local exit_code
  exit_code=$(timeout "$STOP_TIMEOUT_S" podman wait "$name" 2>/dev/null) \
    || { show_logs "$name"; die "[$case_name] still running ${STOP_TIMEOUT_S} s after SIGTERM"; }
  timings+=("$(printf '%-34s %4d s' "[$case_name] SIGTERM to exit" $((SECONDS - started)))")
  wait "${burst_pids[@]}" || true
  [[ "$exit_code" == 0 ]] || { show_logs "$name"; die "[$case_name] exit code $exit_code after SIGTERM, expected 0"; }
  local draining answered=0
  draining=$(podman logs "$name" 2>&1 | grep '"msg":"draining' | head -1)
  [[ -n "$draining" ]] || { show_logs "$name"; die "[$case_name] no 'draining' log line: the server did not see SIGTERM"; }
  for ((i = 0; i < BURST; i++)); do
    [[ "$(cat "$work/burst-$i.status")" == 200 ]] && answered=$((answered + 1))
  done
  ((answered == BURST)) || die "[$case_name] only $answered of $BURST in-flight requests got 200 across SIGTERM (statuses: $(cat "$work"/burst-*.status | tr '\n' ' '))"
  podman logs "$name" 2>&1 | grep '"msg":"stopped"' | grep -q '"drained":true' \
    || { show_logs "$name"; die "[$case_name] no 'stopped' log line with drained:true after SIGTERM"; }
  log "[$case_name] drained: $(node -e 'const l=JSON.parse(process.argv[1]);console.log(`${l.inferencesRunning} running + ${l.queued} queued at SIGTERM`)' "$draining"), all $BURST answered 200"
  if podman logs "$name" 2>&1 | grep -qi 'telemetry'; then
    show_logs "$name"
    die "[$case_name] onnxruntime's telemetry is on (the image sets ORT_DISABLE_TELEMETRY=1)"
  fi
  podman rm "$name" >/dev/null 2>&1 || true
  log "[$case_name] ok: clean exit 0 after SIGTERM"
}

# model_name FILE: the "name" in a model.json
model_name() {
  node -e "process.stdout.write(JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')).name)" "$1"
}

timed "setup (apt, containers.conf)" "$repo/deploy/container/setup.sh"
timed "lint (Dockerfile, deploy/)" "$repo/deploy/container/lint.sh"
if ((build == 1)); then
  timed "build (base image if missing, app)" "$repo/deploy/container/build.sh" >/dev/null
fi
timed "promtool check config" "$repo/deploy/container/prometheus.sh" check-config
prometheus_scraped=0
podman image exists "$IMAGE" || die "$IMAGE does not exist (drop --skip-build)"
size_mb=$(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f", $1 / 1e6}')
log "$IMAGE: ${size_mb} MB"

IFS=',' read -r -a case_list <<<"$cases"
for case_name in "${case_list[@]}"; do
  case "$case_name" in
    default)
      podman_quiet run --rm --health-interval disable --entrypoint cat "$IMAGE" "/app/$DEFAULT_MODEL/model.json" >"$work/default-model.json" \
        || die "[default] the image has no /app/$DEFAULT_MODEL/model.json (was $DEFAULT_MODEL in the build context?)"
      timed "[default] case" run_case default "$(model_name "$work/default-model.json")" "$DEFAULT_IMAGE" host
      ;;
    mounted)
      [[ -f "$repo/$TEST_MODEL/model.json" ]] || die "[mounted] $TEST_MODEL/model.json is missing"
      timed "[mounted] case" run_case mounted "$(model_name "$repo/$TEST_MODEL/model.json")" "$TEST_IMAGE" publish \
        -v "$repo/$TEST_MODEL:/models/tiny-fpn:ro" -e CPWC_MODEL_DIR=/models/tiny-fpn
      ;;
    *) die "unknown case '$case_name' (default, mounted)" ;;
  esac
done

timed "repository + kube play cases" "$repo/deploy/container/kube-smoke.sh"
log "timings:"
printf '    %s\n' "${timings[@]}" >&2
log "PASSED in $((SECONDS - started_all)) s (image $IMAGE, ${size_mb} MB)"
