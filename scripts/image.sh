#!/usr/bin/env bash
# Build the aftershock image from deploy/Dockerfile without any container registry:
#
#  1. a base image from Debian packages: mmdebstrap (minbase, python3, python3-venv,
#     ca-certificates) from the mirror of this machine's apt sources, `docker import`ed as
#     aftershock-base:bookworm (skipped when that image exists; the rootfs tarball is kept
#     in the cache too, so a new dockerd only re-imports it);
#  2. the wheels of aftershock and of every dependency, built on the host with pip into
#     the build context (cached, keyed by a hash of pyproject.toml, README.md and src/);
#  3. `docker build` with the classic builder (DOCKER_BUILDKIT=0) and
#     --build-arg BASE=aftershock-base:bookworm; the Dockerfile installs the wheels with
#     `pip install --no-index --find-links` (skipped when the tagged image was built from
#     the same wheels, Dockerfile and base).
#
#   scripts/image.sh [TAG]     TAG defaults to $AFTERSHOCK_IMAGE, else aftershock/aftershock:test
#
# stdout: exactly one line, IMAGE=<tag>; progress goes to stderr.
# Docker: $DOCKER_HOST, else the private dockerd of scripts/dockerd.sh (started when absent).
# Cache: $AFTERSHOCK_IMAGE_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/aftershock-image.
# Python for the wheels: $PYTHON, else .venv/bin/python, else python3. The base's python3 is
# Debian bookworm's 3.11, so every wheel must be pure or for CPython 3.11 (cp311, manylinux):
# a host Python 3.11 builds them with `pip wheel`; another one builds aftershock's (pure) and
# downloads the dependencies' wheels for CPython 3.11 (`pip download --python-version 3.11
# --only-binary=:all:`; a dependency that has no such wheel stops the build).
# Root is needed for mmdebstrap (apt-get installs it when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-${AFTERSHOCK_IMAGE:-aftershock/aftershock:test}}
BASE=aftershock-base:bookworm
SUITE=bookworm
CACHE=$(realpath -m "${AFTERSHOCK_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aftershock-image}")
KEEP_CONTEXTS=3

log() { echo "[image] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -n 9 || { log "another image.sh holds $CACHE/.lock; waiting"; flock 9; }

if [ -z "${DOCKER_HOST:-}" ]; then
  # 9>&-: the daemon it may start must not hold the lock
  out=$(bash scripts/dockerd.sh start 9>&-) || die "no Docker daemon (scripts/dockerd.sh start failed)"
  export "${out?}"
fi
dk() { docker "$@"; }
dk info >/dev/null 2>&1 || die "no Docker daemon answers at ${DOCKER_HOST}"

# ---- 1. the base image ----------------------------------------------------------------------
# "deb URI SUITE COMPONENTS..." for every enabled deb source of the host, one-line and deb822.
host_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && NF >= 4 { $1 = "deb"; print }'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush(   i, j, nu, ns, u, s) {
        if (types ~ /(^| )deb( |$)/ && enabled != "no") {
          nu = split(uris, u, " "); ns = split(suites, s, " ")
          for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print "deb", u[i], s[j], comps
        }
        types = uris = suites = comps = ""; enabled = "yes"
      }
      BEGIN { enabled = "yes" }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
        if (key == "types") types = $0
        else if (key == "uris") uris = $0
        else if (key == "suites") suites = $0
        else if (key == "components") comps = $0
        else if (key == "enabled") enabled = tolower($0)
      }
      END { flush() }' "$f"
  done
}

# The mirror lines for SUITE, SUITE-updates and SUITE-security (main only), as the host has them.
mirror_lines() {
  host_sources | awk -v suite="$SUITE" '
    $3 == suite || $3 == suite "-updates" || $3 == suite "-security" {
      for (i = 4; i <= NF; i++) if ($i == "main") { k = $2 " " $3; if (!(k in seen)) { seen[k] = 1; print "deb " $2 " " $3 " main" } }
    }'
}

base_image() {
  if dk image inspect "$BASE" >/dev/null 2>&1; then
    log "base image $BASE exists"
    return
  fi
  local tarball=$CACHE/$SUITE-rootfs.tar
  if [ ! -s "$tarball" ]; then
    [ "$(id -u)" = 0 ] || die "building $BASE needs root (mmdebstrap)"
    if ! command -v mmdebstrap >/dev/null; then
      log "installing mmdebstrap"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >&2; }
    fi
    local -a mirrors
    mapfile -t mirrors < <(mirror_lines)
    [ ${#mirrors[@]} -gt 0 ] || die "no '$SUITE' deb source in /etc/apt/sources.list*"
    local keyring=()
    [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] &&
      keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
    log "mmdebstrap $SUITE from: ${mirrors[*]}"
    # mmdebstrap picks the output format by the file name's extension
    local t0=$SECONDS partial=$CACHE/.$SUITE-rootfs.partial.tar
    # No documentation, manual pages or translations: the image only runs python3.
    mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      "${keyring[@]}" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      "$SUITE" "$partial" "${mirrors[@]}" >&2 || { rm -f "$partial"; die "mmdebstrap failed"; }
    mv "$partial" "$tarball"
    log "rootfs built in $((SECONDS - t0)) s ($(du -h "$tarball" | cut -f1))"
  fi
  dk import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["python3"]' \
    -m "Debian $SUITE minbase with python3 (scripts/image.sh)" \
    "$tarball" "$BASE" >/dev/null
  log "imported $BASE"
}

# ---- 2. the wheels ----------------------------------------------------------------------------
python_bin() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"
  elif [ -x .venv/bin/python ]; then echo .venv/bin/python
  else command -v python3
  fi
}

# A hash of what goes into the wheels (and the Python that builds them).
source_key() {
  {
    echo "$1"
    sha256sum pyproject.toml README.md
    find src -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
}

# Every wheel must install on the base's CPython 3.11 on glibc: pure, or cp311 manylinux.
check_tags() {
  local w bad=()
  for w in "$1"/*.whl; do
    case "$(basename "$w")" in
    *-py3-none-any.whl | *-py2.py3-none-any.whl) ;;
    *-cp311-*manylinux*.whl | *-abi3-*manylinux*.whl) ;;
    *) bad+=("$(basename "$w")") ;;
    esac
  done
  [ ${#bad[@]} -eq 0 ] || die "wheels not installable on the base's CPython 3.11: ${bad[*]}"
}

context() { # prints the build context directory
  local py ver key ctx
  py=$(python_bin)
  ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  key=$(source_key "$ver")
  ctx=$CACHE/context-$key
  if [ -f "$ctx/.complete" ]; then
    log "wheels cached in $ctx/wheels"
    echo "$ctx"
    return
  fi
  rm -rf "$ctx"
  mkdir -p "$ctx/wheels"
  cp pyproject.toml README.md "$ctx/"
  (tar -c --exclude=__pycache__ --exclude='*.pyc' src) | tar -x -C "$ctx"
  local t0=$SECONDS
  if [ "$ver" = 3.11 ]; then
    log "pip wheel aftershock and its dependencies with $py (Python $ver)"
    "$py" -m pip wheel --prefer-binary --wheel-dir "$ctx/wheels" "$ctx" >"$CACHE/pip-wheel.log" 2>&1 ||
      { tail -n 20 "$CACHE/pip-wheel.log" >&2; die "pip wheel failed (log: $CACHE/pip-wheel.log)"; }
  else
    # The dependencies' wheels as the base's CPython 3.11 needs them, whatever Python runs pip
    local arch
    arch=$(uname -m)
    log "pip wheel aftershock with $py (Python $ver), its dependencies for CPython 3.11 ($arch)"
    {
      "$py" -m pip wheel --no-deps --wheel-dir "$ctx/wheels" "$ctx" &&
        "$py" -m pip download --only-binary=:all: --implementation cp --python-version 3.11 \
          --abi cp311 --abi abi3 --abi none \
          --platform "manylinux_2_36_$arch" --platform "manylinux2014_$arch" \
          --dest "$ctx/wheels" "$ctx"/wheels/aftershock-*.whl
    } >"$CACHE/pip-wheel.log" 2>&1 ||
      { tail -n 20 "$CACHE/pip-wheel.log" >&2; die "pip wheel/download failed (log: $CACHE/pip-wheel.log)"; }
  fi
  check_tags "$ctx/wheels"
  # what building the project left in its tree is not part of the context
  rm -rf "$ctx/build" "$ctx"/src/*.egg-info
  touch "$ctx/.complete"
  log "$(find "$ctx/wheels" -name '*.whl' | wc -l) wheels built in $((SECONDS - t0)) s"
  # keep the newest few contexts
  find "$CACHE" -maxdepth 1 -name 'context-*' -type d -printf '%T@ %p\n' | sort -rn |
    tail -n +$((KEEP_CONTEXTS + 1)) | cut -d' ' -f2- | xargs -r rm -rf
  echo "$ctx"
}

# ---- 3. the image -----------------------------------------------------------------------------
base_image
ctx=$(context)
base_id=$(dk image inspect -f '{{.Id}}' "$BASE")
build_key=$({ echo "$ctx" "$base_id"; sha256sum deploy/Dockerfile; } | sha256sum | cut -c1-16)
if [ "$(dk image inspect -f '{{index .Config.Labels "dev.aftershock.build"}}' "$TAG" 2>/dev/null)" = "$build_key" ]; then
  log "$TAG is up to date (build $build_key)"
else
  log "docker build $TAG (classic builder, BASE=$BASE)"
  t0=$SECONDS
  DOCKER_BUILDKIT=0 dk build --quiet --file deploy/Dockerfile --build-arg "BASE=$BASE" \
    --label "dev.aftershock.build=$build_key" --tag "$TAG" "$ctx" >&2 || die "docker build failed"
  log "built $TAG in $((SECONDS - t0)) s"
  # vfs keeps a full copy of every layer: drop the untagged images earlier builds left (the
  # images this tag named before, build stages on this base) unless a container still uses them
  { dk images --quiet --no-trunc --filter dangling=true --filter label=dev.aftershock.build
    dk images --quiet --no-trunc --filter dangling=true --filter "since=$BASE"; } |
    sort -u | xargs -r docker rmi >/dev/null 2>&1 || true
fi
echo "IMAGE=$TAG"
