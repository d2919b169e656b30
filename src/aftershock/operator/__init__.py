"""The Kubernetes operator: kopf handlers over ``Experiment`` and ``HealingPolicy`` resources.

Rule: this is the only package that imports kopf. It is an entry point, like
``cli/``: it wires ``runtime`` to the cluster and holds no chaos logic. Its own
Kubernetes calls (status, events, the lease, the lever) go through
``operator/kube.py``, always in threads.

What it does
    ``Experiment``: on create, update and resume the resource is validated with the
    same models and checks as ``aftershock validate``; an invalid one gets
    ``.status.conditions[type=Valid,status=False]`` naming every field
    (``spec.method[0].with.latency: required field is missing``), phase
    ``Invalid`` and a Warning Event. A valid one with ``spec.schedule`` is handed
    to ``scheduling.ChaosScheduler`` (key ``namespace/name``) and gets
    ``.status.nextRun``. Each scheduled run executes in-process
    (``runtime.run_experiment``) and writes phase, lastRun, verdict, reason,
    budgetSpent (per SLO), recoverySeconds and nextRun to the status subresource,
    plus a Normal or Warning Event. Deleting the resource removes its job (on the
    watch's DELETED event; no finalizer, so an Experiment can be deleted while no
    operator runs, and a fire whose Experiment is gone finds no status to record
    itself in, so it runs nothing).
    ``HealingPolicy``: a kopf daemon runs its ``Healer`` until the resource is
    deleted, and restarts it when the spec changes.

The kill switch in the cluster
    A ConfigMap ``aftershock-lever`` in the operator's namespace::

        kubectl -n aftershock-system create configmap aftershock-lever --from-literal=engaged=true

    ``data.engaged: "true"`` engages it; any other value, or no ConfigMap,
    releases it. The leader mirrors it into ``$AFTERSHOCK_HOME/lever``, the file
    ``runtime`` polls: new runs are refused (phase ``Aborted``) and running runs
    abort and roll back.

One replica acts: a Lease
    Every replica competes for the Lease ``aftershock-operator`` in its namespace
    (holderIdentity = pod name, leaseDurationSeconds 15, renewed every 5 s,
    optimistic concurrency on resourceVersion; see ``leader.py``). kopf, the
    scheduler and the healers run *only while this replica holds the lease*: a
    standby does not even watch the resources, so no handler can act twice, and
    kopf's ``resume`` handlers re-read every resource when a new leader starts.
    A leader that cannot renew steps down (kopf stops, runs are cancelled and
    roll back) before the lease can expire for the others.

Recovery across pods
    On becoming leader, ``runtime.recover`` reverts every journaled fault without
    a revert record whose run is not alive. The journal lives under
    ``$AFTERSHOCK_HOME``, which must be a volume shared by the replicas (a
    ReadWriteMany PVC, see ``deploy/pvc.yaml``) for this to see a dead
    predecessor's faults. What can be recovered: faults on things reachable from
    the new pod — Toxiproxy toxics on a real Toxiproxy server, Kubernetes objects
    (scale, cordon) and Docker containers through their APIs. What cannot: faults
    on processes the dead pod started (they died with it) and toxics of the
    *embedded* proxy (it lived in the dead pod's memory and is gone with it).
"""

from aftershock.operator.main import LEASE_NAME, run_operator

__all__ = ["LEASE_NAME", "run_operator"]
