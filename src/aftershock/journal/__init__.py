"""The crash-safe record of every fault: written before a fault is applied, read by `aftershock recover`.

Rule: one JSON-lines file per run; fault and resource records are fsync'd
before the call that writes them returns (with every note queued before them);
notes and samples are written in batches by the journal's writer thread; readers
tolerate a torn or garbled line.
"""  # noqa: E501

from aftershock.journal.faults import FAULT_EVENTS, FaultJournal, fault_key
from aftershock.journal.ledger import (
    LEDGER_FILE,
    LEDGER_SCHEMA_VERSION,
    Ledger,
    LedgerRun,
    LedgerSpend,
    WeekRow,
)
from aftershock.journal.reading import (
    JournalProblem,
    JournalRecord,
    JournalScan,
    Outstanding,
    RunSummary,
    outstanding,
    read_journal,
    runs,
    scan_journal,
)

__all__ = [
    "FAULT_EVENTS",
    "LEDGER_FILE",
    "LEDGER_SCHEMA_VERSION",
    "FaultJournal",
    "JournalProblem",
    "JournalRecord",
    "JournalScan",
    "Ledger",
    "LedgerRun",
    "LedgerSpend",
    "Outstanding",
    "RunSummary",
    "WeekRow",
    "fault_key",
    "outstanding",
    "read_journal",
    "runs",
    "scan_journal",
]
