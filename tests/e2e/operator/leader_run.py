"""One experiment run the way the operator's leader runs it, in a process of its own.

``python -m tests.e2e.operator.leader_run KUBECONFIG NAMESPACE IDENTITY EXPERIMENT``:
the operator's stores over the Kubernetes API (``operator_stores``), its
admission, ``run_experiment``. The failover tests SIGKILL this process at
seeded moments; everything it promised is in the API for a successor.
Prints ``holder <holder id>`` once the stores exist, then ``done <status>``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aftershock.loading import load_file
from aftershock.model import Experiment
from aftershock.operator.kube import KubeAccess
from aftershock.operator.stores import operator_stores
from aftershock.runtime import Admission, run_experiment
from aftershock.settings import load_settings


async def main(kubeconfig: str, namespace: str, identity: str, path: str) -> None:
    settings = load_settings()
    loaded = [d.document for d in load_file(Path(path))]
    (experiment,) = [d for d in loaded if isinstance(d, Experiment)]
    kube = KubeAccess(Path(kubeconfig))
    stores = operator_stores(kube, namespace, identity)
    print("holder", stores.runs.holder, flush=True)
    admission = Admission(settings, stores=stores.ports())
    outcome = await run_experiment(experiment, settings=settings, admission=admission)
    print("done", outcome.result.status.value, flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
