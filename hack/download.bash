# download.bash: fetching a pinned release file and checking it against its published SHA-256, for
# hack/k8s-binaries.sh and hack/helm.sh (sourced; not run). Callers define log().
#
# A download either succeeds with a verified file, or reports the source unavailable (no network, no
# DNS, a proxy refusing, an HTTP error: return 2, and the caller builds from the Go module proxy
# instead), or finds a checksum mismatch (exit 1: a corrupted or tampered file is never used and never
# cached, and nothing is built in its place silently).
#
# Environment:
#   SEEK_DOWNLOAD                  auto (default): download, build if unavailable; never: always build.
#   SEEK_DOWNLOAD_CONNECT_TIMEOUT  seconds to wait for a connection (default 5). Without internet the
#                                  name lookup fails at once (measured: 0.1 s), so an offline machine
#                                  falls back to building immediately; the timeout bounds a network
#                                  that drops packets.
# curl honours https_proxy/HTTPS_PROXY and no_proxy.

case "${SEEK_DOWNLOAD:-auto}" in
  auto | never) ;;
  *) log "SEEK_DOWNLOAD=${SEEK_DOWNLOAD} (want auto or never)"; exit 1 ;;
esac

# release_arch is the architecture name of release files for this machine (amd64, arm64, ...).
release_arch() {
  case "$(uname -m)" in
    x86_64 | amd64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    armv7l | armv7*) echo arm ;;
    ppc64le) echo ppc64le ;;
    s390x) echo s390x ;;
    *) uname -m ;;
  esac
}

# fetch URL OUT [CURL-ARGS...] writes URL to OUT; non-zero if it cannot.
fetch() {
  local url=$1 out=$2
  shift 2
  command -v curl >/dev/null || { log "no curl: cannot download $url"; return 1; }
  curl --fail --silent --show-error --location --proto '=https,http' \
    --connect-timeout "${SEEK_DOWNLOAD_CONNECT_TIMEOUT:-5}" "$@" --output "$out" "$url"
}

# sha256_from SUMS-FILE [NAME] prints the SHA-256 for NAME in a checksum file: "<hex>" alone (the
# Kubernetes .sha256 files) or "<hex>  <name>" lines (sha256sum's format: etcd's SHA256SUMS, Helm's
# .sha256sum). Prints nothing if there is none.
sha256_from() {
  local file=$1 name=${2:-}
  awk -v name="$name" '
    NF == 1 && name == "" && $1 ~ /^[0-9a-fA-F]+$/ && length($1) == 64 { print tolower($1); exit }
    NF >= 2 && $1 ~ /^[0-9a-fA-F]+$/ && length($1) == 64 && (name == "" || $2 == name || $2 == "*" name) { print tolower($1); exit }
  ' "$file"
}

# verified_download URL SUMS-URL SUMS-NAME OUT downloads URL into OUT (a path in a temporary
# directory of the caller) if its SHA-256 matches the one SUMS-URL publishes for SUMS-NAME (empty:
# the file holds one checksum). Returns 0 when OUT is verified, 2 when the source is unavailable;
# exits 1 on a checksum mismatch, removing OUT.
verified_download() {
  local url=$1 sums_url=$2 sums_name=$3 out=$4
  local sums="$out.sums" want got
  # The small checksum file first, without retries: it is the reachability probe, and an offline
  # machine should not wait.
  if ! fetch "$sums_url" "$sums" --max-time 30 2>"$out.err"; then
    log "cannot download $sums_url ($(tr '\n' ' ' <"$out.err"| sed 's/ *$//'))"
    return 2
  fi
  want=$(sha256_from "$sums" "$sums_name")
  if [[ -z "$want" ]]; then
    log "no SHA-256 for ${sums_name:-the file} in $sums_url"
    return 2
  fi
  log "downloading $url"
  # Give up on a stalled transfer (under 10 KiB/s for 30 s) rather than on a slow but moving one.
  if ! fetch "$url" "$out" --retry 2 --retry-delay 2 --speed-limit 10240 --speed-time 30 2>"$out.err"; then
    log "cannot download $url ($(tr '\n' ' ' <"$out.err" | sed 's/ *$//'))"
    rm -f "$out"
    return 2
  fi
  got=$(sha256sum "$out" | awk '{ print $1 }')
  if [[ "$got" != "$want" ]]; then
    rm -f "$out"
    log "CHECKSUM MISMATCH for $url: its SHA-256 is $got, but $sums_url publishes $want."
    log "The file was discarded and nothing was cached. This is a corrupted download or a tampered"
    log "mirror or proxy; find out which before retrying. SEEK_DOWNLOAD=never builds from the Go module proxy instead."
    exit 1
  fi
  log "verified SHA-256 $got"
  return 0
}

# install_from_tarball TARBALL MEMBER DEST extracts MEMBER of a verified TARBALL (in the caller's
# temporary directory) and installs it as the executable DEST; exits 1 when it cannot.
install_from_tarball() {
  local tarball=$1 member=$2 dest=$3
  local dir
  dir=$(dirname "$tarball")
  if ! tar -xzf "$tarball" -C "$dir" "$member"; then
    log "$(basename "$tarball") (checksum verified) holds no $member"
    exit 1
  fi
  chmod 0755 "$dir/$member" && mv "$dir/$member" "$dest" || { log "cannot move $(basename "$member") into $(dirname "$dest")"; exit 1; }
}
