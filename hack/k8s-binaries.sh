#!/usr/bin/env bash
# k8s-binaries.sh provides the upstream Kubernetes binaries this project tests against and runs its local
# cluster with (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
# kubectl), for the Kubernetes version that matches go.mod, and caches them outside the checkout.
#
# Each binary is first downloaded from the official releases and checked against the SHA-256 they
# publish next to it:
#   https://dl.k8s.io/release/$K8S_VERSION/bin/linux/$ARCH/<name>       (+ <name>.sha256)
#   https://github.com/etcd-io/etcd/releases/download/$ETCD_VERSION/etcd-$ETCD_VERSION-linux-$ARCH.tar.gz
#                                                                        (+ SHA256SUMS in that release)
# Where they cannot be reached (no internet, as on the CI machine: the name lookup fails in ~0.1 s), the
# binary is built from the Go module proxy instead (cold: ~25-30 min on 2 cores for all of them). A
# checksum mismatch is an error: the file is discarded, nothing is cached, nothing is built in its
# place, and the script exits non-zero.
#
# Usage: hack/k8s-binaries.sh [BINARY...]
#   Prints the directory holding the binaries (usable as KUBEBUILDER_ASSETS) on stdout; progress on stderr.
#   Default binaries: etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy
#   (the last three run the node of the local cluster, internal/localcluster).
#
# Environment:
#   KUBEBUILDER_ASSETS  if it already holds every requested binary, it is used as is and nothing is fetched.
#   K8S_VERSION         Kubernetes version (default: derived from k8s.io/api in go.mod).
#   ETCD_VERSION        etcd version (default: v3.7.3).
#   SEEK_CACHE_DIR      cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/seek-operator).
#   SEEK_DOWNLOAD       auto (default): download, build if the release cannot be reached; never: build.
#   SEEK_BUILD          auto (default); never: fail instead of building (the message says "would build").
#   SEEK_DOWNLOAD_CONNECT_TIMEOUT  seconds to wait for a connection (default 5).
#   SEEK_K8S_RELEASE_URL   base of the Kubernetes release files (default https://dl.k8s.io/release).
#   SEEK_ETCD_RELEASE_URL  base of the etcd release files (default https://github.com/etcd-io/etcd/releases/download).
#
# Idempotent: binaries already in the cache are skipped; concurrent runs serialise on a lock file.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { echo "k8s-binaries: $*" >&2; }

if [[ $# -gt 0 ]]; then wanted=("$@"); else wanted=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy); fi

have_all() {
  local dir=$1 b
  for b in "${wanted[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && have_all "$KUBEBUILDER_ASSETS"; then
  log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

if [[ -z "${K8S_VERSION:-}" ]]; then
  api=$(awk '$1 == "k8s.io/api" { print $2; exit }' "$root/go.mod")
  [[ "$api" =~ ^v0\.([0-9]+)\.([0-9]+)$ ]] || { log "cannot derive the Kubernetes version from k8s.io/api '$api' in go.mod"; exit 1; }
  K8S_VERSION="v1.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
fi
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
staging_version="v0.${K8S_VERSION#v1.}"

cache=${SEEK_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/seek-operator}
base="$cache/k8s/$K8S_VERSION"
bin="$base/bin"
mkdir -p "$bin" "$base/src"

if have_all "$bin"; then
  echo "$bin"
  exit 0
fi

exec 9>"$base/.lock"
flock 9

# shellcheck source=hack/download.bash
source "$root/hack/download.bash"
case "${SEEK_BUILD:-auto}" in
  auto | never) ;;
  *) log "SEEK_BUILD=${SEEK_BUILD} (want auto or never)"; exit 1 ;;
esac
k8s_release_url=${SEEK_K8S_RELEASE_URL:-https://dl.k8s.io/release}
etcd_release_url=${SEEK_ETCD_RELEASE_URL:-https://github.com/etcd-io/etcd/releases/download}
arch=$(release_arch)
# Downloads land here and move into the cache only once verified.
tmp=$(mktemp -d "$base/.download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Set once the Kubernetes releases cannot be reached, so the other binaries do not try again.
k8s_unavailable=""

# download_kubernetes_binary NAME puts the released, verified NAME into the cache; returns 2 if the
# release cannot be reached.
download_kubernetes_binary() {
  local name=$1 rc=0
  [[ "${SEEK_DOWNLOAD:-auto}" == never || -n "$k8s_unavailable" ]] && return 2
  local url="$k8s_release_url/$K8S_VERSION/bin/linux/$arch/$name"
  verified_download "$url" "$url.sha256" "" "$tmp/$name" || rc=$?
  if ((rc != 0)); then
    k8s_unavailable=1
    return "$rc"
  fi
  chmod 0755 "$tmp/$name" && mv "$tmp/$name" "$bin/$name" || { log "cannot move $name into $bin"; exit 1; }
  log "downloaded $name $K8S_VERSION"
}

# download_etcd puts etcd from the released, verified tarball into the cache; returns 2 if the release
# cannot be reached.
download_etcd() {
  local rc=0
  [[ "${SEEK_DOWNLOAD:-auto}" == never ]] && return 2
  local dir="etcd-$ETCD_VERSION-linux-$arch"
  local tarball="$dir.tar.gz"
  verified_download "$etcd_release_url/$ETCD_VERSION/$tarball" "$etcd_release_url/$ETCD_VERSION/SHA256SUMS" "$tarball" "$tmp/$tarball" || rc=$?
  ((rc == 0)) || return "$rc"
  install_from_tarball "$tmp/$tarball" "$dir/etcd" "$bin/etcd"
  log "downloaded etcd $ETCD_VERSION"
}

# may_build NAME VERSION fails unless building is allowed.
may_build() {
  if [[ "${SEEK_BUILD:-auto}" == never ]]; then
    log "$1 $2 could not be downloaded (SEEK_DOWNLOAD=${SEEK_DOWNLOAD:-auto}), and SEEK_BUILD=never: would build it from the Go module proxy"
    exit 1
  fi
}

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off
tags="selinux,notest,grpcnotrace"

# kubernetes_module writes a wrapper module that requires k8s.io/kubernetes and maps every staging
# module it replaces to the published v0.x.y of the same release.
kubernetes_module() {
  local dir="$base/src/kubernetes"
  [[ -f "$dir/go.sum" && -f "$dir/.complete" ]] && return 0
  mkdir -p "$dir"
  log "preparing wrapper module for k8s.io/kubernetes $K8S_VERSION"
  local gomod
  gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -f "$gomod" ]] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  local goversion
  goversion=$(awk '$1 == "go" { print $2; exit }' "$gomod")
  {
    echo "module seek-operator.local/k8s-build"
    echo
    echo "go $goversion"
    echo
    echo "godebug default=go1.26"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" | awk '{ print $1 }' |
      while read -r m; do echo "replace $m => $m $staging_version"; done
  } >"$dir/go.mod"
  cat >"$dir/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
EOF
  (cd "$dir" && go mod tidy -e >&2 2>"$dir/tidy.log" || true)
  (cd "$dir" && go mod download >&2)
  touch "$dir/.complete"
}

build_kubernetes_binary() {
  local name=$1
  kubernetes_module
  local major=${K8S_VERSION#v}; major=${major%%.*}
  local minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  log "building $name $K8S_VERSION (cold: several minutes)"
  local start=$SECONDS
  (cd "$base/src/kubernetes" && go build -trimpath -tags="$tags" -ldflags="$ldflags" -o "$bin/.$name.tmp" "k8s.io/kubernetes/cmd/$name")
  mv "$bin/.$name.tmp" "$bin/$name"
  log "built $name in $((SECONDS - start))s"
}

build_etcd() {
  local dir="$base/src/etcd"
  mkdir -p "$dir"
  if [[ ! -f "$dir/.complete" ]]; then
    log "preparing wrapper module for etcd $ETCD_VERSION"
    cat >"$dir/go.mod" <<EOF
module seek-operator.local/etcd-build

go 1.26

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
    cat >"$dir/tools.go" <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
    (cd "$dir" && go mod tidy -e 2>"$dir/tidy.log" >&2 || true)
    touch "$dir/.complete"
  fi
  log "building etcd $ETCD_VERSION"
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags="-s -w" -o "$bin/.etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bin/.etcd.tmp" "$bin/etcd"
  log "built etcd in $((SECONDS - start))s"
}

# Download functions run with errexit off (they are tested with ||), so they check each step.
for b in "${wanted[@]}"; do
  [[ -x "$bin/$b" ]] && continue
  rc=0
  case "$b" in
    etcd) download_etcd || rc=$? ;;
    kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | kubectl) download_kubernetes_binary "$b" || rc=$? ;;
    *) log "unknown binary $b"; exit 1 ;;
  esac
  ((rc == 0)) && continue
  if [[ "$b" == etcd ]]; then
    may_build etcd "$ETCD_VERSION"
    build_etcd
  else
    may_build "$b" "$K8S_VERSION"
    build_kubernetes_binary "$b"
  fi
done

echo "$bin"
