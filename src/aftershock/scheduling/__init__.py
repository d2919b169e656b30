"""Entry level: experiments on cron schedules; the APScheduler 3.11 adapter.

Rule: the only package that imports ``apscheduler``, and only for cron
arithmetic (``cron.py``); firing is driven by our own loop on the injected
clock, so schedules are tested on a manual clock in milliseconds. The decisions
(blackout, jitter, Forbid/Allow/Replace, kill switch, budget gate, misfire
policy) are pure functions in ``policy.py``; state that must survive restarts
is one SQLite file (``store.py``). Entry level, under ``cli/`` and
``operator/`` (both schedule through it): it may import ``runtime`` and
everything below it, never ``cli/`` or ``operator/``.
"""

from aftershock.scheduling.daemon import (
    SCHEDULE_LOG,
    ScheduleLog,
    experiment_key,
    load_policy,
    run_schedule,
)
from aftershock.scheduling.policy import (
    DEFAULT_MISFIRE_GRACE,
    CatchUp,
    Decision,
    Fire,
    Reason,
    active_blackout,
    catch_up,
    decide,
    jitter_for,
)
from aftershock.scheduling.runs import HasRunResult, RunCallable, RunStatusLike
from aftershock.scheduling.scheduler import ChaosScheduler

__all__ = [
    "DEFAULT_MISFIRE_GRACE",
    "SCHEDULE_LOG",
    "CatchUp",
    "ChaosScheduler",
    "Decision",
    "Fire",
    "HasRunResult",
    "Reason",
    "RunCallable",
    "RunStatusLike",
    "ScheduleLog",
    "active_blackout",
    "catch_up",
    "decide",
    "experiment_key",
    "jitter_for",
    "load_policy",
    "run_schedule",
]
