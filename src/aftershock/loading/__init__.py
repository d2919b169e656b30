"""Boundary: YAML files to validated models (and data back to YAML).

Rule: the only package that imports ``yaml``. Safe loading only, bounded in
size, depth and alias expansion; every problem carries file, line, column and
field path; bad input never produces a traceback.
"""

from aftershock.loading.dumping import dump_yaml
from aftershock.loading.loader import (
    MAX_FILE_BYTES,
    LoadedDocument,
    collect_files,
    load_file,
    load_paths,
    load_text,
)

__all__ = [
    "MAX_FILE_BYTES",
    "LoadedDocument",
    "collect_files",
    "dump_yaml",
    "load_file",
    "load_paths",
    "load_text",
]
