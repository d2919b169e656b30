"""Step models built from a catalog entry: one model per fault or action.

A catalog names each kind of step once (its name, parameter model and whether
``with:`` is required); ``step_model`` turns an entry into the pydantic model
that the discriminated union, the JSON Schema and the CRDs are built from.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import Field, create_model

from aftershock.model.base import Spec

__all__ = ["ParamsMismatch", "checked_params", "class_name", "step_model"]

S = TypeVar("S", bound=Spec)
P = TypeVar("P", bound=Spec)


class ParamsMismatch(TypeError):
    """A step's parameters are not the model its fault or action takes.

    Step models make this impossible for parsed documents; it means a request
    was built by hand with the wrong parameters (a programming error).
    """


def checked_params(name: str, model: type[P], params: Spec) -> P:
    """``params`` as ``model`` (the entry ``name`` takes); ``ParamsMismatch`` otherwise."""
    if not isinstance(params, model):
        msg = f"{name} takes {model.__name__}, not {type(params).__name__}"
        raise ParamsMismatch(msg)
    return params


def class_name(name: str, suffix: str = "") -> str:
    """``toxiproxy.slow_close`` → ``ToxiproxySlowClose``; ``k8s.deletePod`` → ``K8sDeletePod``."""
    words = name.replace(".", "_").split("_")
    return "".join(word[:1].upper() + word[1:] for word in words) + suffix


def step_model(
    base: type[S],
    *,
    discriminator: str,
    name: str,
    params: type[Spec],
    params_required: bool,
    summary: str,
    model_name: str,
) -> type[S]:
    """A subclass of ``base``: ``discriminator`` is ``name``, ``with:`` is ``params``."""
    with_field = (
        Field(alias="with") if params_required else Field(default_factory=params, alias="with")
    )
    fields: dict[str, Any] = {
        discriminator: (Literal[name], ...),
        "with_": (params, with_field),
    }
    return create_model(
        model_name, __base__=base, __doc__=summary, __module__=base.__module__, **fields
    )
