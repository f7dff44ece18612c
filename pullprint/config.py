"""One configuration loader for every process.

Order of precedence, lowest first: the documented defaults of a dataclass → an optional JSON
file (``PULLPRINT_CONFIG`` or the path given) whose top-level key is the section name →
environment variables ``PULLPRINT_<SECTION>_<FIELD>`` → a mapping passed in (tests).
A field ``foo_file`` in the environment (``PULLPRINT_<SECTION>_FOO_FILE``) reads the secret
``foo`` from that file, so secrets never have to sit in the environment or in argv.
`check` reads the same sources and says what is wrong with them (``pullprint … --check-config``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import urlsplit

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


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (types.UnionType, typing.Union) and type(None) in typing.get_args(hint)


def _gather(cls: type[Any], section: str, path: str | os.PathLike[str] | None, environ: Mapping[str, str],
            overrides: Mapping[str, Any] | None, problems: list[str] | None) -> dict[str, Any]:
    """The settings of `section`, coerced to their fields' types. With a `problems` list (`check`),
    whatever is wrong is written there and the value left out, and more is found wrong: unknown keys
    and variables, a missing section, values `_coerce` would silently change."""

    def wrong(message: str) -> None:
        if problems is None:
            raise PullprintError("bad-config", message)
        problems.append(message)

    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}

    file_path = path or environ.get("PULLPRINT_CONFIG")
    if file_path:
        try:
            data = json.loads(Path(file_path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            wrong(f"cannot read config file {file_path}: {exc}")
            data = {section: {}}
        settings = data.get(section) if isinstance(data, dict) else None
        if problems is None:
            values.update({k: v for k, v in data.get(section, {}).items() if k in fields})
        elif not isinstance(settings, dict):
            problems.append(f"{file_path}: no {section!r} section (a JSON object of settings)")
        else:
            for key, value in settings.items():
                if key not in fields:
                    problems.append(_unknown(key, f"{section}.{key}", fields))
                elif problem := _file_value_problem(value, hints[key], f"{section}.{key}"):
                    problems.append(problem)
                else:
                    values[key] = value

    prefix = f"PULLPRINT_{section.upper().replace('-', '_')}_"
    for key, raw in environ.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):].lower()
        if name.endswith("_file") and name[:-5] in fields and name not in fields:
            try:
                values[name[:-5]] = Path(raw).read_text().strip()
            except OSError as exc:
                wrong(f"{key}: cannot read {raw}: {exc}")
        elif name in fields:
            values[name] = raw
        elif problems is not None:
            known = [*fields, *(f"{field}_file" for field in fields)]
            problems.append(_unknown(name, key, known, lambda close: prefix + close.upper()))

    for key, value in (overrides or {}).items():
        if key not in fields:
            wrong(f"unknown setting {section}.{key}")
            continue
        values[key] = value

    coerced = {}
    for key, value in values.items():
        try:
            coerced[key] = _coerce(value, hints[key], f"{section}.{key}")
        except PullprintError as exc:
            wrong(exc.message)
    return coerced


def load(cls: type[T], section: str, *, path: str | os.PathLike[str] | None = None,
         environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> T:
    """Build the dataclass `cls` for `section` from defaults, file, environment and overrides."""
    environ = os.environ if environ is None else environ
    return cls(**_gather(cls, section, path, environ, overrides, None))


def check(cls: type[T], section: str, *, path: str | os.PathLike[str] | None = None,
          environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> list[str]:
    """What is wrong with the settings `load` would build for `section`, one line each; [] when nothing.

    Unknown keys in the file's section and unknown ``PULLPRINT_<SECTION>_…`` variables, values of the
    wrong type, secret files that cannot be read; then, on the settings built from everything else,
    what the dataclass's own ``problems()`` finds (missing secrets, bad URLs, …).
    """
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    loaded = cls(**_gather(cls, section, path, environ, overrides, problems))
    own: Callable[[], list[str]] | None = getattr(loaded, "problems", None)
    return problems + (own() if own else [])


def check_command(cls: type[T], section: str, *, path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None,
                  out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``--check-config``: print what is wrong (exit status 1) or ``OK`` (0); nothing is started."""
    environ = os.environ if environ is None else environ
    problems = check(cls, section, path=path, environ=environ, overrides=overrides)
    if problems:
        where = path or environ.get("PULLPRINT_CONFIG") or "no config file"
        print(f"{section} settings ({where}) are not usable:", file=err or sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=err or sys.stderr)
        return 1
    print("OK", file=out or sys.stdout)
    return 0


def as_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict (for writing a config file)."""
    return dataclasses.asdict(obj)


def _file_value_problem(value: Any, hint: Any, name: str) -> str | None:
    """What is wrong with a value from the JSON file, or None. Beyond what `load` refuses, this names
    values it would silently change: true for a number, 2.5 for a whole number, a list for text."""
    if value is None:
        return None if _optional(hint) else f"{name}: must not be null"
    if _optional(hint):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    try:
        _coerce(value, hint, name)
    except PullprintError as exc:
        return exc.message
    if hint in (int, float) and isinstance(value, bool):
        return f"{name}: expected a number, got {json.dumps(value)}"
    if hint is int and isinstance(value, float) and not value.is_integer():
        return f"{name}: expected a whole number, got {value!r}"
    if hint is str and (isinstance(value, bool) or not isinstance(value, str | int | float)):
        return f"{name}: expected text, got {json.dumps(value)}"
    if typing.get_origin(hint) in (list, tuple) and not isinstance(value, list):
        return f"{name}: expected a list, got {json.dumps(value)}"
    if (typing.get_origin(hint) is dict or hint is dict) and not isinstance(value, dict):
        return f"{name}: expected an object, got {json.dumps(value)}"
    return None


def _unknown(name: str, where: str, known: Iterable[str], spell: Callable[[str], str] = str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"{where}: unknown setting" + (f" (did you mean {spell(close[0])}?)" if close else "")


def url_problem(name: str, value: str, schemes: Iterable[str], *, required: bool = True) -> str | None:
    """What is wrong with `value` as a URL for `name` with one of `schemes`, or None."""
    schemes = tuple(schemes)
    if not value:
        return f"{name}: not set (a URL with scheme {' or '.join(schemes)})" if required else None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        return f"{name}: not a URL ({exc}): {value!r}"
    if parts.scheme not in schemes:
        return f"{name}: expected a URL with scheme {' or '.join(schemes)}, got {value!r}"
    if parts.scheme in ("http", "https", "redis", "rediss") and not parts.hostname:
        return f"{name}: the URL names no host: {value!r}"
    return None


def address_problem(name: str, value: str) -> str | None:
    """What is wrong with `value` as a HOST:PORT (or gunicorn's unix:PATH) to listen on, or None."""
    host, sep, port = value.rpartition(":")
    if value.startswith("unix:") or (sep and host and port.isdigit() and 0 < int(port) < 65536):
        return None
    return f"{name}: expected HOST:PORT, got {value!r}"

