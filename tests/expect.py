"""``expect_warnings``: a block must raise exactly the ParamwiseWarnings it names, each at least once.

``pytest.warns`` re-raises the warnings that do not match its one pattern; a call that warns about
several things (a plan with idle rules and frozen parameters) needs every one named, so a new or a
lost warning fails the test instead of escaping into pytest's summary.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from paramwise import ParamwiseWarning

#: what the demo's config (made for a convnet) says about ``--model tiny_mlp``: its rules find nothing
TINY_MLP_DEMO_WARNINGS = ("custom_keys -> backbone: matches no parameter", "custom_keys -> head: matches no parameter",
                          "dwconv_decay_mult: decides no parameter")


@contextmanager
def expect_warnings(*patterns: str) -> Iterator[list[str]]:
    """Record the block's ParamwiseWarnings; each pattern must match one, and each must match a pattern."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        messages: list[str] = []
        yield messages
    others = [w for w in caught if not issubclass(w.category, ParamwiseWarning)]
    for w in others:  # not ours to judge: hand them back to pytest
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    messages += [str(w.message) for w in caught if issubclass(w.category, ParamwiseWarning)]
    missing = [p for p in patterns if not any(re.search(p, m) for m in messages)]
    unexpected = [m for m in messages if not any(re.search(p, m) for p in patterns)]
    assert not missing and not unexpected, f"missing warnings {missing}; unexpected warnings {unexpected}"
