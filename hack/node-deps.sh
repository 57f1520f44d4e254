#!/usr/bin/env bash
# Installs the Debian packages a real local node needs, when any is missing:
# containerd, runc, the CNI plugins, iptables and conntrack (for kube-proxy),
# mmdebstrap and buildah (to build the images without a registry) and gcc (for
# the pause image). As root it runs apt-get; otherwise it prints the one line
# to run and fails.
#
#   hack/node-deps.sh          install what is missing (quiet when nothing is)
#   hack/node-deps.sh check    exit 1 and name what is missing, install nothing
set -euo pipefail

die() { echo "hack/node-deps.sh: $*" >&2; exit 1; }

# package -> a file it installs (what the node code runs)
declare -A provides=(
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [iptables]=/usr/sbin/iptables
  [conntrack]=/usr/sbin/conntrack
  [mmdebstrap]=/usr/bin/mmdebstrap
  [buildah]=/usr/bin/buildah
  [gcc]=/usr/bin/gcc
  [libc6-dev]=/usr/lib/x86_64-linux-gnu/libc.a
)

missing=()
for pkg in "${!provides[@]}"; do
  [[ -e "${provides[$pkg]}" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
IFS=$'\n' missing=($(sort <<<"${missing[*]}")); unset IFS

line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [[ "${1:-}" == check ]]; then die "missing Debian packages for the node: ${missing[*]} (as root: $line)"; fi
[[ "$(id -u)" -eq 0 ]] || die "the node needs Debian packages that are missing; as root run: $line"

echo "hack/node-deps.sh: installing ${missing[*]} ..." >&2
log="$(mktemp)"
export DEBIAN_FRONTEND=noninteractive
# buildah recommends fuse-overlayfs, slirp4netns and uidmap (rootless use); as root none is needed.
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  last="$(grep -E '^E:' "$log" | tail -n 1)"
  rm -f "$log"
  die "apt-get failed: ${last:-see apt-get output} (to retry by hand: $line)"
fi
rm -f "$log"
