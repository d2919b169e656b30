"""The base of every document model: frozen, strict about unknown keys, camelCase in YAML."""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["Name", "Spec"]


class Spec(BaseModel):
    """Base model: immutable, unknown keys are errors, fields spelled camelCase in YAML."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        str_strip_whitespace=False,
        use_enum_values=False,
        arbitrary_types_allowed=True,
        # Built when first used, not at class creation: the document validator then
        # builds every nested model once, inside it, instead of each on its own first.
        defer_build=True,
    )


_NAME_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$", re.ASCII)


def _check_name(value: str) -> str:
    if not _NAME_RE.fullmatch(value):
        msg = (
            f"invalid name {value!r}: use 1-63 lowercase letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
        raise ValueError(msg)
    return value


Name = Annotated[str, AfterValidator(_check_name)]
"""A reference name (target, probe, SLO, step, metadata name)."""
