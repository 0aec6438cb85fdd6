#!/usr/bin/env bash
# Debian packages the real-node cluster harness (e2e/cluster) runs: containerd + runc (the
# container runtime), the CNI plugins (bridge, host-local, portmap, loopback), iptables and
# conntrack (kube-proxy and the kubelet write rules inside the node's network namespace), and
# buildah (writes the images from directories, no daemon, no base image, no pull).
# Installs what is missing with apt-get.
set -euo pipefail

need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
command -v buildah >/dev/null || need+=(buildah)
[ "${#need[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "The real-node cluster needs root (it creates a network namespace, cgroups and mounts) and these Debian packages: ${need[*]}" >&2
  echo "Install them with:  sudo apt-get install ${need[*]}   and run the cluster as root." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "The real-node cluster needs ${need[*]} and apt-get is not available here: install them with your package manager." >&2
  exit 1
fi
echo "Installing ${need[*]} (Debian packages) for the real-node cluster..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
