"""Secrets given to processes never come back in an error text.

A supervised process, a playbook's command and an escalation webhook all get
secrets (environment, headers) that they may print or that a library may quote
when it refuses them. The error that reaches the journal, the audit log and
the report must hide them, however they were printed.
"""

from __future__ import annotations

import socket
import sys
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from pydantic import TypeAdapter

from aftershock.drivers.process import ProcessDriver
from aftershock.drivers.standalone import post_json, run_command
from aftershock.errors import FaultInjectionFailed, TemporaryRemediationError
from aftershock.model.actions import ActionStep, ActionStepBase
from aftershock.model.secrets import Secret
from aftershock.model.targets import ProcessTarget

pytestmark = pytest.mark.timeout(60)

PLAIN = "proc-s3cr3t-Hx7q"
BLANKS = "blnk-4Kq2  mid-8Zr1\nend-3Vp6"  # two spaces and a newline inside
LONG = "long-" + "".join(f"{i:03d}Zq" for i in range(59))  # 300 characters
SECRETS = pytest.mark.parametrize("secret", [PLAIN, BLANKS, LONG], ids=["plain", "blanks", "long"])


def fragments(secret: str, size: int = 8) -> set[str]:
    """Every ``size``-character piece of each blank-separated word of ``secret``."""
    found: set[str] = set()
    for word in secret.split():
        if len(word) <= size:
            found.add(word)
        found.update(word[i : i + size] for i in range(len(word) - size + 1))
    return found


def leaks(text: str, secret: str) -> list[str]:
    """Pieces of ``secret`` (as written or percent-encoded) that appear in ``text``."""
    found = []
    for form in (secret, quote(secret, safe=""), quote_plus(secret)):
        found += [piece for piece in fragments(form) if piece in text]
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def printer(code: int, *, before: str = "", after: str = "") -> list[str]:
    """argv of a program that prints its TOKEN (plain and percent-encoded) and exits."""
    script = (
        "import os, sys, urllib.parse\n"
        "token = os.environ['TOKEN']\n"
        f"sys.stdout.write({before!r})\n"
        "print('starting with token', token)\n"
        "print('encoded:', urllib.parse.quote(token))\n"
        f"sys.stdout.write({after!r})\n"
        f"sys.exit({code})\n"
    )
    return [sys.executable, "-c", script]


async def start_failure(tmp_path: Path, argv: list[str], secret: str) -> str:
    target = ProcessTarget(
        command=argv, env={"TOKEN": Secret(secret, ("TOKEN",))}, ready=f"127.0.0.1:{free_port()}"
    )
    driver = ProcessDriver({"leaky": target}, log_dir=tmp_path)
    async with AsyncExitStack() as stack:
        with pytest.raises(FaultInjectionFailed) as caught:
            await driver.start(stack)
    log = (tmp_path / "leaky.log").read_text()
    assert secret in log  # the process did print it: the error had it to quote
    return str(caught.value)


@SECRETS
async def test_a_process_printing_its_secret_before_it_dies_is_quoted_redacted(
    tmp_path: Path, secret: str
) -> None:
    message = await start_failure(tmp_path, printer(3), secret)
    assert "leaky: exited with code 3" in message
    assert "starting with token ***" in message
    assert "encoded: ***" in message
    assert leaks(message, secret) == [], message


@pytest.mark.parametrize("after", [3900, 4050, 8000, 23_000, 23_400, 40_000])
async def test_a_secret_cut_by_the_start_of_the_log_tail_is_not_quoted_in_part(
    tmp_path: Path, after: int
) -> None:
    # One long line after the secret: the quoted tail starts somewhere in it,
    # possibly inside the secret's line.
    message = await start_failure(tmp_path, printer(3, after="y" * after + "\n"), LONG)
    assert "leaky: exited with code 3" in message
    assert leaks(message, LONG) == [], message


def command_step(secret: str, argv: list[str] | None = None) -> ActionStepBase:
    return TypeAdapter(ActionStep).validate_python(
        {
            "action": "command",
            "timeout": timedelta(seconds=20),
            "with": {"command": argv or printer(1), "env": {"TOKEN": Secret(secret)}},
        }
    )


@SECRETS
async def test_a_failed_command_action_does_not_quote_its_secret(secret: str) -> None:
    with pytest.raises(TemporaryRemediationError) as caught:
        await run_command(command_step(secret))
    message = str(caught.value)
    assert "exited 1" in message
    assert leaks(message, secret) == [], message


@pytest.mark.parametrize("after", [64 * 1024 - 100, 64 * 1024 - 250])
async def test_a_command_action_whose_kept_output_starts_inside_the_secret(after: int) -> None:
    # One line: the token, then more than fits; the kept end starts inside the token.
    script = f"import os, sys; sys.stdout.write(os.environ['TOKEN'] + 'z' * {after}); sys.exit(1)"
    step = command_step(LONG, [sys.executable, "-c", script])
    with pytest.raises(TemporaryRemediationError) as caught:
        await run_command(step)
    assert "exited 1" in str(caught.value)
    assert leaks(str(caught.value), LONG) == [], str(caught.value)


async def test_an_escalation_webhook_refusing_a_header_does_not_quote_it() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/alerts"
        with pytest.raises(ConnectionError) as caught:
            await post_json(url, {"x": 1}, headers={"X-Token": BLANKS}, limit=2)
    assert "Illegal header value" in str(caught.value)
    assert leaks(repr(caught.value), BLANKS) == [], repr(caught.value)
