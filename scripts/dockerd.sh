#!/usr/bin/env bash
# A private Docker daemon for aftershock's tests.
#
#   scripts/dockerd.sh start   start it (idempotent), build the test image, print DOCKER_HOST=...
#   scripts/dockerd.sh stop    stop it and wait until it is gone
#   scripts/dockerd.sh env     print DOCKER_HOST=... (whether or not it runs)
#   scripts/dockerd.sh image   build the test image on $DOCKER_HOST if it is missing
#
# It never touches the machine's own daemon: own data root, exec root, pidfile and
# socket under $AFTERSHOCK_DOCKER_HOME (default /tmp/aftershock-dockerd). vfs storage,
# no iptables and no bridge, so it starts inside a VM or container without kernel
# modules; test containers use host networking and listen on 127.0.0.1 only.
# No registry is reachable, so the test image is imported from busybox-static.
#
# stdout carries exactly one line (DOCKER_HOST=unix://...); progress goes to stderr.
set -euo pipefail

D="${AFTERSHOCK_DOCKER_HOME:-/tmp/aftershock-dockerd}"
SOCK="$D/docker.sock"
URL="unix://$SOCK"
PIDFILE="$D/dockerd.pid"
LOG="$D/dockerd.log"
IMAGE="aftershock-test/busybox:latest"
START_TIMEOUT="${AFTERSHOCK_DOCKER_START_TIMEOUT:-60}"
# Applets the tests (and a curious human) may use inside the image.
APPLETS="sh ash sleep httpd nc echo cat ls ps kill true false env mkdir rm touch date id
hostname wget printf test [ grep sed head tail wc top uname"

say() { printf '%s\n' "dockerd.sh: $*" >&2; }

cli() { docker -H "$URL" "$@"; }

answers() { cli info >/dev/null 2>&1; }

pid_alive() {
    [[ -s "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

ensure_installed() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v docker >/dev/null 2>&1 || missing+=(docker.io)
    busybox_is_static || missing+=(busybox-static)
    ((${#missing[@]} == 0)) && return 0
    if [[ "$(id -u)" != 0 ]]; then
        say "missing ${missing[*]} and not root: cannot install (apt-get install -y docker.io busybox-static)"
        exit 1
    fi
    say "installing docker.io busybox-static"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine has no package lists yet; update only when the first try fails.
    apt-get install -y docker.io busybox-static >&2 ||
        { apt-get update >&2 && apt-get install -y docker.io busybox-static >&2; }
}

# The image has no libc, so busybox must be the static build (ldd fails on it).
busybox_is_static() {
    [[ -x /bin/busybox ]] && ! { command -v ldd >/dev/null 2>&1 && ldd /bin/busybox >/dev/null 2>&1; }
}

busybox_binary() {
    if ! busybox_is_static; then
        say "/bin/busybox is missing or dynamically linked; install busybox-static"
        exit 1
    fi
    printf '%s\n' /bin/busybox
}

build_image() {
    if cli image inspect "$IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    say "building $IMAGE from busybox-static"
    local root
    root="$(mktemp -d)"
    mkdir -p "$root"/{bin,etc,tmp,www,proc,sys,dev}
    chmod 1777 "$root/tmp"
    cp "$(busybox_binary)" "$root/bin/busybox"
    local applet
    for applet in $APPLETS; do
        ln -s busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    printf 'aftershock-test ok\n' >"$root/www/index.html"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -c . |
        cli import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' -m "aftershock test image" - "$IMAGE" >&2 ||
        { rm -rf "$root"; say "docker import failed"; exit 1; }
    rm -rf "$root"
}

start() {
    mkdir -p "$D"
    # Two test sessions may start at once; only one may launch the daemon.
    exec 9>"$D/start.lock"
    flock 9
    if answers; then
        say "already running at $URL"
    else
        ensure_installed
        if pid_alive; then
            say "dockerd (pid $(cat "$PIDFILE")) is alive but not answering yet"
        else
            rm -f "$PIDFILE" "$SOCK"
            say "starting dockerd at $URL (log: $LOG)"
            # setsid + nohup: the daemon outlives the shell or pytest that started it;
            # 9>&-: it must not inherit (and so hold forever) the start lock.
            # Without --containerd, dockerd starts and supervises its own containerd.
            setsid nohup dockerd \
                --storage-driver=vfs --iptables=false --bridge=none \
                --data-root "$D/data" --exec-root "$D/exec" \
                --pidfile "$PIDFILE" -H "$URL" \
                </dev/null >>"$LOG" 2>&1 9>&- &
        fi
        local deadline=$((SECONDS + START_TIMEOUT))
        until answers; do
            if ((SECONDS >= deadline)); then
                say "dockerd did not answer within ${START_TIMEOUT}s; last lines of $LOG:"
                tail -n 30 "$LOG" >&2 || true
                exit 1
            fi
            sleep 0.25
        done
        say "dockerd is up"
    fi
    build_image
    printf 'DOCKER_HOST=%s\n' "$URL"
}

stop() {
    if ! pid_alive; then
        say "not running"
        return 0
    fi
    local pid
    pid="$(cat "$PIDFILE")"
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    local i
    for ((i = 0; i < 120; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "dockerd ignored SIGTERM for 30s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # dockerd leaves its default network namespace mounted; unmount it so $D can be removed.
    awk -v d="$D/exec/" 'index($2, d) == 1 { print $2 }' /proc/mounts |
        while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
    rm -f "$PIDFILE"
    say "stopped"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
env) printf 'DOCKER_HOST=%s\n' "$URL" ;;
image)
    URL="${DOCKER_HOST:-$URL}"
    build_image
    printf 'DOCKER_HOST=%s\n' "$URL"
    ;;
*)
    say "usage: $0 start|stop|env|image"
    exit 2
    ;;
esac
