"""Benchmark of the operator: 500 scheduled ``Experiment`` resources on the real API server.

Run on demand (the test control plane must be up, see ../shared/kube/build-and-start.sh):
``.venv/bin/python bench/bench_operator.py [--count 500] [--kubeconfig PATH]``.

1. installs ``deploy/`` (``kubectl apply -k``; kubectl from PATH or
   ``~/.cache/aftershock-kube/bin``) and removes Experiments left by a previous run;
2. starts ``aftershock operator`` as a subprocess (admin kubeconfig, its own
   ``$AFTERSHOCK_HOME``), waits until it holds the lease;
3. creates N Experiments with a weekly schedule (``0 3 * * MON``: nothing fires
   during the bench) as fast as the API server takes them;
4. prints the time until every one has ``status.nextRun`` (the operator has
   validated it, scheduled it and patched the status subresource), and the
   operator's RSS before, at the end, and its peak (``VmHWM``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes

ROOT = Path(__file__).resolve().parents[1]
KUBE_HOME = Path(os.environ.get("AFTERSHOCK_KUBE_HOME") or Path.home() / ".cache/aftershock-kube")
NAMESPACE = "aftershock-system"
GROUP, VERSION, PLURAL = "aftershock.dev", "v1alpha1", "experiments"


def proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def experiment(i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": f"bench-{i:04d}", "labels": {"bench": "operator"}},
        "spec": {
            "schedule": {"cron": "0 3 * * MON", "timezone": "UTC", "jitter": "10m"},
            "targets": {
                "front": {
                    "toxiproxy": {
                        "api": "embedded",
                        "proxy": f"front{i}",
                        "listen": "127.0.0.1:0",
                        "upstream": "127.0.0.1:9",
                    }
                }
            },
            "probes": {"web": {"http": {"url": "http://127.0.0.1:9/"}, "every": "1s"}},
            "method": [
                {
                    "name": "slow",
                    "fault": "toxiproxy.latency",
                    "target": "front",
                    "with": {"latency": "300ms"},
                    "for": "10s",
                }
            ],
        },
    }


def clean(custom: Any) -> None:
    items = custom.list_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, label_selector="bench=operator"
    )["items"]

    def drop(name: str) -> None:
        try:
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, name, {"metadata": {"finalizers": None}}
            )
            custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        except kubernetes.client.ApiException:
            pass

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(drop, [item["metadata"]["name"] for item in items]))


def wait_for_lease(leases: Any, operator: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and operator.poll() is None:
        with contextlib.suppress(kubernetes.client.ApiException):
            lease = leases.read_namespaced_lease("aftershock-operator", NAMESPACE)
            if lease.spec.holder_identity == "bench":
                return True
        time.sleep(0.2)
    return False


def count_scheduled(custom: Any) -> int:
    response = custom.list_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        label_selector="bench=operator",
        _preload_content=False,
    )
    items = json.loads(response.data)["items"]
    return sum(1 for item in items if (item.get("status") or {}).get("nextRun"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument(
        "--kubeconfig", default=os.environ.get("KUBECONFIG") or str(KUBE_HOME / "run/kubeconfig")
    )
    args = parser.parse_args()
    kubectl = shutil.which("kubectl") or str(KUBE_HOME / "bin/kubectl")
    subprocess.run(
        [kubectl, "--kubeconfig", args.kubeconfig, "apply", "-k", str(ROOT / "deploy")],
        check=True,
        capture_output=True,
    )
    api = kubernetes.config.new_client_from_config(config_file=args.kubeconfig)
    custom = kubernetes.client.CustomObjectsApi(api)
    leases = kubernetes.client.CoordinationV1Api(api)
    clean(custom)
    with contextlib.suppress(kubernetes.client.ApiException):
        leases.delete_namespaced_lease("aftershock-operator", NAMESPACE)

    home = Path(tempfile.mkdtemp(prefix="aftershock-bench-operator-"))
    env = {**os.environ, "AFTERSHOCK_HOME": str(home), "KUBECONFIG": args.kubeconfig}
    operator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aftershock",
            "operator",
            "--namespace",
            NAMESPACE,
            "--listen",
            "127.0.0.1:0",
            "--identity",
            "bench",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_for_lease(leases, operator):
            print("the operator did not take the lease", file=sys.stderr)
            return 1
        time.sleep(2)  # let kopf start its watch
        rss_idle = proc_kib(operator.pid, "VmRSS")

        t0 = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda i: custom.create_namespaced_custom_object(
                        GROUP, VERSION, NAMESPACE, PLURAL, experiment(i)
                    ),
                    range(args.count),
                )
            )
        created = time.monotonic() - t0
        while True:
            done = count_scheduled(custom)
            if done >= args.count:
                break
            if time.monotonic() - t0 > 600 or operator.poll() is not None:
                print(f"only {done}/{args.count} scheduled", file=sys.stderr)
                return 1
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
        rss_end = proc_kib(operator.pid, "VmRSS")
        rss_peak = proc_kib(operator.pid, "VmHWM")
        print(f"experiments:             {args.count}")
        print(f"created in:              {created:.1f} s")
        print(
            f"all with status.nextRun: {elapsed:.1f} s after the first create "
            f"({args.count / elapsed:.0f}/s)"
        )
        print(f"operator RSS idle:       {rss_idle / 1024:.1f} MiB")
        print(
            f"operator RSS with {args.count}:   {rss_end / 1024:.1f} MiB "
            f"(+{(rss_end - rss_idle) / args.count:.1f} KiB per experiment)"
        )
        print(f"operator RSS peak:       {rss_peak / 1024:.1f} MiB")
    finally:
        clean(custom)
        time.sleep(2)
        operator.terminate()
        try:
            operator.wait(timeout=60)
        except subprocess.TimeoutExpired:
            operator.kill()
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
