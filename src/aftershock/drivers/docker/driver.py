"""Docker driver: kill, crash, stop, pause and restart containers; start, restart, unpause them.

What each fault and action does is bound to its catalog entry in ``faults`` and
``actions``; which containers a target selects is decided in ``select``. This
module is the driver around them: clients per daemon URL, selection, and the
undo record (``undo``) built at prepare and read back at inject and revert.

The Docker SDK is synchronous, so every call runs in a worker thread
(``asyncio.to_thread``) and the event loop never blocks on the daemon. Errors
are translated at the edge (``daemon``), with the SDK's exception chained as
the cause:

* the daemon cannot be reached → ``DriverUnavailable`` (retried a few times);
* a container is gone → ``TargetNotFound`` (on revert: already undone);
* the daemon refuses → ``FaultInjectionFailed`` (apply) or ``RevertFailed`` (undo).

A handle's undo record holds the daemon URL and the containers, so
``aftershock recover`` can revert it from the journal alone in a new process.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import stamina
import structlog

from aftershock.drivers.bindings import params_checked
from aftershock.drivers.docker import select as sel
from aftershock.drivers.docker.actions import ACTIONS
from aftershock.drivers.docker.containers import exists, is_running
from aftershock.drivers.docker.daemon import Phase, default_client, one_line, resolve, translated
from aftershock.drivers.docker.faults import FAULT_STATES, FAULTS
from aftershock.drivers.docker.undo import Chosen, DockerUndo, undo_of, with_undo
from aftershock.errors import DriverUnavailable, FaultInjectionFailed, RevertFailed
from aftershock.model.targets import DockerTarget, TargetKind
from aftershock.ports import ActionRequest, FaultRequest, Handle
from aftershock.settings import Allowlist

__all__ = ["ClientFactory", "DockerDriver"]

T = TypeVar("T")
ClientFactory = Callable[[str], docker.DockerClient]
"""Builds a client for a daemon URL (``unix://...``, ``tcp://...``)."""


class DockerDriver:
    """Faults and healing actions on containers of one or more Docker daemons.

    ``client_factory`` builds a client for a daemon URL (tests and the runtime may
    share one); ``self_id`` is aftershock's own container id when known, otherwise
    it is detected from ``/proc/self`` or the hostname, and that container is never
    selected.
    """

    kind: TargetKind = TargetKind.DOCKER
    faults = FAULTS
    actions = ACTIONS

    def __init__(
        self,
        allowlist: Allowlist,
        *,
        client_factory: ClientFactory | None = None,
        self_id: str | None = None,
    ) -> None:
        self._allowlist = allowlist
        self._factory = client_factory or default_client
        self._self_id = self_id
        self._detected: set[str] | None = None
        self._clients: dict[str, docker.DockerClient] = {}
        self._lock = threading.Lock()

    async def start(self, stack: AsyncExitStack) -> None:
        """Register closing the clients; they are made per daemon URL on first use."""
        stack.push_async_callback(self.aclose)

    async def aclose(self) -> None:
        """Close every client this driver opened."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await asyncio.to_thread(client.close)

    async def prepare(self, request: FaultRequest) -> Handle:
        """Select the containers and record how to undo; changes nothing."""
        name = request.target_name
        body, host = resolve(request.target, name)
        handler = FAULTS.get(request.fault)
        if handler is None:
            msg = f"unknown docker fault {request.fault.name!r}"
            raise FaultInjectionFailed(msg, target=name)
        with params_checked(name):
            settings = handler.settings_for(request.params)
        selection = await self._select(
            host, body, name, request.seed, FAULT_STATES, run_id=request.run_id
        )
        undo = DockerUndo(
            host=host,
            containers=tuple(Chosen(id=c.id, name=c.name, state=c.state) for c in selection.chosen),
            refused=selection.refused,
            own=selection.own,
            signal=settings.signal,
            grace=settings.grace,
        )
        return Handle(
            run_id=request.run_id,
            step=request.step,
            kind=TargetKind.DOCKER,
            fault=request.fault.name,
            target=name,
            resources=tuple(c.id for c in selection.chosen),
            undo=undo.to_json(),
        )

    async def inject(self, handle: Handle) -> Handle:
        """Apply the fault to every container of the handle.

        Containers no longer running are skipped, so a retried inject does not fail
        on the ones an earlier attempt already hit.
        """
        undo = undo_of(handle, FaultInjectionFailed)
        handler = FAULTS.named(handle.fault)
        if handler is None:
            msg = f"unknown docker fault {handle.fault!r}"
            raise FaultInjectionFailed(msg, target=handle.target)

        def apply(api: docker.APIClient) -> list[str]:
            hit: list[str] = []
            for cid in handle.resources:
                state = api.inspect_container(cid)["State"]
                if not is_running(state) or state.get("Paused"):
                    continue
                handler.apply(api, cid, undo, handle.target)
                hit.append(cid)
            return hit

        hit = await self._call(undo.host, handle.target, "apply", apply)
        self._log(handle.target, handle.run_id).info(
            "docker.fault_applied", fault=handle.fault, containers=list(undo.names), host=undo.host
        )
        return with_undo(handle, replace(undo, applied=tuple(hit)))

    async def revert(self, handle: Handle) -> None:
        """Undo the fault; a container already restored, or removed, counts as reverted.

        Every container is tried even when one fails, so one stuck container does not
        leave the others broken; the first failure is raised at the end.
        """
        undo = undo_of(handle, RevertFailed)
        handler = FAULTS.named(handle.fault)
        if handler is None:
            msg = f"unknown docker fault {handle.fault!r}"
            raise RevertFailed(msg, target=handle.target)

        def restore(api: docker.APIClient) -> None:
            failures: list[str] = []
            for cid in handle.resources:
                try:
                    handler.restore(api, cid)
                except docker.errors.NotFound as exc:
                    # Gone is reverted; but a 404 about something else (a missing
                    # network or image) while the container exists is a failure.
                    if exists(api, cid):
                        failures.append(f"{cid[:12]}: {one_line(exc)}")
                except (docker.errors.APIError, TimeoutError) as exc:
                    failures.append(f"{cid[:12]}: {one_line(exc)}")
            if failures:
                msg = f"could not restore on {undo.host}: {'; '.join(failures)}"
                raise RevertFailed(msg, target=handle.target)

        await self._call(undo.host, handle.target, "revert", restore)
        self._log(handle.target, handle.run_id).info(
            "docker.fault_reverted", fault=handle.fault, containers=list(undo.names)
        )

    async def revert_from_journal(self, handle: Handle) -> None:
        """Revert a handle read back from the journal: the same as ``revert``."""
        await self.revert(handle)

    async def act(self, request: ActionRequest) -> list[str]:
        """Start, restart or unpause the selected containers; return their names.

        Only containers the action applies to are acted on (``docker.start`` skips
        running ones), so an empty list means "nothing needed doing". With
        ``dry_run`` the names are returned and nothing is touched.
        """
        name = request.target_name
        body, host = resolve(request.target, name)
        handler = ACTIONS.named(request.action)
        if handler is None:
            raise FaultInjectionFailed(f"unknown docker action {request.action!r}", target=name)
        with params_checked(name):
            perform = handler.bound(request.params)
        # Unlike a fault, an action may find nothing to do (already running).
        selection = await self._select(
            host, body, name, None, handler.states, require_eligible=False
        )
        chosen = selection.chosen
        names = [c.name for c in chosen]
        if request.dry_run:
            return names

        def run(api: docker.APIClient) -> None:
            for c in chosen:
                perform(api, c.id)

        await self._call(host, name, "apply", run)
        self._log(name, "").info("docker.action", action=request.action, containers=names)
        return names

    async def _select(
        self,
        host: str,
        body: DockerTarget,
        name: str,
        seed: int | None,
        states: frozenset[str],
        *,
        run_id: str = "",
        require_eligible: bool = True,
    ) -> sel.Selection:
        def listing(api: docker.APIClient) -> list[sel.Candidate]:
            return [sel.candidate_from_listing(row) for row in api.containers(all=True)]

        candidates = await self._call(host, name, "apply", listing)
        selection = sel.select(
            body,
            candidates,
            self._allowlist,
            target_name=name,
            seed=seed,
            own_ids=self._own_ids(candidates),
            states=states,
            require_eligible=require_eligible,
        )
        log = self._log(name, run_id)
        if selection.refused:  # never silent: the user asked for these and gets fewer
            log.warning("docker.refused", containers=list(selection.refused), host=host)
        if selection.own:
            log.info("docker.own_container_skipped", containers=list(selection.own))
        return selection

    def _own_ids(self, candidates: list[sel.Candidate]) -> set[str]:
        if self._self_id:
            return {self._self_id}
        if self._detected is None:
            found: set[str] = set()
            for path, parse in (
                ("/proc/self/cgroup", sel.ids_from_cgroup),
                ("/proc/self/mountinfo", sel.ids_from_mountinfo),
            ):
                try:
                    found |= parse(Path(path).read_text(encoding="utf-8"))
                except OSError:
                    continue  # not Linux, or /proc hidden: fall back to the hostname
            self._detected = found
        hostname = os.environ.get("HOSTNAME") or socket.gethostname()
        return self._detected | sel.own_ids_from_hostname(hostname, candidates)

    @stamina.retry(on=DriverUnavailable, attempts=3, timeout=10)
    async def _call(
        self, host: str, target: str, phase: Phase, fn: Callable[[docker.APIClient], T]
    ) -> T:
        # Retried only for an unreachable daemon; every operation is idempotent.
        return await asyncio.to_thread(self._run, host, target, phase, fn)

    def _run(self, host: str, target: str, phase: Phase, fn: Callable[[docker.APIClient], T]) -> T:
        with translated(phase, target, host):
            return fn(self._client(host).api)

    def _client(self, host: str) -> docker.DockerClient:
        with self._lock:
            client = self._clients.get(host)
            if client is None:
                client = self._clients[host] = self._factory(host)
            return client

    @staticmethod
    def _log(target: str, run_id: str) -> Any:
        # Bound per call, not at import, so test captures and late configuration apply.
        return structlog.get_logger().bind(target=target, run_id=run_id)
