"""The exception hierarchy: every error paramwise raises derives from ``ParamwiseError``.

Each class also subclasses the built-in exception that fits, so ``except KeyError`` or
``except ValueError`` in existing code keeps working.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BuildArgumentError",
    "ConfigAttributeError",
    "ConfigDependencyError",
    "ConfigFileError",
    "ConfigFileNotFoundError",
    "ConfigFileWriteError",
    "ConfigKeyError",
    "BuildTargetError",
    "ConfigError",
    "DuplicateRegistrationError",
    "ExpressionError",
    "ForeignStateError",
    "InternalError",
    "MissingTypeError",
    "ModelSpecError",
    "UsageError",
    "UsageTypeError",
    "PROBLEM_KINDS",
    "NotRegisteredError",
    "ParamwiseError",
    "ParamwiseWarning",
    "Problem",
    "SharedParameterError",
    "StateLoadError",
    "ScheduleStateError",
    "MetricMissingError",
    "format_path",
    "warn_user",
]


class ParamwiseError(Exception):
    """Root of every error paramwise raises."""


class _UnquotedKeyError(KeyError):
    """A KeyError whose text is its message as written (``KeyError`` would show it quoted, as a key)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NotRegisteredError(ParamwiseError, _UnquotedKeyError):
    """A name was looked up in a registry that does not hold it."""

    def __init__(self, message: str, *, registry: str, name: str, suggestions: Sequence[str] = ()):
        super().__init__(message)
        self.message = message
        self.registry = registry
        self.name = name
        self.suggestions = tuple(suggestions)



class DuplicateRegistrationError(ParamwiseError, _UnquotedKeyError):
    """A name was registered twice without ``force=True``."""

    def __init__(self, message: str, *, registry: str, name: str):
        super().__init__(message)
        self.message = message
        self.registry = registry
        self.name = name



class UsageTypeError(ParamwiseError, TypeError):
    """A paramwise function was called with an argument of the wrong type (not a config problem):
    a registry name that is not a string, a model that is not a Module, ``force='yes'``."""


class BuildArgumentError(ParamwiseError, TypeError):
    """A config's keys do not fit the signature of the object it builds."""

    def __init__(self, message: str, *, registry: str, type_name: str, key: str | None = None):
        super().__init__(message)
        self.registry = registry
        self.type_name = type_name
        self.key = key


class BuildTargetError(ParamwiseError):
    """The built object itself raised; the original exception is the ``__cause__``.

    Instances are usually of a subclass that also derives from the original exception's
    type (see :func:`wrap_target_error`), so callers can catch either.
    """

    registry: str = ""
    type_name: str = ""


@functools.cache
def _target_error_class(original: Any) -> type[BuildTargetError]:
    return type(original.__name__, (BuildTargetError, original), {"__module__": __name__})


def wrap_target_error(exc: Exception, message: str, *, registry: str, type_name: str) -> Exception:
    """Return an error that is both a ``BuildTargetError`` and of ``exc``'s own type when possible."""
    try:
        new: BuildTargetError = _target_error_class(type(exc))(message)  # type: ignore[arg-type]
        str(new)  # some exception types format their args eagerly and can fail here
    except Exception:
        new = BuildTargetError(message)
    new.registry = registry
    new.type_name = type_name
    return new


#: What kind of mistake a Problem is; a ConfigError holding one also derives from the matching built-in,
#: as mmcv/mmengine raise it: a value of the wrong type -> TypeError, a required key missing -> KeyError.
PROBLEM_KINDS: dict[str, type[Exception]] = {"value": ValueError, "type": TypeError, "missing": KeyError}


#: what separates a path's keys, and the path from its message, in ``Problem`` text
PATH_SEPARATOR = " -> "
_SEPARATOR_MARKS = ("->", ":")


def _path_key(key: str) -> str:
    """One key of a path as shown: as it is, or in repr quotes when shown bare it would be invisible or
    misread (empty, leading or trailing whitespace, a separator of the path's text, a control character)."""
    if not isinstance(key, str):
        return repr(key)
    if key and key == key.strip() and key.isprintable() and not any(mark in key for mark in _SEPARATOR_MARKS):
        return key
    return repr(key)


def format_path(path: Sequence[str]) -> str:
    """A config path as messages show it: ``optimizer -> paramwise_cfg -> ''``; the top level when empty.

    The one place paths become text, so a key that is empty, padded or holds ``->`` is quoted everywhere.
    """
    return PATH_SEPARATOR.join(_path_key(key) for key in path) if path else "(top level)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config: where (a path of keys) and what, with the fix.

    ``kind`` is ``'value'`` (a bad value), ``'type'`` (a value of the wrong type) or ``'missing'``
    (a required key is absent); it decides which built-in exceptions the ConfigError also is.
    """

    path: tuple[str, ...]
    message: str
    kind: str = "value"

    def __str__(self) -> str:
        return f"{format_path(self.path)}: {self.message}"


class ConfigError(ParamwiseError, ValueError):
    """A config has one or more problems; all of them are reported at once.

    The instance also derives from ``TypeError`` when a problem is of kind ``'type'`` and from
    ``KeyError`` when one is of kind ``'missing'``, so ``except TypeError`` written for mmengine works.
    """

    def __new__(cls, problems: Sequence[Problem] = (), *args: Any, **kwargs: Any) -> ConfigError:
        kinds = tuple(sorted({getattr(p, "kind", "value") for p in problems} - {"value"}))
        target = _config_error_class(cls, kinds) if kinds else cls  # type: ignore[arg-type]
        return super().__new__(target)

    def __init__(self, problems: Sequence[Problem], *, title: str = "invalid config"):
        self.problems = tuple(problems)
        self.title = title
        super().__init__(str(self))

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return f"{self.title}: {self.problems[0]}"
        lines = [f"{self.title}: {len(self.problems)} problems"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


@functools.cache
def _config_error_class(cls: type[ConfigError], kinds: tuple[str, ...]) -> type[ConfigError]:
    bases = tuple(PROBLEM_KINDS[k] for k in kinds if k in PROBLEM_KINDS)
    return type(cls.__name__, (cls, *bases), {"__module__": cls.__module__, "__str__": cls.__str__})


class MissingTypeError(BuildArgumentError, _UnquotedKeyError):
    """A config for a registry has no ``type`` key: also a ``KeyError``, as in mmcv/mmengine."""



class SharedParameterError(ParamwiseError, ValueError):
    """One parameter is reachable under two names and ``bypass_duplicate`` is off."""

    def __init__(self, message: str, *, first: str, second: str):
        super().__init__(message)
        self.first = first
        self.second = second


class StateLoadError(ParamwiseError, ValueError):
    """Optimizer state cannot be loaded by name: no names, counts or shapes that do not fit, strict misses."""


class ForeignStateError(StateLoadError):
    """Optimizer state whose parameter names (almost) all differ from the model's: another model's state,
    or names under another prefix (``module.``); torch's own load refuses such a state too.

    ``matched`` of ``saved`` saved parameters match one of the model's ``current``; ``prefix_map`` is the
    map of name prefixes that would make them match, when there is one.
    """

    def __init__(self, message: str, *, matched: int, saved: int, current: int,
                 prefix_map: dict[str, str] | None = None):
        super().__init__(message)
        self.matched = matched
        self.saved = saved
        self.current = current
        self.prefix_map = prefix_map


class ExpressionError(ParamwiseError, ValueError):
    """An expression cannot be parsed, or cannot be evaluated with the values given.

    ``text`` is the expression, ``message`` what is wrong with it (without the text).
    """

    def __init__(self, message: str, *, text: str):
        super().__init__(f"{text!r}: {message}")
        self.message = message
        self.text = text


class UsageError(ParamwiseError, ValueError):
    """The command line itself is wrong: a missing file, bad JSON, an override of a key that is not there."""


class ModelSpecError(ParamwiseError, ValueError):
    """A model SPEC names nothing that can be built (unknown name, bad import path, missing timm)."""

    def __init__(self, message: str, *, spec: str):
        super().__init__(message)
        self.spec = spec


class ParamwiseWarning(UserWarning):
    """Something in a config is probably not what its author meant, but it can still be built."""


class ConfigFileError(ParamwiseError, ValueError):
    """A config file cannot be read, parsed or inherited from; names the file, the line and the fix."""

    def __init__(
        self,
        message: str,
        *,
        filename: str | os.PathLike[str],
        line: int | None = None,
        chain: Sequence[str] = (),
    ):
        self.message = message
        self.filename = os.fspath(filename)
        self.line = line
        self.chain = tuple(chain)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.filename if self.line is None else f"{self.filename}, line {self.line}"
        text = f"{where}: {self.message}"
        if len(self.chain) > 1:
            text += f"\n  inheritance chain: {' -> '.join(self.chain)}"
        return text


class ConfigFileNotFoundError(ConfigFileError, FileNotFoundError):
    """A config file, or a ``_base_`` file it names, does not exist."""


class ConfigFileWriteError(ConfigFileError, OSError):
    """A config cannot be written (permissions, a full disk): also an ``OSError``, as the write's own error is."""


class ConfigDependencyError(ParamwiseError, ImportError):
    """Reading or writing a format needs an optional package that is not installed."""


class ConfigKeyError(ParamwiseError, _UnquotedKeyError):
    """``cfg[key]`` names a key the config does not hold."""

    def __init__(self, message: str, *, key: str):
        super().__init__(message)
        self.message = message
        self.key = key



class ConfigAttributeError(ParamwiseError, AttributeError):
    """``cfg.name`` names neither a key nor an attribute of the config."""


class ScheduleStateError(ParamwiseError, ValueError):
    """A schedule's saved state does not fit the schedule it is loaded into (other parts, a bad step count)."""


class MetricMissingError(ParamwiseError, _UnquotedKeyError):
    """A ReduceOnPlateau part was given metrics without the one it monitors."""

    def __init__(self, message: str, *, monitor: str):
        super().__init__(message)
        self.message = message
        self.monitor = monitor


class ModelChangedError(ParamwiseError, RuntimeError):
    """The model's parameters were replaced after its optimizer was built (FSDP2's ``fully_shard`` applied
    after ``build_optimizer``): the optimizer would step tensors the model no longer uses."""


class InternalError(ParamwiseError, RuntimeError):
    """paramwise broke one of its own invariants (a parameter lost or placed twice): a bug to report.

    Raised instead of returning a result that is silently wrong, such as an optimizer that misses
    a trainable parameter.
    """

    def __init__(self, message: str, *, name: str | None = None):
        super().__init__(
            f"{message}: this is a bug in paramwise, please report it with the model's structure "
            "(print(model)), the optimizer config and the versions of paramwise and torch"
        )
        self.name = name


#: the paramwise package folder: frames from files under it are paramwise's own, not the user's
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _not_users(frame: Any) -> bool:
    """A frame of paramwise or of torch: torch's calls run paramwise's hooks (``optimizer.load_state_dict``
    through ``torch/_dynamo/eval_frame.py``), and a warning from a hook is about the user's call of torch."""
    if frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        return True
    module = frame.f_globals.get("__name__")
    return isinstance(module, str) and (module == "torch" or module.startswith("torch."))


def warn_user(message: str, category: type[Warning] = ParamwiseWarning) -> None:
    """Warn at the line of the first caller outside paramwise and torch, however deep the call path inside them."""
    level = 2
    frame = sys._getframe(1)
    while frame is not None and _not_users(frame):
        level, frame = level + 1, frame.f_back  # type: ignore[assignment]
    warnings.warn(message, category, stacklevel=level)
