"""A loader process with a memory and a per-document CPU bound, for the fuzz tests.

Reads one JSON request per line on stdin (``{"text": ...}`` or ``{"path": ...}``)
and answers one JSON line: ``{"documents": n, "nodes": n, "problems": [[line,
column, printed], ...]}``, or ``{"exception": "..."}`` for anything the loader
raised other than ``ExperimentInvalid``. ``nodes`` is the size of the largest
value the YAML layer built for a document of a text it did not refuse for its size. The address space is limited for the whole
process; before each document the CPU limit is set a few seconds past what the
process has used so far, so a document that spins kills the process (SIGXCPU)
and the test sees it end, without measuring time itself.
"""

from __future__ import annotations

import json
import resource
import sys
import traceback

MEMORY_BYTES = 1024**3
CPU_SECONDS_PER_DOCUMENT = 20


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _size(value: object) -> int:
    """Values in a built value (keys are not counted, as in the loader), without recursion."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    from aftershock.errors import ExperimentInvalid
    from aftershock.loading import load_file, load_text
    from aftershock.loading.yamltree import compose_documents

    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    for line in sys.stdin:
        request = json.loads(line)
        soft = int(_cpu_used()) + CPU_SECONDS_PER_DOCUMENT
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        try:
            if "path" in request:
                try:
                    documents, problems = load_file(request["path"], env={}), []
                except ExperimentInvalid as exc:
                    documents, problems = [], exc.problems
            else:
                documents, problems = load_text(request["text"], "fuzz.yaml", env={})
            nodes = 0
            # What was built is checked against the limit when the loader did not refuse
            # it for its size; when it did, the process surviving is the check.
            refused = any("more than" in p.message and "nodes" in p.message for p in problems)
            if "text" in request and not refused:
                located, _ = compose_documents(request["text"], {})
                nodes = max((_size(d.data) for d in located), default=0)
            answer: dict[str, object] = {
                "documents": len(documents),
                "nodes": nodes,
                "problems": [[p.line, p.column, str(p)] for p in problems],
            }
        except BaseException as exc:  # noqa: BLE001 -- reported: the test fails on any of them
            answer = {"exception": "".join(traceback.format_exception(exc))}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
