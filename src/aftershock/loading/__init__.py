"""Boundary: YAML files to validated models (and data back to YAML).

Rule: the only package that imports ``yaml``. Safe loading only, bounded in
size, depth and alias and merge expansion; files are read only through
``read_source`` (regular files, never blocking, never past the size limit);
every problem carries file, line, column and field path, with control
characters from the input escaped; bad input never produces a traceback.
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
from aftershock.loading.reading import UnreadableFile, read_source

__all__ = [
    "MAX_FILE_BYTES",
    "LoadedDocument",
    "UnreadableFile",
    "collect_files",
    "dump_yaml",
    "load_file",
    "load_paths",
    "load_text",
    "read_source",
]
