"""Command probe: run an argv (never a shell) and check its exit code and stdout.

The command runs in its own session so that a timeout kills its whole process
group (a wrapper script's children too, which would otherwise keep the output
pipes open), and the killed process is always reaped. Output is read to the end
but only the first ``OUTPUT_LIMIT`` bytes are kept, so a chatty command neither
fills memory nor blocks on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from typing import Final, Self

from aftershock.model.probes import CommandProbe
from aftershock.model.secrets import reveal
from aftershock.ports import Clock, ProbeResult
from aftershock.probes.redact import Redactor, redactor_for
from aftershock.probes.stopwatch import Stopwatch, format_seconds

__all__ = ["OUTPUT_LIMIT", "CommandProbeAdapter"]

OUTPUT_LIMIT: Final = 64 * 1024
"""Bytes of stdout (and of stderr) kept per run."""

_REAP_GRACE: Final = 2.0  # after SIGKILL: the kernel needs only a moment to end the group
_TAIL: Final = 200  # characters of output quoted in a failure detail


async def _read_bounded(stream: asyncio.StreamReader | None, limit: int) -> bytes:
    if stream is None:
        return b""
    kept = bytearray()
    while chunk := await stream.read(65536):
        # Keep reading past the limit: a writer blocked on a full pipe never exits.
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return bytes(kept)


def _tail(output: bytes, redact: Redactor) -> str:
    """The end of ``output`` for a failure detail, secrets hidden.

    Redaction comes first, on the raw text: collapsing blanks or cutting to
    length first would leave a secret with blanks in it, or the part of a long
    one past the cut, unrecognised.
    """
    text = output.decode("utf-8", errors="replace")
    text = redact.clipped(text, end=len(output) >= OUTPUT_LIMIT)
    text = " ".join(text.split())
    return text if len(text) <= _TAIL else "..." + text[-_TAIL:]


class CommandProbeAdapter:
    """``Probe`` for ``CommandProbe``; ``status`` on the sample is the exit code."""

    def __init__(self, spec: CommandProbe, *, clock: Clock | None = None) -> None:
        self.spec = spec
        self._clock = clock
        self._timeout = spec.timeout.total_seconds()
        self._stdout = re.compile(spec.stdout) if spec.stdout is not None else None
        self._redact = redactor_for(*spec.env.values())

    async def check(self) -> ProbeResult:
        """Run the command once; never raises, never outlives the timeout by much."""
        watch = Stopwatch(self._clock)
        spec = self.spec
        # Secrets enter the child's environment and nothing else.
        env = {**os.environ, **{name: reveal(value) for name, value in spec.env.items()}}
        try:
            proc = await asyncio.create_subprocess_exec(
                *spec.command,
                cwd=spec.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in argv or env
            return watch.result(ok=False, detail=self._redact(self._spawn_failure(exc)))
        try:
            async with asyncio.timeout(self._timeout):
                stdout, stderr, code = await asyncio.gather(
                    _read_bounded(proc.stdout, OUTPUT_LIMIT),
                    _read_bounded(proc.stderr, OUTPUT_LIMIT),
                    proc.wait(),
                )
        except TimeoutError:
            await self._kill(proc)
            detail = f"timed out after {format_seconds(self._timeout)}; process killed"
            return watch.result(ok=False, detail=detail)
        except BaseException:
            # Cancelled from outside (the sampler stopping): leave no orphan behind.
            await asyncio.shield(self._kill(proc))
            raise
        return self._judge(watch, code, stdout, stderr)

    def _judge(self, watch: Stopwatch, code: int, stdout: bytes, stderr: bytes) -> ProbeResult:
        latency = watch.elapsed()
        if code != self.spec.exit_code:
            what = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            detail = f"{what}, expected {self.spec.exit_code}"
            if output := _tail(stderr, self._redact) or _tail(stdout, self._redact):
                detail += f": {output}"
            return watch.result(ok=False, status=code, detail=self._redact(detail), latency=latency)
        if self._stdout is not None:
            text = stdout.decode("utf-8", errors="replace")
            if self._stdout.search(text) is None:
                detail = f"stdout ({len(stdout)} bytes) does not match /{self._stdout.pattern}/"
                if output := _tail(stdout, self._redact):
                    detail += f": {output}"
                return watch.result(
                    ok=False, status=code, detail=self._redact(detail), latency=latency
                )
        return watch.result(ok=True, status=code, latency=latency)

    def _spawn_failure(self, exc: OSError | ValueError) -> str:
        program = self.spec.command[0]
        if isinstance(exc, ValueError):
            return f"command could not start: {program}: {exc}"
        if isinstance(exc, FileNotFoundError | NotADirectoryError):
            # The child reports a bad cwd with the directory as the filename.
            if self.spec.cwd is not None and exc.filename == self.spec.cwd:
                return f"working directory not found: {self.spec.cwd}"
            return f"command not found: {program}"
        if isinstance(exc, PermissionError):
            return f"command not executable: {program}"
        return f"command could not start: {program}: {exc.strerror or exc}"

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            # The group id is the pid (own session), and the process is not yet
            # reaped, so the id cannot have been reused by someone else.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_REAP_GRACE):
                await proc.wait()
                # Drain to EOF so the pipe transports close before the sample ends.
                await asyncio.gather(_read_bounded(proc.stdout, 0), _read_bounded(proc.stderr, 0))

    async def aclose(self) -> None:
        """Nothing to release: every check reaps its own process."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
