#!/usr/bin/env bash
# Removes everything one real-node cluster (e2e/cluster/cluster.ts) made, from what it
# recorded in its work dir: its processes, the containers of its containerd (shims and
# their cgroups), mounts under the work dir (overlay rootfs, pod netns, secret and token
# tmpfs), the node's network namespace (the bridge, the pods' veths and every iptables rule
# the kubelet and kube-proxy wrote live inside it, so they go with it), the host end of the
# uplink, CNI result files, the work dir and the slot lock. Idempotent: stop() runs it, and
# so does the watchdog when the harness's process dies without stopping.
#   e2e/cluster/cleanup.sh <work-dir>
set -uo pipefail

dir="${1:?usage: cleanup.sh <work-dir>}"
[ -f "$dir/cluster.env" ] || { rm -rf "$dir"; exit 0; }
# shellcheck disable=SC1091
. "$dir/cluster.env"   # NETNS, HOST_VETH, CGROUP_ROOT, CNI_NETWORK, SOCKET, LOCK_DIR

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# 1. The components: SIGTERM to all at once, up to 5 s, then SIGKILL to what is left
#    (the order does not matter any more: everything goes).
pids=()
for f in "$dir"/pids/*; do
  [ -f "$f" ] && pids+=("$(cat "$f")")
done
for pid in "${pids[@]}"; do alive "$pid" && kill -TERM "$pid" 2>/dev/null; done
for i in $(seq 1 50); do
  left=0
  for pid in "${pids[@]}"; do alive "$pid" && left=1; done
  [ "$left" = 0 ] && break
  sleep 0.1
done
for pid in "${pids[@]}"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null; done

# 2. The containerd shims (they daemonize, so they are nobody's child) and the containers:
#    every process in the cluster's cgroup subtree, in every hierarchy.
for p in /proc/[0-9]*; do
  cmd="$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" || continue
  case "$cmd" in *containerd-shim*"-address $SOCKET "*) kill -KILL "${p#/proc/}" 2>/dev/null ;; esac
done
if [ -n "${CGROUP_ROOT:-}" ]; then
  for round in 1 2 3 4 5; do
    left=0
    for h in /sys/fs/cgroup/*/; do
      [ -d "$h$CGROUP_ROOT" ] || continue
      while read -r procs; do
        while read -r pid; do [ -n "$pid" ] && { kill -KILL "$pid" 2>/dev/null; left=1; }; done <"$procs"
      done < <(find "$h$CGROUP_ROOT" -name cgroup.procs 2>/dev/null)
    done
    [ "$left" = 0 ] && break
    sleep 0.2
  done
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h$CGROUP_ROOT" ] || continue
    # Deepest first; a frozen or busy cgroup is retried once after the kills settle.
    find "$h$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null || { sleep 0.5; find "$h$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null; }
  done
fi

# 3. Mounts under the work dir, deepest first (rootfs overlays, shm, netns bind mounts,
#    the kubelet's tmpfs volumes); lazily if something still holds one.
awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
done

# 4. The node's network namespace (with its bridge, veths and iptables rules) and the host
#    end of its uplink (a veth goes with its peer, this is for a half-made set-up).
[ -n "${NETNS:-}" ] && ip netns del "$NETNS" 2>/dev/null
[ -n "${HOST_VETH:-}" ] && ip link del "$HOST_VETH" 2>/dev/null
[ -n "${CNI_NETWORK:-}" ] && rm -f /var/lib/cni/results/"$CNI_NETWORK"-* 2>/dev/null

# 5. The work dir, then the slot (last: a new cluster may take it from here on).
rm -rf "$dir" 2>/dev/null || { sleep 1; rm -rf "$dir"; }
[ -n "${LOCK_DIR:-}" ] && rm -rf "$LOCK_DIR"
exit 0
