"""The documentation site: every ```python block in docs/ runs, printed outputs match, nav lists every page.

A page's ```python blocks run in order in one fresh namespace, in a temporary working directory. A
```text title="output" block right after a ```python block is what that block prints: the test
compares, so plan tables and numbers in the pages never drift. ```py blocks do not run and say why in an
HTML comment on the line before. ``python tests/test_docs.py --write`` rewrites the output blocks.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
_OUTPUT_INFO = 'text title="output"'
_REASON = re.compile(r"<!--\s*not run:\s*\S.*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page: its info string, its text, and where it is."""

    info: str
    body: str
    line: int
    start: int  # offsets of the body in the page, for --write
    end: int


def blocks(text: str) -> list[Block]:
    """Every fenced block of ``text`` in order (indented fences included, their indent removed)."""
    found = []
    for m in _FENCE.finditer(text):
        indent = m.group("indent")
        body = "".join(line[len(indent):] if line.startswith(indent) else line
                       for line in m.group("body").splitlines(keepends=True))
        found.append(Block(m.group("info").strip(), body, text.count("\n", 0, m.start()) + 1,
                           m.start("body"), m.end("body")))
    return found


def pages() -> list[Path]:
    """Every Markdown page of the site."""
    return sorted(DOCS.rglob("*.md"))


def run_page(path: Path, namespace: dict[str, Any] | None = None) -> list[tuple[Block, str, Block | None]]:
    """Run ``path``'s python blocks in order (in ``namespace``, fresh by default); each with what it
    printed and the output block after it."""
    page_blocks = blocks(path.read_text(encoding="utf-8"))
    namespace = {"__name__": "__docs__"} if namespace is None else namespace
    results = []
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a page may show a warning on purpose; the test checks results
        os.chdir(tmp)
        try:
            for i, block in enumerate(page_blocks):
                if block.info != "python":
                    continue
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    try:
                        exec(compile(block.body, f"{path.relative_to(ROOT)}:{block.line}", "exec"), namespace)
                    except Exception as e:
                        raise AssertionError(f"{path.relative_to(ROOT)}, the python block at line {block.line} "
                                             f"fails: {type(e).__name__}: {e}") from e
                following = page_blocks[i + 1] if i + 1 < len(page_blocks) else None
                results.append((block, out.getvalue(), following if following and
                                following.info == _OUTPUT_INFO else None))
        finally:
            os.chdir(cwd)
    return results


def _normal(text: str) -> str:
    """Output compared line by line without trailing spaces or blank lines at the ends."""
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _executable_pages() -> list[Path]:
    return [p for p in pages() if any(b.info == "python" for b in blocks(p.read_text(encoding="utf-8")))]


@pytest.mark.parametrize("page", _executable_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_python_blocks_run_and_print_what_the_page_shows(page: Path) -> None:
    for block, printed, output in run_page(page):
        if output is not None:
            assert _normal(printed) == _normal(output.body), (
                f"{page.relative_to(ROOT)}:{output.line}: the output block differs from what the block at line "
                f"{block.line} prints; run `PYTHONPATH=src python tests/test_docs.py --write`")


def test_every_output_block_follows_a_python_block() -> None:
    for page in pages():
        page_blocks = blocks(page.read_text(encoding="utf-8"))
        for before, block in zip([None, *page_blocks], page_blocks):
            if block.info == _OUTPUT_INFO:
                assert before is not None and before.info == "python", f"{page}:{block.line}: output of nothing"


def test_blocks_that_do_not_run_say_why() -> None:
    missing = []
    for page in pages():
        lines = page.read_text(encoding="utf-8").splitlines()
        for block in blocks(page.read_text(encoding="utf-8")):
            if block.info == "py" and not _REASON.search(lines[block.line - 2] if block.line >= 2 else ""):
                missing.append(f"{page.relative_to(ROOT)}:{block.line}")
    assert not missing, f"```py blocks without '<!-- not run: why -->' on the line before: {missing}"


def _nav_pages(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for item in node for p in _nav_pages(item)]
    if isinstance(node, dict):
        return [p for value in node.values() for p in _nav_pages(value)]
    return []


def test_nav_lists_every_page_and_only_pages_that_exist() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    assert len(nav) == len(set(nav)), "a page is in nav twice"
    on_disk = {str(p.relative_to(DOCS)) for p in pages()}
    assert not set(nav) - on_disk, f"nav names pages that do not exist: {sorted(set(nav) - on_disk)}"
    assert not on_disk - set(nav), f"pages missing from mkdocs.yml's nav: {sorted(on_disk - set(nav))}"


def test_python_blocks_are_found_indented_and_outputs_paired() -> None:
    text = ("a\n```python\nprint(1)\n```\n\n```text title=\"output\"\n1\n```\n- item\n  ```python\n"
            "  x = 2\n  ```\n")
    found = blocks(text)
    assert [(b.info, b.body, b.line) for b in found] == [
        ("python", "print(1)\n", 2), (_OUTPUT_INFO, "1\n", 6), ("python", "x = 2\n", 10)]


def write_outputs(only: list[str]) -> None:
    """Rewrite every output block of every page (or of the pages named) from a fresh run of the block before it."""
    for page in _executable_pages():
        if only and not any(page.samefile(name) for name in only):
            continue
        text = page.read_text(encoding="utf-8")
        edits = [(output.start, output.end, _normal(printed) + "\n")
                 for _, printed, output in run_page(page) if output is not None]
        for start, end, new in sorted(edits, reverse=True):
            text = text[:start] + new + text[end:]
        page.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--write"]:
        sys.exit("usage: PYTHONPATH=src python tests/test_docs.py --write [docs/page.md ...]")
    write_outputs(sys.argv[2:])
