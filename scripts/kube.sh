#!/usr/bin/env bash
# Start the local Kubernetes control plane the tests use (kube-apiserver and
# kube-controller-manager v1.20.2 built from Debian's source package, etcd, all
# on 127.0.0.1) and make sure a kubectl from the same source tree exists.
# Prints exactly one line on stdout: KUBECONFIG=<path>. Progress goes to stderr.
#   scripts/kube.sh          start (build once: about 4 minutes, then cached)
#   scripts/kube.sh stop     stop it
set -euo pipefail
cd "$(dirname "$0")/.."
script=${AFTERSHOCK_KUBE_SCRIPT:-../shared/kube/build-and-start.sh}
[ -f "$script" ] || script=scripts/kube-control-plane.sh
if [ "${1:-}" = stop ]; then exec bash "$script" stop; fi

line=$(bash "$script")
home=$(realpath -m "${AFTERSHOCK_KUBE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/aftershock-kube}")
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
echo "$line"
