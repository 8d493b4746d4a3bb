#!/usr/bin/env bash
# helm.sh provides the Helm CLI this project lints, renders and installs its chart with, and caches it
# outside the checkout.
#
# It first downloads the official release, https://get.helm.sh/helm-$HELM_VERSION-linux-$ARCH.tar.gz,
# and checks it against the SHA-256 published next to it (.sha256sum). Where that cannot be reached
# (no internet, as on the CI machine: the name lookup fails in ~0.1 s), it builds helm from the Go module
# proxy instead (a few minutes on 2 cores), with the Kubernetes version Helm assumes offline set to
# 1.37, as Helm's release build sets it from its client-go. A checksum mismatch is an error: the file is
# discarded, nothing is cached, nothing is built in its place, and the script exits non-zero.
#
# Usage: hack/helm.sh
#   Prints the path of the helm binary on stdout; progress on stderr.
#
# Environment:
#   HELM            if it names an executable, it is used as is and nothing is fetched.
#   HELM_VERSION    Helm version (default: v3.22.0).
#   SEEK_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/seek-operator).
#   SEEK_DOWNLOAD   auto (default): download, build if the release cannot be reached; never: build.
#   SEEK_BUILD      auto (default); never: fail instead of building (the message says "would build").
#   SEEK_DOWNLOAD_CONNECT_TIMEOUT  seconds to wait for a connection (default 5).
#   SEEK_HELM_RELEASE_URL  base of the release files (default https://get.helm.sh).
#
# Idempotent; concurrent runs serialise on a lock file.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { echo "helm: $*" >&2; }

if [[ -n "${HELM:-}" && -x "${HELM}" ]]; then
  log "using HELM=$HELM"
  echo "$HELM"
  exit 0
fi

HELM_VERSION=${HELM_VERSION:-v3.22.0}
cache=${SEEK_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/seek-operator}
dir="$cache/tools/helm/$HELM_VERSION"
mkdir -p "$dir"
if [[ -x "$dir/helm" ]]; then
  echo "$dir/helm"
  exit 0
fi

exec 9>"$dir/.lock"
flock 9
if [[ -x "$dir/helm" ]]; then
  echo "$dir/helm"
  exit 0
fi

# shellcheck source=hack/download.bash
source "$root/hack/download.bash"
case "${SEEK_BUILD:-auto}" in
  auto | never) ;;
  *) log "SEEK_BUILD=${SEEK_BUILD} (want auto or never)"; exit 1 ;;
esac

# download puts the released, verified helm into the cache; returns 2 if the release cannot be reached.
# It runs with errexit off (it is tested with ||), so it checks each step.
download() {
  local rc=0
  [[ "${SEEK_DOWNLOAD:-auto}" == never ]] && return 2
  local arch
  arch=$(release_arch)
  local tarball="helm-$HELM_VERSION-linux-$arch.tar.gz"
  local url="${SEEK_HELM_RELEASE_URL:-https://get.helm.sh}/$tarball"
  verified_download "$url" "$url.sha256sum" "$tarball" "$tmp/$tarball" || rc=$?
  ((rc == 0)) || return "$rc"
  install_from_tarball "$tmp/$tarball" "linux-$arch/helm" "$dir/helm"
  log "downloaded helm $HELM_VERSION"
}

# Downloads land here and move into the cache only once verified.
tmp=$(mktemp -d "$dir/.download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rc=0
download || rc=$?
if ((rc != 0)); then
  if [[ "${SEEK_BUILD:-auto}" == never ]]; then
    log "helm $HELM_VERSION could not be downloaded (SEEK_DOWNLOAD=${SEEK_DOWNLOAD:-auto}), and SEEK_BUILD=never: would build it from the Go module proxy"
    exit 1
  fi
  log "building helm $HELM_VERSION from the Go module proxy (once; a few minutes)"
  start=$(date +%s)
  # The Kubernetes version helm assumes offline (helm template, helm lint), as Helm's own Makefile sets it.
  k8s_flags=""
  for pkg in pkg/lint/rules pkg/chartutil; do
    k8s_flags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=37"
  done
  GOBIN="$dir" CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off \
    go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION $k8s_flags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  log "built in $(( $(date +%s) - start ))s"
fi
echo "$dir/helm"
