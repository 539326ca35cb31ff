#!/usr/bin/env bash
# Builds the cpwc-detect image from ./Dockerfile with rootful buildah, no registry:
# the base image is the local stand-in from deploy/container/base-image.sh.
#
#   deploy/container/build.sh [--help]
#
# This machine's npm settings reach the build without the Dockerfile knowing about
# them: its CA bundle and a generated global npmrc (registry, cafile, proxies) are
# mounted into every RUN step, and a host directory holds npm's download cache.
#
# Environment: IMAGE (default localhost/cpwc-detect:latest),
#   BASE_IMAGE (default localhost/node:20-bookworm-slim),
#   CPWC_CONTAINER_CACHE (default /var/cache/cpwc-detect-container: npm cache, last-build.log),
#   CONTEXT (default: the repository root; the build context, holding the Dockerfile).
# Prints the image's name on stdout.
set -euo pipefail

log() { printf '[container-build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
fi
(($# == 0)) || die "unknown argument '$1' (see --help)"

readonly IMAGE=${IMAGE:-localhost/cpwc-detect:latest}
export BASE_IMAGE=${BASE_IMAGE:-localhost/node:20-bookworm-slim}
readonly CACHE_DIR=${CPWC_CONTAINER_CACHE:-/var/cache/cpwc-detect-container}
readonly HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
repo=$(cd "$(dirname "$0")/../.." && pwd)
readonly repo
readonly CONTEXT=${CONTEXT:-$repo}

"$repo/deploy/container/setup.sh"
"$repo/deploy/container/base-image.sh" >/dev/null

work=$(mktemp -d /var/tmp/cpwc-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$CACHE_DIR/npm"

# The image's npm (prefix /usr/local) reads /usr/local/etc/npmrc as its global config.
npm_setting() { npm config get "$1" 2>/dev/null | grep -v '^null$\|^undefined$' || true; }
{
  echo "registry=$(npm_setting registry)"
  for key in proxy https-proxy noproxy strict-ssl; do
    value=$(npm_setting "$key")
    [[ -n "$value" ]] && echo "$key=$value"
  done
  [[ -f "$HOST_CA_BUNDLE" ]] && echo "cafile=$HOST_CA_BUNDLE"
} >"$work/npmrc"

mounts=(-v "$work/npmrc:/usr/local/etc/npmrc:ro" -v "$CACHE_DIR/npm:/root/.npm")
[[ -f "$HOST_CA_BUNDLE" ]] && mounts+=(-v "$HOST_CA_BUNDLE:$HOST_CA_BUNDLE:ro")

log "building $IMAGE on $BASE_IMAGE from $CONTEXT"
started=$SECONDS
buildah bud --isolation chroot --format docker --pull-never --layers \
  "${mounts[@]}" \
  --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  --tag "$IMAGE" \
  --file "$CONTEXT/Dockerfile" "$CONTEXT" >"$CACHE_DIR/last-build.log" 2>&1 \
  || { tail -40 "$CACHE_DIR/last-build.log" >&2; die "buildah bud failed (log above; all of it in $CACHE_DIR/last-build.log)"; }
log "built $IMAGE in $((SECONDS - started)) s, $(podman image inspect --format '{{.Size}}' "$IMAGE") bytes"
echo "$IMAGE"
