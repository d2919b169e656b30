"""The process driver: local processes aftershock starts, supervises, breaks and heals.

No SDK: asyncio subprocesses, ``/proc`` and signals, every signal guarded
against pid reuse.
"""

from aftershock.drivers.process.driver import ProcessDriver, ProcessStatus
from aftershock.drivers.process.proc import ProcStat, read_stat

__all__ = ["ProcStat", "ProcessDriver", "ProcessStatus", "read_stat"]
