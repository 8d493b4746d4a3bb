#!/usr/bin/env bash
# helm.sh builds the Helm CLI this project lints and renders its chart with, from the Go module proxy,
# and caches it outside the checkout.
#
# Usage: hack/helm.sh
#   Prints the path of the helm binary on stdout; progress on stderr.
#
# Environment:
#   HELM            if it names an executable, it is used as is and nothing is built.
#   HELM_VERSION    Helm version to build (default: v3.22.0).
#   SEEK_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/seek-operator).
#
# Idempotent; concurrent runs serialise on a lock file. The first build takes a few minutes on 2 cores.
set -euo pipefail

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
if [[ ! -x "$dir/helm" ]]; then
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
