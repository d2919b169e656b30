"""The operator's own Kubernetes calls: status, events, the lease and the lever ConfigMap.

kopf watches and patches the custom resources it handles; everything else the
operator writes goes through this small adapter around the official client,
called in threads so the event loop never blocks. Status is always patched on
the ``/status`` subresource, events are ``events.k8s.io/v1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import kopf
import kubernetes
import urllib3
from kubernetes.client import ApiException

from aftershock.errors import DriverUnavailable
from aftershock.model.schema import GROUP, VERSION

__all__ = ["KubeAccess", "KubeConflict", "KubeNotFound", "micro_time"]

_client: Any = kubernetes.client  # partially typed upstream; used dynamically here
_config: Any = kubernetes.config

CONTROLLER: Final = "aftershock.dev/operator"
"""``reportingController`` of every event the operator posts."""


class KubeNotFound(LookupError):
    """The object does not exist (HTTP 404)."""


KOPF_CONNECTIONS: Final = 24
"""Connections kopf may hold to the API server: its watch streams plus its requests."""


class KubeConflict(RuntimeError):
    """Someone else changed or created the object first (HTTP 409)."""


def micro_time(moment: datetime) -> str:
    """A Kubernetes ``MicroTime``: always six fractional digits, always ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _translate(exc: ApiException, what: str) -> Exception:
    if exc.status == 404:
        return KubeNotFound(what)
    if exc.status == 409:
        return KubeConflict(what)
    return DriverUnavailable(f"Kubernetes API: {what}: HTTP {exc.status} {exc.reason}")


class KubeAccess:
    """One API client from a kubeconfig file, or from the pod's service account."""

    def __init__(self, kubeconfig: Path | None = None) -> None:
        self._kubeconfig = kubeconfig
        self._config = self._load()
        self._api: Any = _client.ApiClient(self._config)
        self._custom = _client.CustomObjectsApi(self._api)
        self._events = _client.EventsV1Api(self._api)
        self._leases = _client.CoordinationV1Api(self._api)
        self._core = _client.CoreV1Api(self._api)

    def _load(self) -> Any:
        config = _client.Configuration()
        if self._kubeconfig is not None:
            _config.load_kube_config(config_file=str(self._kubeconfig), client_configuration=config)
        else:
            try:
                _config.load_incluster_config(client_configuration=config)
            except _config.ConfigException:
                _config.load_kube_config(client_configuration=config)
        return config

    def close(self) -> None:
        """Release the connection pool."""
        with contextlib.suppress(Exception):
            self._api.close()

    def connection_info(self) -> kopf.ConnectionInfo:
        """The same credentials for kopf (re-read on every login: tokens rotate)."""
        config = self._load()
        scheme = token = None
        header = config.get_api_key_with_prefix("BearerToken")
        if header:
            scheme, _, token = str(header).partition(" ")
        return kopf.ConnectionInfo(
            server=config.host,
            ca_path=config.ssl_ca_cert,
            insecure=not config.verify_ssl,
            scheme=scheme,
            token=token,
            certificate_path=config.cert_file,
            private_key_path=config.key_file,
        )

    def kopf_session(self) -> kopf.AiohttpSession:
        """kopf's HTTP session with these credentials and at most :data:`KOPF_CONNECTIONS`.

        kopf's own session opens as many connections as it handles objects at once,
        and each TLS connection holds a 256 KiB read buffer: 500 resources handled
        together cost 125 MiB. Requests beyond the limit wait for a free connection.
        Must be called in the event loop; kopf closes the session when it logs in again.
        """
        info = self.connection_info()
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=KOPF_CONNECTIONS, ssl=info.as_ssl_context()),
            headers=info.as_http_headers(),
        )
        return kopf.AiohttpSession(
            server=info.server, default_namespace=info.default_namespace, aiohttp_session=session
        )

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._sync, what, fn, *args, **kwargs)

    # ------------------------------------------------------------ custom resources
    async def patch_status(
        self, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        """Merge-patch ``.status`` through the status subresource."""
        await self._call(
            f"patch {plural}/{name}/status",
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"status": dict(status)},
            _content_type="application/merge-patch+json",
        )

    async def post_event(
        self,
        regarding: Mapping[str, Any],
        *,
        type_: str,
        reason: str,
        action: str,
        note: str,
        instance: str,
    ) -> None:
        """Post an ``events.k8s.io/v1`` Event about an object (best effort)."""
        meta = regarding.get("metadata", {})
        namespace = str(meta.get("namespace") or "default")
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {
                # like client-go's recorder: <object>.<unique hex> (1.20 rejects "x." prefixes)
                "name": f"{meta.get('name', 'aftershock')}.{secrets.token_hex(8)}",
                "namespace": namespace,
            },
            "eventTime": micro_time(datetime.now(UTC)),
            "reportingController": CONTROLLER,
            "reportingInstance": instance[:128],
            "action": action,
            "reason": reason,
            "type": type_,
            "note": note[:1024],
            "regarding": {
                "apiVersion": regarding.get("apiVersion"),
                "kind": regarding.get("kind"),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
        }
        await self._call("create event", self._events.create_namespaced_event, namespace, body)

    # ------------------------------------------------------------ the lease
    async def read_lease(self, namespace: str, name: str) -> dict[str, Any]:
        """The lease as a plain dict (camelCase keys, times as strings)."""
        lease = await self._call(
            f"get lease {name}", self._leases.read_namespaced_lease, name, namespace
        )
        data: dict[str, Any] = self._api.sanitize_for_serialization(lease)
        return data

    async def create_lease(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create the lease; ``KubeConflict`` when another replica was first."""
        lease = await self._call(
            "create lease", self._leases.create_namespaced_lease, namespace, dict(body)
        )
        data: dict[str, Any] = self._api.sanitize_for_serialization(lease)
        return data

    async def replace_lease(
        self, namespace: str, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Replace the lease; its ``resourceVersion`` makes this optimistic (409 = lost)."""
        lease = await self._call(
            f"update lease {name}",
            self._leases.replace_namespaced_lease,
            name,
            namespace,
            dict(body),
        )
        data: dict[str, Any] = self._api.sanitize_for_serialization(lease)
        return data

    async def delete_lease(self, namespace: str, name: str, *, version: str) -> None:
        """Delete the lease if it is still at ``version`` (409 when it changed)."""
        options = _client.V1DeleteOptions(
            preconditions=_client.V1Preconditions(resource_version=version)
        )
        try:
            await self._call(
                f"delete lease {name}",
                self._leases.delete_namespaced_lease,
                name,
                namespace,
                body=options,
            )
        except KubeNotFound:
            return

    async def list_leases(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Leases matching a label selector, as plain dicts."""
        found = await self._call(
            "list leases",
            self._leases.list_namespaced_lease,
            namespace,
            label_selector=selector,
        )
        items: list[dict[str, Any]] = self._api.sanitize_for_serialization(found).get("items", [])
        return items

    # ------------------------------------------------------------ run records (sync)
    def _sync(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise _translate(exc, what) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # unreachable, reset, TLS
            msg = f"Kubernetes API: {what}: {exc}"
            raise DriverUnavailable(msg) from exc

    def create_object(self, plural: str, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create one of aftershock's custom objects (blocking: a fault waits for it)."""
        created: dict[str, Any] = self._sync(
            f"create {plural}",
            self._custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            dict(body),
        )
        return created

    def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        """Read one custom object (blocking)."""
        found: dict[str, Any] = self._sync(
            f"get {plural}/{name}",
            self._custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
        )
        return found

    def replace_status(
        self, plural: str, namespace: str, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Replace ``.status`` (blocking); ``metadata.resourceVersion`` in ``body``
        makes it conditional: ``KubeConflict`` when someone wrote in between."""
        replaced: dict[str, Any] = self._sync(
            f"update {plural}/{name}/status",
            self._custom.replace_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            dict(body),
        )
        return replaced

    def delete_object(self, plural: str, namespace: str, name: str) -> None:
        """Delete one custom object (blocking); gone already is fine."""
        try:
            self._sync(
                f"delete {plural}/{name}",
                self._custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
            )
        except KubeNotFound:
            return

    def update_status(
        self,
        plural: str,
        namespace: str,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any] | None],
        *,
        known: Mapping[str, Any] | None = None,
        retries: int = 10,
    ) -> dict[str, Any] | None:
        """Compare-and-set ``.status`` (blocking): read, ``change`` a copy, replace with the
        ``resourceVersion`` read; on a conflict read again and ``change`` again.

        ``known`` is a copy of the object the caller kept from its last write: the
        first try starts from it instead of a read. ``change`` returns the new status,
        or ``None`` to write nothing. Returns the object as written; ``None`` when
        ``change`` declined or the object does not exist. ``KubeConflict`` after
        ``retries`` conflicts in a row.
        """
        current = known
        for _ in range(retries):
            if current is None:
                try:
                    current = self.get_object(plural, namespace, name)
                except KubeNotFound:
                    return None
            status = change(dict(current.get("status") or {}))
            if status is None:
                return None
            body = {
                "apiVersion": current["apiVersion"],
                "kind": current["kind"],
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "resourceVersion": current["metadata"]["resourceVersion"],
                },
                "spec": current.get("spec") or {},
                "status": status,
            }
            try:
                return self.replace_status(plural, namespace, name, body)
            except KubeConflict:
                current = None
            except KubeNotFound:
                return None
        msg = f"{plural}/{namespace}/{name}: status still conflicting after {retries} tries"
        raise KubeConflict(msg)

    def list_objects(
        self, plural: str, namespace: str, selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Every custom object of ``plural`` in the namespace (blocking)."""
        found = self._sync(
            f"list {plural}",
            self._custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            label_selector=selector or "",
        )
        items: list[dict[str, Any]] = found.get("items", [])
        return items

    # ------------------------------------------------------------ the lever
    async def read_configmap_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's ``data``, or ``None`` when it does not exist."""
        try:
            cm = await self._call(
                f"get configmap {name}", self._core.read_namespaced_config_map, name, namespace
            )
        except KubeNotFound:
            return None
        return dict(cm.data or {})
