"""The registration methods: one torch-free table that jobs, the worker, ``register_case`` and the
evaluation read, so that a method's name, its network and its stages are stated once.

Importing this module never imports torch (the web process reads it to validate a request).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_METHOD",
    "EVAL_ONLY_METHODS",
    "METHODS",
    "Method",
    "method_get",
    "method_names",
]


@dataclass(frozen=True)
class Method:
    """One registration method.

    Attributes:
        name: the public name (job requests, manifests, result tables).
        network: the checkpoint kind of its deformable network (``rern`` | ``localnet``), or None.
        iterative: whether an instance-optimisation stage runs (``io``), after the network if any.
        label: the name people read in tables and on pages.
    """

    name: str
    network: str | None
    iterative: bool
    label: str

    @property
    def deformable(self) -> bool:
        """True when the method moves voxels beyond the initial (rigid/affine) alignment."""
        return self.network is not None or self.iterative


# Order is the order the web form offers them: the default first.
METHODS: tuple[Method, ...] = (
    Method("rern+io", "rern", True, "RERN + instance optimisation"),
    Method("rern", "rern", False, "RERN (network only)"),
    Method("localnet", "localnet", False, "LocalNet baseline"),
    Method("io", None, True, "Instance optimisation only"),
    Method("initial", None, False, "Initial alignment only"),
)
DEFAULT_METHOD = "rern+io"
# Methods the offline evaluation can compare that a job cannot run (they need SimpleITK).
EVAL_ONLY_METHODS: tuple[str, ...] = ("sitk-bspline",)

_BY_NAME = {m.name: m for m in METHODS}


def method_names() -> tuple[str, ...]:
    """The names of the methods a registration job can run, default first."""
    return tuple(m.name for m in METHODS)


def method_get(name: str) -> Method:
    """The :class:`Method` called ``name``; ``ValueError`` naming the choices if there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {method_names()}") from None
