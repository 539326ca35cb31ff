#!/usr/bin/env bash
# Container checks of a model repository, on the image deploy/container/build.sh built (no build
# here; deploy/container/smoke.sh builds it, then calls this script):
#   repository  the image run hardened (read-only root, no capabilities) with a repository of two
#               models (models/shapes-cpwc-r50-fpn and test/fixtures/models/tiny-fpn, copied)
#               mounted read-only at /models, CPWC_MODEL_REPOSITORY=/models: /readyz, GET /v1/models
#               lists both ready, POST /v2/repository/index lists both READY, and POST /v1/detect
#               answers from each model by name (?model=) and from the default without one.
#   kube        deploy/k8s/deployment.yaml executed by `podman kube play` (pause image from
#               Debian's catatonit), with the manifest's commented repository example switched on
#               (CPWC_MODEL_REPOSITORY=/models, the volume a hostPath to the same two models),
#               one replica and IMAGE (installs catatonit and python3-yaml if missing). podman 4.3 has no Services: the Service's port is stood in
#               for by publishing its targetPort on a free loopback port (hostPort). Waits for
#               /readyz there, detects an image, then `podman kube down`.
# Exits non-zero with a message naming the failed check; removes what it created.
#
#   deploy/container/kube-smoke.sh [--cases repository,kube] [--help]
#
# Environment: IMAGE (default localhost/cpwc-detect:latest), READY_TIMEOUT_S (default 180).
set -euo pipefail

log() { printf '[container-kube-smoke] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
readonly repo
readonly IMAGE=${IMAGE:-localhost/cpwc-detect:latest}
readonly READY_TIMEOUT_S=${READY_TIMEOUT_S:-180}
readonly DEFAULT_MODEL=shapes-cpwc-r50-fpn
readonly OTHER_MODEL=tiny-fpn
readonly TEST_IMAGE=datasets/shapes-test/images/test_000000.jpg

cases=repository,kube
while (($# > 0)); do
  case "$1" in
    --cases) cases=${2:?--cases needs a list}; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[[ $(id -u) -eq 0 ]] || die "must run as root (rootful podman)"
for tool in curl node podman /usr/bin/python3; do
  command -v "$tool" >/dev/null || die "$tool is needed on the host"
done
# podman kube play builds its pause image from catatonit (a Recommends of podman, which
# setup.sh installs without); the manifest is rewritten with Debian's python3-yaml
missing=()
[[ -x /usr/libexec/podman/catatonit || -x /usr/bin/catatonit ]] || missing+=(catatonit)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
if ((${#missing[@]} > 0)); then
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[[ -x /usr/libexec/podman/catatonit || -x /usr/bin/catatonit ]] || die "catatonit is missing: podman kube play needs it for the pause image"
podman image exists "$IMAGE" || die "$IMAGE does not exist (build it with deploy/container/build.sh)"

work=$(mktemp -d /var/tmp/cpwc-kube-smoke.XXXXXX)
containers=()
kube_file=""
cleanup() {
  local name
  for name in "${containers[@]}"; do podman rm -f -t 0 "$name" >/dev/null 2>&1 || true; done
  [[ -z "$kube_file" ]] || podman kube down "$kube_file" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# A repository of two models the container's uid 1000 can read (no symlinks: they would point
# outside the mount).
models="$work/models"
mkdir -p "$models"
cp -r "$repo/models/$DEFAULT_MODEL" "$models/$DEFAULT_MODEL"
rm -f "$models/$DEFAULT_MODEL/checkpoint.pt"
cp -r "$repo/test/fixtures/models/$OTHER_MODEL" "$models/$OTHER_MODEL"
chmod -R a+rX "$work"

# wait_ready URL CONTAINER: /readyz 200 within READY_TIMEOUT_S while CONTAINER runs
wait_ready() {
  local url=$1 name=$2 deadline=$((SECONDS + READY_TIMEOUT_S)) status=""
  while ((SECONDS < deadline)); do
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/readyz" || true)
    [[ "$status" == 200 ]] && return 0
    if [[ "$(podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" != true ]]; then
      podman logs --tail 30 "$name" >&2 || true
      die "$name stopped before /readyz answered 200"
    fi
    sleep 0.5
  done
  podman logs --tail 30 "$name" >&2 || true
  die "$name: /readyz not 200 within ${READY_TIMEOUT_S} s (last status '$status')"
}

# detect URL QUERY EXPECTED_MODEL: POST /v1/detect of the test image answers 200 from that model
# with at least one detection
detect() {
  local url=$1 query=$2 expected=$3 status
  status=$(curl -sS -o "$work/detect.json" -w '%{http_code}' --max-time 60 -H 'Content-Type: image/jpeg' \
    --data-binary "@$repo/$TEST_IMAGE" "$url/v1/detect$query") || die "POST /v1/detect$query failed"
  [[ "$status" == 200 ]] || { cat "$work/detect.json" >&2; die "POST /v1/detect$query returned $status"; }
  node - "$work/detect.json" "$expected" <<'EOF' || die "POST /v1/detect$query: unexpected answer"
const body = JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'));
if (body.model !== process.argv[3]) { console.error(`model '${body.model}', expected '${process.argv[3]}'`); process.exit(1); }
if (!Array.isArray(body.detections) || body.detections.length === 0) { console.error('no detections'); process.exit(1); }
console.error(`    ${body.model}: ${body.detections.length} detections, top ${body.detections[0].label} ${body.detections[0].score.toFixed(3)}`);
EOF
}

# check_repository URL: both models listed ready by /v1/models and READY by the Triton index
check_repository() {
  local url=$1
  # /readyz is 200 once the default model is ready; the index answers after the others loaded
  curl -sS -f -o "$work/index.json" -X POST "$url/v2/repository/index" || die "POST /v2/repository/index failed"
  curl -sS -f -o "$work/models.json" "$url/v1/models" || die "GET /v1/models failed"
  node - "$work/models.json" "$work/index.json" "$DEFAULT_MODEL" "$OTHER_MODEL" <<'EOF' || die "the repository is not served as expected"
const fs = require('node:fs');
const [modelsFile, indexFile, ...names] = process.argv.slice(2);
const models = JSON.parse(fs.readFileSync(modelsFile, 'utf8'));
const index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
const states = models.repository.map((m) => `${m.name}:${m.state}`).join(',');
if (states !== names.map((n) => `${n}:ready`).join(',')) { console.error(`GET /v1/models states ${states}`); process.exit(1); }
if (models.default !== names[0]) { console.error(`default is ${models.default}`); process.exit(1); }
const rows = index.map((r) => `${r.name}:${r.state}`).join(',');
if (rows !== names.map((n) => `${n}:READY`).join(',')) { console.error(`index ${rows}`); process.exit(1); }
EOF
  log "    /v1/models and /v2/repository/index: $DEFAULT_MODEL (default) and $OTHER_MODEL ready"
}

repository_case() {
  local name="cpwc-kube-smoke-$$-repository" port url started
  port=$(free_port)
  url="http://127.0.0.1:$port"
  containers+=("$name")
  log "[repository] $IMAGE with $models mounted at /models, on $url"
  started=$SECONDS
  podman run -d --name "$name" -p "127.0.0.1:$port:8080" --read-only --cap-drop ALL --security-opt no-new-privileges \
    --health-interval disable -v "$models:/models:ro" -e CPWC_MODEL_REPOSITORY=/models -e CPWC_REPOSITORY_POLL_S=0 \
    "$IMAGE" >/dev/null 2>"$work/podman.err" || { cat "$work/podman.err" >&2; die "[repository] podman run failed"; }
  wait_ready "$url" "$name"
  log "[repository] ready $((SECONDS - started)) s after podman run"
  check_repository "$url"
  detect "$url" "" "$DEFAULT_MODEL"
  detect "$url" "?model=$OTHER_MODEL&score_threshold=0" "$OTHER_MODEL"
  # podman prints systemd-timer errors for HEALTHCHECK images on hosts without systemd
  podman stop -t 30 "$name" >/dev/null 2>"$work/podman.err" || { cat "$work/podman.err" >&2; die "[repository] podman stop failed"; }
  podman rm "$name" >/dev/null 2>&1 || true
  log "[repository] ok"
}

kube_case() {
  local port url pod container started
  port=$(free_port)
  url="http://127.0.0.1:$port"
  kube_file="$work/cpwc-detect-kube.yaml"
  /usr/bin/python3 - "$repo/deploy/k8s/deployment.yaml" "$repo/deploy/k8s/service.yaml" "$kube_file" "$IMAGE" "$models" "$port" <<'EOF' || die "[kube] cannot prepare the manifest"
import sys

import yaml

deployment_file, service_file, out, image, models, port = sys.argv[1:]
deployment = yaml.safe_load(open(deployment_file))
service = yaml.safe_load(open(service_file))
spec = deployment["spec"]
spec["replicas"] = 1
pod = spec["template"]["spec"]
container = pod["containers"][0]
container["image"] = image
# the manifest's commented repository example, switched on; the volume is a hostPath here
container["env"] += [{"name": "CPWC_MODEL_REPOSITORY", "value": "/models"}]
container["volumeMounts"] += [{"name": "models", "mountPath": "/models", "readOnly": True}]
pod["volumes"] += [{"name": "models", "hostPath": {"path": models, "type": "Directory"}}]
# the Service's targetPort, published on the loopback port standing in for the Service
targets = {p["targetPort"] for p in service["spec"]["ports"]}
published = [p for p in container["ports"] if p["name"] in targets or p["containerPort"] in targets]
if not published:
    sys.exit(f"the Service's targetPorts {sorted(targets)} are not container ports")
for p in published:
    p["hostPort"] = int(port)
    p["hostIP"] = "127.0.0.1"
yaml.safe_dump(deployment, open(out, "w"), sort_keys=False)
EOF
  log "[kube] podman kube play deploy/k8s/deployment.yaml (1 replica, repository at /models), Service port on $url"
  started=$SECONDS
  podman kube play "$kube_file" >"$work/play.out" 2>"$work/podman.err" || { cat "$work/podman.err" "$work/play.out" >&2; die "[kube] podman kube play failed"; }
  pod=$(podman pod ps --filter "label=app.kubernetes.io/name=cpwc-detect" --format '{{.Name}}' | head -1)
  [[ -n "$pod" ]] || pod=$(podman pod ps --format '{{.Name}}' | grep '^cpwc-detect' | head -1)
  [[ -n "$pod" ]] || die "[kube] no pod after podman kube play"
  container="$pod-detect"
  podman container exists "$container" || die "[kube] no container $container in pod $pod"
  wait_ready "$url" "$container"
  log "[kube] ready through the Service port $((SECONDS - started)) s after podman kube play"
  [[ "$(podman exec "$container" id -u)" == 1000 ]] || die "[kube] the server does not run as uid 1000 (runAsUser)"
  check_repository "$url"
  detect "$url" "" "$DEFAULT_MODEL"
  podman kube down "$kube_file" >/dev/null 2>&1 || die "[kube] podman kube down failed"
  kube_file=""
  log "[kube] ok: $pod ready through the Service port, detections answered, torn down"
}

IFS=',' read -r -a case_list <<<"$cases"
for case_name in "${case_list[@]}"; do
  case "$case_name" in
    repository) repository_case ;;
    kube) kube_case ;;
    *) die "unknown case '$case_name' (repository, kube)" ;;
  esac
done
log "PASSED (${cases})"
