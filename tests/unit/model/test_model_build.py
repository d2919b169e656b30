"""Model building is paid once: no document model builds its own validator at import.

Every model defers its build (``defer_build`` in ``Spec``), so importing the
model builds nothing per class and ``DOCUMENT_ADAPTER`` builds the one
validator of both kinds, nested models included. Checked in a fresh interpreter,
where no other test has used a model yet.
"""

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "experiments" / "toxiproxy-latency.yaml"

SCRIPT = """
import json, sys
from aftershock.model import DOCUMENT_ADAPTER  # the one validator of both kinds, not built yet
from aftershock.model.base import Spec

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

models = set(subclasses(Spec))
built = sorted(m.__qualname__ for m in models if m.__pydantic_complete__)
from aftershock.loading import load_file
documents = load_file(sys.argv[1], env={})
print(json.dumps({"models": len(models), "built": built, "documents": len(documents)}))
"""


def test_importing_the_model_builds_no_model_on_its_own() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["models"] > 50  # the step models of every fault and action are among them
    assert report["built"] == []
    assert report["documents"] == 1  # and the one validator still validates a document
