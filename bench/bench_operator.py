"""Benchmark of the operator: 500 scheduled ``Experiment`` resources on the real API server.

Run on demand (the test control plane must be up, see ../shared/kube/build-and-start.sh):
``.venv/bin/python bench/bench_operator.py [--count 500] [--kubeconfig PATH] [--pod]``.

With ``--pod`` the operator runs as the pods of ``tests/e2e/operator/overlay`` on the
test node (``scripts/kube.sh node``; image from ``scripts/image.sh``; the private
dockerd in ``$DOCKER_HOST``), and the RSS is the leader container's main process,
read through the dockerd that runs it. Targets: RSS <= 150 MB, all scheduled <= 15 s.

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
OVERLAY = ROOT / "tests" / "e2e" / "operator" / "overlay"
POD_DEPLOYMENTS = ("aftershock-operator", "aftershock-operator-b")
GROUP, VERSION, PLURAL = "aftershock.dev", "v1alpha1", "experiments"


def proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


class ProcessOperator:
    """``aftershock operator`` as a subprocess of the bench."""

    def __init__(self, kubeconfig: str) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="aftershock-bench-operator-"))
        env = {**os.environ, "AFTERSHOCK_HOME": str(self.home), "KUBECONFIG": kubeconfig}
        self.process = subprocess.Popen(
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

    def leader_pid(self, leases: Any) -> int | None:
        with contextlib.suppress(kubernetes.client.ApiException):
            lease = leases.read_namespaced_lease("aftershock-operator", NAMESPACE)
            if lease.spec.holder_identity == "bench":
                return self.process.pid
        return None

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.home, ignore_errors=True)


class PodOperator:
    """The operator as the overlay's pods; the leader container's process is measured."""

    def __init__(self, kubectl: str, kubeconfig: str) -> None:
        import docker  # only the pod mode reads the node's dockerd

        self.kubectl, self.kubeconfig = kubectl, kubeconfig
        self.docker = docker.from_env()
        self._kubectl("apply", "-k", str(OVERLAY))

    def _kubectl(self, *args: str) -> None:
        subprocess.run(
            [self.kubectl, "--kubeconfig", self.kubeconfig, *args], check=True, capture_output=True
        )

    def leader_pid(self, leases: Any) -> int | None:
        try:
            holder = leases.read_namespaced_lease("aftershock-operator", NAMESPACE)
        except kubernetes.client.ApiException:
            return None
        pod = holder.spec.holder_identity
        found = self.docker.containers.list(
            filters={
                "label": [f"io.kubernetes.pod.name={pod}", "io.kubernetes.container.name=operator"]
            }
        )
        if not found:
            return None
        pid = int(found[0].attrs["State"]["Pid"])
        return pid or None

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        self._kubectl(
            "-n",
            NAMESPACE,
            "delete",
            "deployment",
            *POD_DEPLOYMENTS,
            "--ignore-not-found",
            "--wait=true",
        )
        self._kubectl("apply", "-k", str(ROOT / "deploy"))


def wait_for_leader(
    leases: Any, operator: ProcessOperator | PodOperator, limit: float
) -> int | None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and operator.alive():
        pid = operator.leader_pid(leases)
        if pid is not None:
            return pid
        time.sleep(0.5)
    return None


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


def main() -> int:  # noqa: PLR0915 - the bench's whole run, in order
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--pod", action="store_true", help="run the operator as pods")
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

    operator: ProcessOperator | PodOperator = (
        PodOperator(kubectl, args.kubeconfig) if args.pod else ProcessOperator(args.kubeconfig)
    )
    try:
        pid = wait_for_leader(leases, operator, 300 if args.pod else 60)
        if pid is None:
            print("the operator did not take the lease", file=sys.stderr)
            return 1
        time.sleep(2)  # let kopf start its watch
        rss_idle = proc_kib(pid, "VmRSS")
        cpu_idle = cpu_seconds(pid)
        load = os.getloadavg()[0]

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
            if time.monotonic() - t0 > 600 or not operator.alive():
                print(f"only {done}/{args.count} scheduled", file=sys.stderr)
                return 1
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
        rss_end = proc_kib(pid, "VmRSS")
        rss_peak = proc_kib(pid, "VmHWM")
        cpu = cpu_seconds(pid) - cpu_idle
        print(f"operator as:             {'a pod on the test node' if args.pod else 'a process'}")
        print(f"experiments:             {args.count}")
        print(f"created in:              {created:.1f} s")
        print(
            f"all with status.nextRun: {elapsed:.1f} s after the first create "
            f"({args.count / elapsed:.0f}/s)"
        )
        print(
            f"operator CPU:            {cpu:.1f} s ({cpu / args.count * 1000:.0f} ms per "
            f"experiment; machine load {load:.1f} at the start)"
        )
        print(f"operator RSS idle:       {rss_idle / 1024:.1f} MiB")
        print(
            f"operator RSS with {args.count}:   {rss_end / 1024:.1f} MiB "
            f"(+{(rss_end - rss_idle) / args.count:.1f} KiB per experiment)"
        )
        print(f"operator RSS peak:       {rss_peak / 1024:.1f} MiB")
        print("targets (as a pod):      RSS <= 150 MB, all scheduled <= 15 s")
    finally:
        clean(custom)
        time.sleep(2)
        operator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
