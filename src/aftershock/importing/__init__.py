"""Importers: experiments written for other tools, as aftershock documents.

Rule: pure translation. Bytes in, YAML text and located warnings out; no file
is read or written here (the CLI does that through ``loading.read_source``),
and nothing is run. Input is parsed only through the loader's bounded
composer or ``json``, so hostile input ends in a located ``NotChaosToolkit``,
never a traceback. The output is deterministic: the same input gives the same
bytes, and it is built to pass ``aftershock validate``.
"""

from aftershock.importing.chaostoolkit import ImportResult, NotChaosToolkit, import_chaostoolkit

__all__ = ["ImportResult", "NotChaosToolkit", "import_chaostoolkit"]
