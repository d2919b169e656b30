"""Escalating what a healer could not fix: a webhook, a command, or at least a log line.

The payload (policy, target, probe, playbook, reason, detail, time, incident) is
the webhook's JSON body and the command's ``$AFTERSHOCK_ESCALATION``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

import structlog

from aftershock.drivers.standalone import post_json
from aftershock.healer import Escalation
from aftershock.model.policy import HealingPolicy
from aftershock.model.secrets import reveal

__all__ = ["escalation_sender"]

_log = structlog.get_logger("aftershock.heal")


def escalation_sender(policy: HealingPolicy) -> Callable[[Escalation], Any]:
    """What a healer calls to escalate: the policy's webhook and command, or a log line."""
    escalate = policy.spec.escalate

    async def send(escalation: Escalation) -> None:
        payload = {
            "policy": escalation.policy,
            "target": escalation.target,
            "probe": escalation.probe,
            "playbook": escalation.playbook,
            "reason": escalation.reason,
            "detail": escalation.detail,
            "at": escalation.at.isoformat(),
            "incident": escalation.incident,
        }
        if escalate is None:
            _log.warning("escalation", **payload)
            return
        if escalate.webhook is not None:
            hook = escalate.webhook
            headers = {k: reveal(v) for k, v in hook.headers.items()}
            async with asyncio.timeout(hook.timeout.total_seconds()):
                await post_json(
                    reveal(hook.url), payload, headers=headers, limit=hook.timeout.total_seconds()
                )
        if escalate.command:
            env = {**os.environ, "AFTERSHOCK_ESCALATION": json.dumps(payload)}
            process = await asyncio.create_subprocess_exec(*escalate.command, env=env)
            async with asyncio.timeout(30):
                await process.wait()

    return send
