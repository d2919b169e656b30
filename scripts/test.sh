#!/usr/bin/env bash
# Install everything and run the whole suite: lint, format, types, layers, tests.
# Works on a fresh clone: creates .venv, installs aftershock with its dev extras,
# and lets the test fixtures start the real backends they need (a private dockerd).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

# System packages the real-backend tests use (Docker daemon, busybox for test images,
# Debian's chromium for the headless-browser check of the HTML report).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v chromium >/dev/null || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
  fi
fi

# Start the private Docker daemon before pytest (the fixtures would, but an
# install inside a test could outlast the per-test timeout).
if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null && [ -z "${DOCKER_HOST:-}" ]; then
  if out=$(bash scripts/dockerd.sh start); then
    export "$out"
  else
    echo "warning: could not start the private dockerd" >&2
  fi
fi

# Start the local Kubernetes control plane (built once, about 4 minutes, then cached).
if [ "$(id -u)" = 0 ] && [ -z "${KUBECONFIG:-}" ]; then
  if out=$(bash scripts/kube.sh); then
    export "$out"
  else
    echo "warning: could not start the local Kubernetes control plane" >&2
  fi
fi
# And its node (kube-scheduler and a kubelet on the private dockerd; built once, a few
# minutes, then cached), where the operator e2e tests run the image scripts/image.sh builds.
if [ "$(id -u)" = 0 ] && [ -n "${KUBECONFIG:-}" ]; then
  bash scripts/kube.sh node >/dev/null || echo "warning: could not start the Kubernetes node" >&2
fi

echo "== ruff" >&2
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy --strict" >&2
.venv/bin/mypy
echo "== import-linter" >&2
.venv/bin/lint-imports
echo "== pytest" >&2
.venv/bin/pytest "$@"
