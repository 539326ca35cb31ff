#!/usr/bin/env bash
# Installs and configures rootful buildah + podman on a Debian host without a
# Docker engine (the CI machine). Idempotent: does nothing when already set up.
#
#   deploy/container/setup.sh [--help]
#
# Writes /etc/containers/storage.conf and /etc/containers/containers.conf only
# when they are missing or lack the settings below; an existing file without
# the marker line is kept as <file>.orig.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
fi

log() { printf '[container-setup] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (rootful podman/buildah)"

readonly PACKAGES=(buildah podman runc debootstrap)
readonly MARKER='# managed by cpwc-detect deploy/container/setup.sh'

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# write_config FILE CONTENT: replaces FILE unless it already carries our marker
# and the same content.
write_config() {
  local file=$1 content=$2
  if [[ -f "$file" ]] && [[ "$(cat "$file")" == "$content" ]]; then
    return 0
  fi
  if [[ -f "$file" ]] && ! grep -qF "$MARKER" "$file"; then
    cp -p "$file" "$file.orig"
    log "kept the previous $file as $file.orig"
  fi
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$content" >"$file"
  log "wrote $file"
}

# overlay: vfs also works here but copies every layer in full (slow, large).
write_config /etc/containers/storage.conf "$MARKER
[storage]
driver = \"overlay\"
runroot = \"/run/containers/storage\"
graphroot = \"/var/lib/containers/storage\""

# The sandbox cannot raise hard rlimits (podman's defaults ask for more) and
# crun fails on its cgroup layout, so use runc with cgroupfs. No journald here:
# events and logs go to files.
write_config /etc/containers/containers.conf "$MARKER
[containers]
default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]
log_driver = \"k8s-file\"

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\""

podman info --format '{{.Store.GraphDriverName}}' >/dev/null 2>&1 || die "podman info failed; see 'podman info'"
log "ready: $(podman --version), $(buildah --version | cut -d' ' -f1-3), storage driver $(podman info --format '{{.Store.GraphDriverName}}')"
