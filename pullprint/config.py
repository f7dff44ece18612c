"""One configuration loader for every process.

Order of precedence, lowest first: the documented defaults of a dataclass → an optional JSON
file (``PULLPRINT_CONFIG`` or the path given) whose top-level key is the section name →
environment variables ``PULLPRINT_<SECTION>_<FIELD>`` → a mapping passed in (tests).
A field ``foo_file`` in the environment (``PULLPRINT_<SECTION>_FOO_FILE``) reads the secret
``foo`` from that file, so secrets never have to sit in the environment or in argv.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pullprint.errors import PullprintError

T = TypeVar("T")


def _coerce(value: Any, hint: Any, name: str) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(value, args[0], name) if args else value
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise PullprintError("bad-config", f"{name}: expected a boolean, got {value!r}")
    if hint in (int, float):
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise PullprintError("bad-config", f"{name}: expected a number, got {value!r}") from None
    if hint is str:
        return str(value)
    if origin in (list, tuple, dict) or hint in (list, dict):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                if origin in (list, tuple):
                    value = [v.strip() for v in value.split(",") if v.strip()]
                else:
                    raise PullprintError("bad-config", f"{name}: expected JSON") from None
        return value
    return value


def load(cls: type[T], section: str, *, path: str | os.PathLike[str] | None = None,
         environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> T:
    """Build the dataclass `cls` for `section` from defaults, file, environment and overrides."""
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}

    file_path = path or environ.get("PULLPRINT_CONFIG")
    if file_path:
        try:
            data = json.loads(Path(file_path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise PullprintError("bad-config", f"cannot read config file {file_path}: {exc}") from None
        values.update({k: v for k, v in data.get(section, {}).items() if k in fields})

    prefix = f"PULLPRINT_{section.upper().replace('-', '_')}_"
    for key, raw in environ.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):].lower()
        if name.endswith("_file") and name[:-5] in fields and name not in fields:
            try:
                values[name[:-5]] = Path(raw).read_text().strip()
            except OSError as exc:
                raise PullprintError("bad-config", f"{key}: cannot read {raw}: {exc}") from None
        elif name in fields:
            values[name] = raw

    for key, value in (overrides or {}).items():
        if key not in fields:
            raise PullprintError("bad-config", f"unknown setting {section}.{key}")
        values[key] = value

    return cls(**{k: _coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()})


def as_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict (for writing a config file)."""
    return dataclasses.asdict(obj)
