"""Revert one journaled handle in a fresh process, as ``aftershock recover`` does after a crash.

Usage: ``python fresh_revert.py CONFIG HANDLE`` where CONFIG is a JSON file
naming the driver (``{"kind": "docker"}``, ``{"kind": "kubernetes",
"namespace": ...}``, ...) and HANDLE the ``Handle.to_json()`` of the fault, as
the journal holds it. The driver is built with its defaults (the daemon URL
and the Toxiproxy API come from the handle; ``$KUBECONFIG`` names the
cluster), started, asked to revert, and closed. Exit 0 when the revert
returned; otherwise the error's type and message on stderr and exit 1.
"""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from aftershock.ports import FaultDriver, Handle
from aftershock.settings import Allowlist


def build(config: dict[str, Any]) -> FaultDriver:
    """The driver ``config`` names, as ``aftershock recover`` would build it."""
    kind = config["kind"]
    if kind == "toxiproxy":
        from aftershock.drivers.toxiproxy import ToxiproxyDriver

        return ToxiproxyDriver(Allowlist())
    if kind == "docker":
        from aftershock.drivers.docker import DockerDriver

        return DockerDriver(Allowlist())
    if kind == "process":
        from aftershock.drivers.process import ProcessDriver

        return ProcessDriver()
    if kind == "kubernetes":
        from aftershock.drivers.kubernetes import KubernetesDriver

        return KubernetesDriver(Allowlist(namespaces=(config["namespace"],)), settle_timeout=60)
    msg = f"no such driver kind: {kind}"
    raise SystemExit(msg)


async def revert(config: dict[str, Any], handle: Handle) -> None:
    """Build, start, revert, close."""
    driver = build(config)
    async with AsyncExitStack() as stack:
        await driver.start(stack)
        await driver.revert(handle)


def main(argv: list[str]) -> int:
    """The command line: two JSON files in, an exit code out."""
    config = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    handle = Handle.from_json(json.loads(Path(argv[2]).read_text(encoding="utf-8")))
    try:
        asyncio.run(revert(config, handle))
    except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
