"""Loading a config: YAML files and ``--set key=value`` overrides merged over the defaults
and validated, with one-line errors that name the key, the file and the allowed values;
saving the resolved config; the presets shipped with attnmt; the documented key list
(:func:`config_keys`, behind ``attnmt config --keys`` and docs/config.md)."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from attnmt.config.sections import Config, ConfigError, DecodeOptions, RerankOptions


def _describe_allowed(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """The keys allowed at `loc` (the parent of an unknown key)."""
    current: type[BaseModel] = model
    for part in loc:
        field = current.model_fields.get(str(part))
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return ""
        current = field.annotation
    return ", ".join(current.model_fields)


def _format_error(
    err: ValidationError, source: str, root: type[BaseModel] = Config, prefix: str = ""
) -> str:
    """One line for the first error: where (`source`, if any), which key, what is wrong."""
    where = f"{source}: " if source else ""
    first = err.errors()[0]
    loc = tuple(p for p in first["loc"] if not isinstance(p, int))
    key = prefix + ".".join(str(p) for p in loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        allowed = _describe_allowed(root, loc[:-1])
        return f"{where}unknown key '{key}'; allowed here: {allowed}"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "value_error":
        return f"{where}{msg}"
    got = first.get("input")
    got_text = "" if isinstance(got, dict) else f" (got {got!r})"
    more = len(err.errors()) - 1
    tail = f" [+{more} more]" if more else ""
    return f"{where}{key}: {msg}{got_text}{tail}"


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict[str, Any]:
    """``a.b.c=value`` -> ``{"a": {"b": {"c": value}}}``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. model.rnn=lstm")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    tree: dict[str, Any] = {}
    node = tree
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return tree


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, turning every file problem into a one-line ConfigError."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if path.is_dir():
        raise ConfigError(f"config path is a directory, not a YAML file: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def build_config(
    layers: Iterable[tuple[str, Mapping[str, Any]]], base: Config | None = None
) -> Config:
    """Merge (source name, overrides) layers over `base` (defaults if None), validating each."""
    merged: dict[str, Any] = base.to_dict() if base is not None else {}
    source = "defaults"
    for source, override in layers:
        merged = _deep_merge(merged, override)
        try:
            Config.model_validate(merged)
        except ValidationError as err:
            # Key and type errors belong to this layer; a cross-field check may still be
            # satisfied by a later layer, so only the final merge is judged on those.
            if any(e["type"] != "value_error" for e in err.errors()):
                raise ConfigError(_format_error(err, source)) from None
    try:
        return Config.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_format_error(err, source)) from None


def decode_options(
    base: DecodeOptions, overrides: Mapping[str, Any], source: str = ""
) -> DecodeOptions:
    """`base` (a run's ``decode`` section) with `overrides` applied (None values are
    ignored), validated once: an unknown key or a bad value is a one-line ConfigError."""
    return _with_overrides(base, overrides, source, "decode.")


def rerank_options(
    base: RerankOptions, overrides: Mapping[str, Any], source: str = ""
) -> RerankOptions:
    """`base` (a dialogue run's ``rerank`` section) with `overrides` applied (None values
    are ignored), validated once, as :func:`decode_options` does."""
    return _with_overrides(base, overrides, source, "rerank.")


Options = TypeVar("Options", DecodeOptions, RerankOptions)


def _with_overrides(
    base: Options, overrides: Mapping[str, Any], source: str, prefix: str
) -> Options:
    given = {key: value for key, value in overrides.items() if value is not None}
    if not given:
        return base
    kind = type(base)
    try:
        return kind.model_validate({**base.model_dump(), **given})
    except ValidationError as err:
        raise ConfigError(_format_error(err, source, kind, prefix)) from None


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Defaults, then the YAML file at `path`, then each ``key=value`` override."""
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if path is not None:
        layers.append((str(path), read_yaml(path)))
    layers.extend((f"--set {text}", parse_override(text)) for text in overrides)
    return build_config(layers)


def preset_path(name: str) -> Path:
    """The preset `name` (e.g. ``multi30k_de_en_bahdanau.yaml``, ``study/03_bahdanau.yaml``)
    shipped with attnmt as package data, wherever attnmt is installed."""
    path = Path(str(resources.files("attnmt").joinpath("presets", name)))
    if not path.is_file():
        raise ConfigError(f"no preset named {name!r} in {path.parent}")
    return path


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config (every key, defaults included) as YAML."""
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


@dataclass(frozen=True)
class KeyDoc:
    """One leaf key of the config, as the reference documentation shows it."""

    key: str  # dotted, e.g. model.attention.score
    annotation: Any  # its type, e.g. Literal["dot", ...] or int | None
    field: FieldInfo  # its pydantic field: default and constraints (ge, lt, ...)
    default: Any
    doc: str  # its attribute docstring, on one line


def config_keys(section: type[BaseModel] = Config, prefix: str = "") -> list[KeyDoc]:
    """Every leaf key under `section`, in the order the classes declare them."""
    rows: list[KeyDoc] = []
    hints = typing.get_type_hints(section)
    docs = _attribute_docstrings(section)
    for name, field in section.model_fields.items():
        key = f"{prefix}{name}"
        annotation = hints.get(name)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(config_keys(annotation, key + "."))
        else:
            default = field.get_default(call_default_factory=True)
            rows.append(KeyDoc(key, annotation, field, default, docs.get(name, "")))
    return rows


def field_docs(section: type[BaseModel] = Config, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, docstring) for every leaf field: what `attnmt config --keys`
    prints."""
    return [(row.key, row.default, row.doc) for row in config_keys(section, prefix)]


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string literal right after a field) of a class."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for prev, node in zip(body, body[1:], strict=False):
        if (
            isinstance(prev, ast.AnnAssign)
            and isinstance(prev.target, ast.Name)
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            docs[prev.target.id] = " ".join(node.value.value.split())
    return docs
