"""Healing actions that need no target: ``http.call`` (a webhook) and ``command`` (argv).

Each is bound to its catalog entry in ``ACTIONS``; ``HANDLERS`` maps the
names to the functions, for the healer. (``wait.healthy``, the third action
without a target, needs the healer's own probes: the healer carries it out.)

Both translate failures into the remediation vocabulary: a network error or a
5xx is temporary (retry later), a 4xx or a missing executable is permanent.
Error texts never carry a secret of the step: a command's output is redacted
before it is quoted, a failed webhook call is named by the kind of error only,
and a failed escalation hides the URL and the header values it was sent with.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from aftershock.drivers.bindings import Bindings, action_handlers
from aftershock.errors import PermanentRemediationError, TemporaryRemediationError
from aftershock.model.actions import COMMAND, HTTP_CALL, ActionStepBase, ActionType
from aftershock.model.secrets import Redactor, reveal, secret_values
from aftershock.tls import client_context

__all__ = ["ACTIONS", "HANDLERS", "StandaloneAction", "http_call", "post_json", "run_command"]

_OUTPUT_LIMIT = 64 * 1024
_TAIL = 200  # characters of a failed command's last output line quoted in the error


async def http_call(step: ActionStepBase) -> str:
    """Call the step's webhook; return a one-line description of what happened."""
    params = HTTP_CALL.parse(step.params)
    url = reveal(params.url)
    headers = {k: reveal(v) for k, v in params.headers.items()}
    body = reveal(params.body) if params.body is not None else None
    timeout = step.timeout.total_seconds()
    try:
        async with httpx.AsyncClient(
            timeout=timeout, trust_env=False, verify=client_context()
        ) as client:
            response = await client.request(params.method, url, headers=headers, content=body)
    except httpx.HTTPError as exc:
        # httpx may quote the URL or a header; the message keeps only the error's kind.
        msg = f"http.call {params.method} failed: {type(exc).__name__}"
        raise TemporaryRemediationError(msg) from exc
    accepted = params.status or list(range(200, 300))
    if response.status_code not in accepted:
        msg = f"http.call {params.method} answered {response.status_code}"
        if 400 <= response.status_code < 500:
            raise PermanentRemediationError(msg)
        raise TemporaryRemediationError(msg)
    return f"http.call {params.method} -> {response.status_code}"


async def post_json(
    url: str,
    payload: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    limit: float = 5.0,
) -> int:
    """POST a JSON document (escalations); return the status code.

    A request that fails raises ``ConnectionError`` with the URL and header values hidden.
    """
    try:
        async with httpx.AsyncClient(
            timeout=limit, trust_env=False, verify=client_context()
        ) as client:
            response = await client.post(url, json=dict(payload), headers=dict(headers or {}))
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        # The URL and the headers may hold secrets, and httpx quotes them
        # ("Illegal header value b'...'").
        hide = Redactor([url, *(headers or {}).values()])
        msg = f"POST failed: {type(exc).__name__}: {hide(str(exc))}"
        raise ConnectionError(msg) from exc
    return response.status_code


async def run_command(step: ActionStepBase) -> str:
    """Run the step's command without a shell; fail on an unexpected exit code or timeout."""
    params = COMMAND.parse(step.params)
    env = {**os.environ, **{k: reveal(v) for k, v in params.env.items()}}
    try:
        process = await asyncio.create_subprocess_exec(
            *params.command,
            cwd=params.cwd,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        msg = f"command {params.command[0]!r} cannot run: {exc.strerror or exc}"
        raise PermanentRemediationError(msg) from exc
    try:
        async with asyncio.timeout(step.timeout.total_seconds()):
            output, _ = await process.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        msg = f"command {params.command[0]!r} timed out after {step.timeout.total_seconds():g}s"
        raise TemporaryRemediationError(msg) from None
    if process.returncode != params.exit_code:
        # Redact the whole output before taking its last line and cutting it, so
        # that neither a secret spanning lines nor the end of a long one is quoted.
        redact = Redactor(secret_values(params.env.values(), os.environ))
        cut = len(output) > _OUTPUT_LIMIT
        text = redact.clipped(output[-_OUTPUT_LIMIT:].decode(errors="replace"), start=cut)
        tail = text.strip().splitlines()[-1:] or [""]
        msg = f"command {params.command[0]!r} exited {process.returncode}: {tail[0][:_TAIL]}"
        raise TemporaryRemediationError(msg)
    return f"command {params.command[0]!r} exited {process.returncode}"


Handler = Callable[[ActionStepBase], Awaitable[str]]
"""Carries out one step; returns a one-line description of what happened."""


@dataclass(frozen=True, slots=True)
class StandaloneAction:
    """A healing action with no target."""

    action: ActionType[Any]
    run: Handler


ACTIONS: Final[Bindings[ActionType[Any], StandaloneAction]] = action_handlers(
    None,
    StandaloneAction(HTTP_CALL, http_call),
    StandaloneAction(COMMAND, run_command),
)
"""The standalone healing actions of the catalog that a driver carries out."""

HANDLERS: Final[Mapping[str, Handler]] = {
    entry.name: handler.run for entry in ACTIONS if (handler := ACTIONS.get(entry)) is not None
}
"""Action name → handler, as the healer takes its standalone actions."""
