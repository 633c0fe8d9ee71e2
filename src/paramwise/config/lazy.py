"""Lazy imports in ``.py`` configs: ``from torch.optim import SGD`` becomes a reference, not a class.

Loading a config never imports a third-party package, so a config that names ``mmdet`` classes
loads where mmdet is not installed. The builder calls :meth:`LazyObject.resolve` when it needs
the object itself.
"""

from __future__ import annotations

import importlib
from typing import Any, NoReturn

from paramwise.errors import ConfigDependencyError

__all__ = ["LazyObject"]


class LazyObject:
    """A frozen reference to ``module`` (and an attribute path ``name`` in it), imported on demand.

    ``LazyObject('torch.optim', 'SGD')`` stands for ``from torch.optim import SGD``;
    ``LazyObject('torch')`` for ``import torch``. Two references are equal when they name the same
    dotted path (``torch.optim.SGD``), wherever they were written. Reading an attribute
    (``nn.ReLU``) gives a reference one level deeper, as config code expects of a module.
    """

    __slots__ = ("location", "module", "name")

    module: str
    name: str | None
    location: str | None

    def __init__(self, module: str, name: str | None = None, location: str | None = None) -> None:
        object.__setattr__(self, "module", module)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "location", location)  # 'file, line N' of the import; not part of equality

    @property
    def import_path(self) -> str:
        """The full dotted path, e.g. ``'torch.optim.SGD'``."""
        return self.module if self.name is None else f"{self.module}.{self.name}"

    def resolve(self, key: str | None = None) -> Any:
        """Import the module and return the object; ``key`` (the config path using it) goes into errors.

        Raises:
            ConfigDependencyError: the module cannot be imported or has no such attribute.
        """
        notes = ([f"config key {key!r}"] if key else []) + ([f"imported at {self.location}"] if self.location else [])
        where = f" ({', '.join(notes)})" if notes else ""
        try:
            target: Any = importlib.import_module(self.module)
        except ImportError as exc:
            top = self.module.split(".")[0]
            message = (
                f"cannot import {self.module!r} for {self.import_path}{where}: {exc}."
                f" Install the package that provides it (e.g. pip install {top}), or name a registered type instead"
            )
            raise ConfigDependencyError(message) from exc
        done = self.module
        for part in self.name.split(".") if self.name else []:
            done = f"{done}.{part}"
            try:
                target = getattr(target, part)
            except AttributeError:
                try:  # a submodule that its package does not import by itself
                    target = importlib.import_module(done)
                except ImportError as exc:
                    message = f"{done.rpartition('.')[0]!r} has no attribute {part!r} for {self.import_path}{where}"
                    raise ConfigDependencyError(message) from exc
        return target

    def __getattr__(self, attribute: str) -> LazyObject:
        # Private and dunder names are refused so copy, pickle and hasattr probes see a plain object.
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        name = attribute if self.name is None else f"{self.name}.{attribute}"
        return LazyObject(self.module, name, self.location)

    def __setattr__(self, attribute: str, value: Any) -> NoReturn:
        raise AttributeError(f"LazyObject is frozen; cannot set {attribute!r}")

    def __delattr__(self, attribute: str) -> NoReturn:
        raise AttributeError(f"LazyObject is frozen; cannot delete {attribute!r}")

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(
            f"{self.import_path} is a lazy import in a config and cannot be called while the config loads;"
            f" put it in a dict instead, e.g. dict(type={self.import_path.rpartition('.')[2]}, ...)"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LazyObject):
            return NotImplemented
        return self.import_path == other.import_path

    def __hash__(self) -> int:
        return hash(("LazyObject", self.import_path))

    def __repr__(self) -> str:
        if self.name is None:
            return f"LazyObject({self.module!r})"
        return f"LazyObject({self.module!r}, {self.name!r})"

    def __str__(self) -> str:
        return self.import_path

    def __copy__(self) -> LazyObject:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> LazyObject:
        return self  # immutable: sharing is safe

    def __reduce__(self) -> tuple[Any, ...]:
        return (LazyObject, (self.module, self.name, self.location))
