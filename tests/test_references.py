"""Every ``attnmt.<dotted name>`` that the package's docstrings, help text and comments
mention exists: a module that imports, or an object reached from one by attributes. A
module renamed or moved leaves no stale pointer behind."""

from __future__ import annotations

import importlib
import re
import tokenize
from pathlib import Path

import attnmt

PACKAGE = Path(attnmt.__file__).parent
DOTTED = re.compile(r"\battnmt(?:\.[A-Za-z_]\w*)+")


def resolves(name: str) -> bool:
    """True when `name` is a module of attnmt, or an attribute path inside one."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            target: object = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name or module_name.startswith(f"{err.name}."):
                continue  # no such module: try a shorter prefix and attributes
            return cut == len(parts)  # it exists, but needs an extra that is not installed
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def mentions(path: Path) -> list[tuple[int, str]]:
    """(line, name) of each dotted attnmt name in the file's strings and comments (import
    statements are Python's own business)."""
    found = []
    with path.open("rb") as handle:
        for token in tokenize.tokenize(handle.readline):
            if token.type in (tokenize.STRING, tokenize.COMMENT):
                found += [(token.start[0], name) for name in DOTTED.findall(token.string)]
    return found


def test_resolves_tells_real_names_from_stale_ones() -> None:
    assert resolves("attnmt.nn.scores")
    assert resolves("attnmt.nn.scores.SCORES")
    assert resolves("attnmt.translate.translator.Translator.translate")
    assert not resolves("attnmt.attention.SCORES")  # moved to attnmt.nn.scores
    assert not resolves("attnmt.study")
    assert not resolves("attnmt.nn.scores.NO_SUCH_NAME")


def test_every_dotted_attnmt_name_in_the_package_resolves() -> None:
    stale = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, name in mentions(path)
        if not resolves(name)
    ]
    assert stale == []


def test_config_keys_name_only_real_modules() -> None:
    """`attnmt config --keys` prints these docs: they must point at real places too."""
    from attnmt.config import field_docs

    stale = [
        f"{key}: {name}"
        for key, _, doc in field_docs()
        for name in DOTTED.findall(doc)
        if not resolves(name)
    ]
    assert stale == []
    assert any("attnmt.nn.scores.SCORES" in doc for _, _, doc in field_docs())
