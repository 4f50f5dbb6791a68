"""The configuration reference, generated from the schema so it cannot drift from it.

Every key of `monitoring.yaml` with its type, default and the ``#:`` comment its model gives
it, as Markdown tables, one per top-level section. The docs site inserts it into the
Configuration page when it is built (``docs/hooks/reference.py``).
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Iterator
from enum import Enum
from pathlib import PurePath
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from slo.config.schema import Config
from slo.units import format_duration

__all__ = ["config_reference"]

_FIELD = re.compile(r"(\w+)\s*:")


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """The ``#:`` comment above each field of `model` and its bases, by field name."""
    found: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass.__module__.startswith(
            "pydantic"
        ):
            continue
        try:
            lines, _ = inspect.getsourcelines(klass)
        except (OSError, TypeError):
            continue
        comment: list[str] = []
        for line in lines:
            stripped = line.strip()
            if stripped.startswith("#:"):
                comment.append(stripped[2:].strip())
                continue
            match = _FIELD.match(stripped)
            if match and comment:
                found[match.group(1)] = " ".join(comment)
            comment = []
    return found


def _validator_names(metadata: list[Any]) -> set[str]:
    return {getattr(getattr(item, "func", None), "__name__", "") for item in metadata}


def _kind_of(annotation: Any, metadata: list[Any]) -> str:
    """How a value of this type is written, in a word or two."""
    names = _validator_names(metadata)
    if "parse_duration" in names:
        return "duration"
    if "parse_percent" in names:
        return "percent"
    if "_check_url" in names:
        return "URL"
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        inner, *more = get_args(annotation)
        return _kind_of(inner, [*metadata, *more])
    if origin is Literal:
        return " \\| ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        kinds = [_kind_of(arg, []) for arg in get_args(annotation) if arg is not type(None)]
        return " or ".join(dict.fromkeys(kinds))
    if origin in (list, tuple):
        return f"list of {_kind_of(get_args(annotation)[0], [])}"
    if origin is dict:
        return f"map of {_kind_of(get_args(annotation)[1], [])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "path"
    if annotation is SecretStr:
        return "secret (`${VAR}`)"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation)
    return {str: "text", int: "integer", float: "number", bool: "true/false", Any: "any value"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _default(field: FieldInfo, kind: str) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is PydanticUndefined or isinstance(value, BaseModel):
        return ""
    if value is None or value == [] or value == {}:
        return "none"
    if value == "":
        return "empty"
    if isinstance(value, list) and all(isinstance(item, BaseModel) for item in value):
        value = [item.model_dump(mode="json", exclude_defaults=True) for item in value]
    if kind.startswith("duration") and isinstance(value, int | float):
        return f"`{format_duration(value)}`"
    if kind.startswith("percent") and isinstance(value, int | float):
        return f"`{value * 100:g}`"
    if isinstance(value, Enum):
        value = value.value
    return f"`{value}`" if not isinstance(value, bool) else f"`{str(value).lower()}`"


def _models(annotation: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """The models a field holds, with the key suffix that reaches into each one."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        yield from _models(get_args(annotation)[0])
    elif origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            yield from _models(arg)
    elif origin in (list, tuple):
        yield from (("[]" + suffix, model) for suffix, model in _models(get_args(annotation)[0]))
    elif origin is dict:
        yield from ((".<name>" + suffix, model) for suffix, model in _models(get_args(annotation)[1]))
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield "", annotation


Row = list[str]  # key, type, default, meaning


def _rows(model: type[BaseModel], prefix: str, rows: dict[str, Row]) -> None:
    """Every key of `model` under `prefix` into `rows`; a key that several models of a union
    share (``sli.kind``) gets each model's type."""
    comments = _comments(model)
    for name, field in model.model_fields.items():
        key = f"{prefix}.{field.alias or name}" if prefix else (field.alias or name)
        kind = _kind_of(field.annotation, field.metadata)
        if key not in rows:
            rows[key] = [key, kind, _default(field, kind), comments.get(name, "")]
        elif kind not in rows[key][1]:
            rows[key][1] += f" \\| {kind}"
        for suffix, nested in _models(field.annotation):
            _rows(nested, key + suffix, rows)


def _cell(text: str) -> str:
    """A ``#:`` comment (reStructuredText) as Markdown in a table cell."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")
    return text.replace("|", "\\|")


def config_reference() -> str:
    """Markdown: one table per top-level section of `monitoring.yaml`."""
    rows: dict[str, Row] = {}
    _rows(Config, "", rows)
    sections: dict[str, list[Row]] = {}
    for row in rows.values():
        sections.setdefault(re.split(r"[.\[]", row[0])[0], []).append(row)
    out = []
    for section, section_rows in sections.items():
        out += [f"### `{section}`", "", "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        out += [
            f"| `{key}` | {kind} | {default} | {_cell(meaning)} |"
            for key, kind, default, meaning in section_rows
        ]
        out.append("")
    return "\n".join(out)
