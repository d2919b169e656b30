"""A document of either kind, chosen by ``kind:``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from aftershock.model.experiment import Experiment
from aftershock.model.policy import HealingPolicy

__all__ = ["DOCUMENT_ADAPTER", "Document"]

Document = Annotated[Experiment | HealingPolicy, Field(discriminator="kind")]
"""An ``Experiment`` or a ``HealingPolicy``."""

DOCUMENT_ADAPTER: TypeAdapter[Experiment | HealingPolicy] = TypeAdapter(Document)
"""Validates any document; errors carry the kind as the first location item."""
