#!/usr/bin/env bash
# Start the local Kubernetes the tests use: the control plane (kube-apiserver and
# kube-controller-manager v1.20.2 built from Debian's source package, etcd, all on
# 127.0.0.1), a kubectl from the same source tree when none is installed, and on request
# a node (kube-scheduler and a kubelet with dockershim on the private dockerd) so that
# pods really run.
#
#   scripts/kube.sh [--node]   start the control plane (build once: about 4 minutes, then
#                              cached); with --node or AFTERSHOCK_KUBE_NODE=1 the node too.
#                              stdout: exactly one line, KUBECONFIG=<path>
#   scripts/kube.sh node       start only the node, for the control plane of $KUBECONFIG
#                              (build once: several minutes, then cached).
#                              stdout: exactly one line, NODE=<node name>
#   scripts/kube.sh stop-node  stop the node only (its Node object stays, tainted)
#   scripts/kube.sh stop       stop the node (when it runs) and the control plane
#
# Progress goes to stderr. The node drives $DOCKER_HOST, else the private dockerd of
# scripts/dockerd.sh (started when absent). Pods on it must use hostNetwork (no CNI).
#
# The node is tainted aftershock.dev/node=e2e:NoSchedule before its kubelet registers, so
# only pods that tolerate the taint run on it (tests/e2e/operator/overlay). Every other
# test's pods stay Pending, as they do without a node, and are marked Ready by the fake
# kubelet of tests/support/kube.py; a real kubelet would report them failing to pull
# images no registry here serves.
set -euo pipefail
cd "$(dirname "$0")/.."
script=${AFTERSHOCK_KUBE_SCRIPT:-../shared/kube/build-and-start.sh}
[ -f "$script" ] || script=scripts/kube-control-plane.sh
node_script=${AFTERSHOCK_NODE_SCRIPT:-../shared/kube/start-node.sh}
home=$(realpath -m "${AFTERSHOCK_KUBE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/aftershock-kube}")
node_name=${NODE_NAME:-127.0.0.1}
taint=aftershock.dev/node=e2e:NoSchedule

kubectl_bin() { command -v kubectl || echo "$home/bin/kubectl"; }

# The node's pause image (every pod's sandbox), with a root directory any user may enter.
# start-node.sh imports its own from a `mktemp -d` directory, whose mode 0700 becomes the
# image's "/", so the sandbox of a pod that runs as non-root (deploy/'s operator: uid 10001)
# fails with "stat /pause: permission denied". This one, under the name start-node.sh uses,
# is what it finds and keeps, and what a kubelet already running uses for new pods.
pause_image=${PAUSE_IMAGE:-aftershock.local/pause:1}
pause_comment="aftershock node pause image, root 0755"
ensure_pause_image() {
  [ "$(docker image inspect -f '{{.Comment}}' "$pause_image" 2>/dev/null)" = "$pause_comment" ] && return 0
  # without a static busybox start-node.sh says what is missing
  [ -x /bin/busybox ] && ! { command -v ldd >/dev/null && ldd /bin/busybox >/dev/null 2>&1; } || return 0
  local root
  root=$(mktemp -d)
  chmod 755 "$root"
  mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  ln -s busybox "$root/bin/sleep"
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  # PID 1 gets only the signals it handles: exit at once on TERM/INT, like the real pause
  printf '#!/bin/sh\ntrap "exit 0" TERM INT\nsleep 2147483647 &\nwait\n' >"$root/pause"
  chmod 755 "$root/pause"
  tar --numeric-owner --owner=0 --group=0 -C "$root" -c . |
    docker import -c 'ENV PATH=/bin' -c 'ENTRYPOINT ["/pause"]' -m "$pause_comment" - "$pause_image" >/dev/null
  rm -rf "$root"
  echo "[kube] imported $pause_image" >&2
}

# Start the node for $KUBECONFIG; print NODE=<name> on stdout.
start_node() {
  [ -f "$node_script" ] || { echo "[kube] no node script at $node_script" >&2; return 1; }
  if [ -z "${DOCKER_HOST:-}" ]; then
    local out
    out=$(bash scripts/dockerd.sh start) || { echo "[kube] the private dockerd did not start" >&2; return 1; }
    export "${out?}"
  fi
  local kc server
  kc=$(kubectl_bin)
  # A kubelet joins the cluster of $KUBECONFIG: only ever a local test control plane
  server=$("$kc" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  [[ $server =~ ^https?://(127\.[0-9.]+|localhost)(:[0-9]+)?/?$ ]] ||
    { echo "[kube] $KUBECONFIG names $server, not a control plane on this machine's loopback" >&2; return 1; }
  # The taint goes on before the kubelet registers: a kubelet that finds its Node object
  # already there keeps its taints. That object needs a capacity map (v1.20's kubelet writes
  # hugepage entries into it and panics on a nil map); "pods: 0" keeps the scheduler away
  # until the kubelet reports the real capacity.
  if ! "$kc" get node "$node_name" >/dev/null 2>&1; then
    "$kc" create -f - >&2 <<EOF
apiVersion: v1
kind: Node
metadata:
  name: "$node_name"
  labels: {aftershock.dev/node: e2e}
spec:
  taints: [{key: aftershock.dev/node, value: e2e, effect: NoSchedule}]
status:
  capacity: {pods: "0"}
  allocatable: {pods: "0"}
EOF
  fi
  "$kc" taint node "$node_name" "$taint" --overwrite >&2
  "$kc" label node "$node_name" aftershock.dev/node=e2e --overwrite >&2
  ensure_pause_image
  NODE_NAME=$node_name PAUSE_IMAGE=$pause_image bash "$node_script" start
}

case "${1:-}" in
stop-node)
  if [ -f "$node_script" ]; then exec bash "$node_script" stop; fi
  exit 0
  ;;
stop)
  if [ -f "$node_script" ]; then bash "$node_script" stop; fi
  exec bash "$script" stop
  ;;
node)
  [ -n "${KUBECONFIG:-}" ] || { echo "[kube] set KUBECONFIG (scripts/kube.sh prints it)" >&2; exit 1; }
  start_node
  exit 0
  ;;
--node) AFTERSHOCK_KUBE_NODE=1 ;;
"") ;;
*)
  echo "usage: $0 [--node] | node | stop-node | stop" >&2
  exit 2
  ;;
esac

line=$(bash "$script")
if ! command -v kubectl >/dev/null && [ ! -x "$home/bin/kubectl" ]; then
  tree=$home/src/kubernetes-1.20.2
  echo "[kube] building kubectl from $tree" >&2
  (
    cd "$tree"
    export PATH="/usr/lib/go-1.19/bin:$PATH" GOTOOLCHAIN=local GOPROXY=off GOENV=off CGO_ENABLED=0
    unset GOROOT GOPATH GOBIN GOOS GOARCH GOFLAGS GO111MODULE
    GOFLAGS=-tags=providerless hack/make-rules/build.sh cmd/kubectl
  ) >>"$home/logs/build.log" 2>&1 || { echo "[kube] kubectl build failed: see $home/logs/build.log" >&2; exit 1; }
  cp "$home/_output/bin/kubectl" "$home/bin/kubectl" 2>/dev/null || cp "$tree/_output/bin/kubectl" "$home/bin/kubectl"
fi
if [ "${AFTERSHOCK_KUBE_NODE:-0}" = 1 ]; then
  (export "${line?}" && start_node >&2)
fi
echo "$line"
