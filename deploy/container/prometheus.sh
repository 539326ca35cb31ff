#!/usr/bin/env bash
# Checks deploy/prometheus.yml with a real Prometheus, without a registry: a local image
# (localhost/cpwc-prometheus:bookworm, Debian's prometheus package on the debootstrap base
# from deploy/container/base-image.sh) is built once and reused.
#
#   deploy/container/prometheus.sh check-config
#       promtool check config deploy/prometheus.yml
#   deploy/container/prometheus.sh scrape HOST:PORT
#       runs Prometheus (--network host, a free loopback port) with deploy/prometheus.yml,
#       its detect:8080 target replaced by HOST:PORT and a 1 s scrape interval; waits up to
#       30 s until the job's target is up and cpwc_images_total has been scraped.
#       Prints the scraped cpwc_images_total series.
#
# Environment: PROMETHEUS_IMAGE (default localhost/cpwc-prometheus:bookworm),
#   DEBIAN_IMAGE (default localhost/debian:bookworm).
set -euo pipefail

log() { printf '[container-prometheus] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

readonly PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-localhost/cpwc-prometheus:bookworm}
readonly DEBIAN_IMAGE=${DEBIAN_IMAGE:-localhost/debian:bookworm}
repo=$(cd "$(dirname "$0")/../.." && pwd)
readonly repo
readonly CONFIG="$repo/deploy/prometheus.yml"

command=${1:-}
case "$command" in
  check-config) (($# == 1)) || die "check-config takes no arguments" ;;
  scrape) (($# == 2)) || die "scrape needs HOST:PORT" ;;
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) die "usage: $0 check-config | scrape HOST:PORT (see --help)" ;;
esac

work=$(mktemp -d /var/tmp/cpwc-prometheus.XXXXXX)
container=""
cleanup() {
  [[ -n "$container" ]] && podman rm -f -t 0 "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

ensure_image() {
  podman image exists "$PROMETHEUS_IMAGE" && return 0
  podman image exists "$DEBIAN_IMAGE" || "$repo/deploy/container/base-image.sh" >/dev/null
  log "building $PROMETHEUS_IMAGE (Debian's prometheus package)"
  local ctr
  ctr=$(buildah from --pull-never "$DEBIAN_IMAGE")
  if ! buildah run --isolation chroot "$ctr" -- sh -euc '
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
      rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb
      prometheus --version >/dev/null && promtool --version >/dev/null' >"$work/build.log" 2>&1; then
    tail -20 "$work/build.log" >&2
    buildah rm "$ctr" >/dev/null
    die "building $PROMETHEUS_IMAGE failed"
  fi
  buildah config --user prometheus --entrypoint '["/usr/bin/prometheus"]' --cmd '' "$ctr" 2>/dev/null
  buildah commit --quiet --rm --format docker "$ctr" "$PROMETHEUS_IMAGE" >/dev/null
}

ensure_image

if [[ "$command" == check-config ]]; then
  podman run --rm --network none -v "$CONFIG:/etc/prometheus/prometheus.yml:ro" --entrypoint promtool \
    "$PROMETHEUS_IMAGE" check config /etc/prometheus/prometheus.yml >"$work/promtool.log" 2>&1 \
    || { cat "$work/promtool.log" >&2; die "promtool check config deploy/prometheus.yml"; }
  log "ok: promtool check config deploy/prometheus.yml"
  exit 0
fi

target=$2
/usr/bin/python3 - "$CONFIG" "$target" >"$work/prometheus.yml" <<'EOF' || die "cannot rewrite deploy/prometheus.yml"
import sys

import yaml

config_file, target = sys.argv[1:]
config = yaml.safe_load(open(config_file))
config.setdefault("global", {})["scrape_interval"] = "1s"
replaced = 0
for job in config["scrape_configs"]:
    for static in job.get("static_configs", []):
        targets = static.get("targets", [])
        replaced += targets.count("detect:8080")
        static["targets"] = [target if t == "detect:8080" else t for t in targets]
if replaced != 1:
    sys.exit(f"expected one detect:8080 target in {config_file}, found {replaced}")
yaml.safe_dump(config, sys.stdout)
EOF
chmod 0644 "$work/prometheus.yml"
job=$(/usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["scrape_configs"][0]["job_name"])' "$CONFIG")

port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
container="cpwc-prometheus-$$"
podman run -d --name "$container" --network host --read-only --tmpfs /prometheus \
  -v "$work/prometheus.yml:/etc/prometheus/prometheus.yml:ro" "$PROMETHEUS_IMAGE" \
  --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus \
  "--web.listen-address=127.0.0.1:$port" >/dev/null 2>"$work/run.log" \
  || { cat "$work/run.log" >&2; die "podman run prometheus failed"; }

query() {
  curl -s --max-time 2 --get --data-urlencode "query=$1" "http://127.0.0.1:$port/api/v1/query" || true
}
# prints the query's first value, or nothing
first_value() {
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const r=JSON.parse(s).data.result;if(r.length)console.log(r[0].value[1])}catch{}})'
}

deadline=$((SECONDS + 30))
while :; do
  up=$(query "up{job=\"$job\"}" | first_value)
  images=$(query 'cpwc_images_total' | first_value)
  [[ "$up" == 1 && -n "$images" ]] && break
  if ((SECONDS >= deadline)); then
    podman logs --tail 20 "$container" >&2 || true
    query "up{job=\"$job\"}" >&2
    die "Prometheus did not scrape $target within 30 s (up='${up}', cpwc_images_total='${images}')"
  fi
  sleep 0.5
done
log "ok: Prometheus (job $job) scraped $target: up 1, cpwc_images_total $images"
