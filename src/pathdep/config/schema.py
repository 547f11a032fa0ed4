"""Loading a config file and the schema pass: one-line messages for what the schema refuses.

What it computes: :func:`load_config` reads a YAML file (naming the line of a syntax error);
:func:`schema_check` validates a mapping against ``schemas/config.schema.yaml`` (JSON
Schema 2020-12) and turns the first error (the shallowest path) into one line
``config: <key>: <what was expected>, got <what>`` (:func:`schema_error`): unknown keys
with a "did you mean", enums, types (a quoted or YAML-1.1 number is named as such), ranges,
sizes. :func:`key_error` turns a package ``ValueError("<key>: ...")`` into the same form at
the place the key was written.

How it was checked: ``tests/test_config.py`` (every schema block is closed) and
``tests/test_bad_input.py`` (each bad value gives one line naming the key through the real
``snakemake -n``).
"""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path
from typing import Any, Callable

import yaml

from pathdep.config.errors import ConfigError

__all__ = ["SCHEMA_PATH", "load_config", "load_schema", "schema_check", "schema_error", "key_error", "KEY_MSG", "value_text",
           "did_you_mean"]

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas" / "config.schema.yaml"


def load_config(path: str | Path) -> dict:
    """Read a YAML config file; errors name the file (and the line of a syntax error)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        raise ConfigError(f"{path}: not valid YAML{where}" + (f" ({problem})" if problem else "")) from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {value_text(cfg)}")
    return cfg


@functools.lru_cache(maxsize=1)
def load_schema() -> dict:
    """The parsed schema (parsed once: pure-Python YAML parsing of it costs ~15 ms). Not mutated."""
    return yaml.load(SCHEMA_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


_JSON_TYPES = {"object": "a mapping", "array": "a list", "number": "a number", "integer": "an integer",
               "string": "a string", "boolean": "true or false", "null": "null"}


def value_text(v: Any) -> str:
    """``string 'fast'``, ``null``, ``list [1, 2]``: a value for a one-line message."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    kind = {str: "string", int: "integer", float: "number", list: "list", dict: "mapping"}.get(type(v), type(v).__name__)
    r = repr(v)
    return f"{kind} {r if len(r) <= 80 else r[:77] + '...'}"


def _hint(v: Any) -> str:
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return ""
        if re.fullmatch(r"[+-]?\d+[eE][+-]?\d+", v.strip()):
            return f" (YAML 1.1 reads {v} as a string: write the mantissa with a dot, e.g. 1.0e-3)"
        return " (a quoted number is a string: remove the quotes)"
    return ""


def did_you_mean(word: str, options) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options``, or the empty string."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def schema_error(err, key_of: Callable[[tuple], str]) -> ConfigError:
    """One jsonschema error as a one-line :class:`ConfigError`; ``key_of(path)`` names the key."""
    path = tuple(str(p) for p in err.absolute_path)
    v = err.validator
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        name = extra[0] if extra else "?"
        hint = did_you_mean(name, allowed)
        if not path and "." in name:
            hint = " (a key cannot contain '.'; nest it, e.g. defaults: {optimizer: {lr: ...}})" + hint
        if not allowed:  # a block that takes no keys (yet): its schema description says why
            return ConfigError(f"config: {key_of(path + (name,))}: unknown key ("
                               f"{err.schema.get('description', 'this block takes no keys')})")
        return ConfigError(f"config: {key_of(path + (name,))}: unknown key{hint} (expected one of: {', '.join(allowed)})")
    if v == "required":
        m = re.match(r"'(.+)' is a required property", err.message)
        missing = m.group(1) if m else "?"
        return ConfigError(f"config: {key_of(path + (missing,))}: required key missing")
    key = key_of(path) if path else "top level"
    got = value_text(err.instance)
    if v == "enum":
        opts = ", ".join(str(o) for o in err.validator_value)
        hint = did_you_mean(err.instance, err.validator_value)
        return ConfigError(f"config: {key}: expected one of {opts}; got {got}{hint}")
    if v == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        return ConfigError(f"config: {key}: expected {' or '.join(_JSON_TYPES.get(t, t) for t in want)}, "
                           f"got {got}{_hint(err.instance)}")
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        return ConfigError(f"config: {key}: expected a number {word} {err.validator_value}, got {err.instance!r}")
    if v in ("minProperties", "minItems"):
        n = err.validator_value
        what = ("entry" if n == 1 else "entries") if v == "minProperties" else ("item" if n == 1 else "items")
        return ConfigError(f"config: {key}: expected at least {n} {what}, got {got}")
    if v == "maxItems":
        return ConfigError(f"config: {key}: expected at most {err.validator_value} items, got {got}")
    return ConfigError(f"config: {key}: {err.message}")


def schema_check(instance: Any, schema: dict, key_of: Callable[[tuple], str]) -> None:
    """Validate ``instance``; raise the first (shallowest) error as :func:`schema_error`."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance),
                    key=lambda e: (len(list(e.absolute_path)), str(list(e.absolute_path))))
    if errors:
        raise schema_error(errors[0], key_of)


KEY_MSG = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): (.*)$", re.S)


def key_error(exc: Exception, at: Callable[..., str]) -> ConfigError:
    """A package ``ValueError('optimizer.lr: ...')`` as ``ConfigError('config: <origin>: ...')``."""
    m = KEY_MSG.match(str(exc))
    if m:
        return ConfigError(f"config: {at(*m.group(1).split('.'))}: {m.group(2)}")
    return ConfigError(f"config: {at()}: {exc}")
