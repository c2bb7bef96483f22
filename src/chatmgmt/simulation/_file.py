"""Scenario files: a JSON (or, on Python 3.11+, TOML) description of a whole simulation run.

```json
{
  "duration_s": 14400, "warmup_s": 1800, "target_s": 20,
  "replications": 10, "seed": 1,
  "policies": ["round_robin", "saturation",
               {"name": "sticky", "settings": {"assignment": {"sticky": {"after_close_s": 3600}}}}],
  "arrivals": [
    {"group": "sales", "per_min": 2.5,
     "handle": {"dist": "lognormal", "mean_s": 240, "cv": 0.8},
     "patience": {"dist": "exponential", "mean_s": 120}},
    {"group": "support", "trace": [0, 12.5, 30.1], "handle": 300}
  ],
  "agents": [
    {"id": "ann", "slots": 3, "groups": ["sales", "support"], "shifts": [[0, 7200]]},
    {"count": 4, "prefix": "s", "slots": 2, "groups": ["support"]}
  ],
  "settings": {"assignment": {"saturation_tiebreak": "longest_since_assigned"}}
}
```

A distribution is a number (an exponential mean in seconds) or ``{"dist": "exponential",
"mean_s"}``, ``{"dist": "lognormal", "mean_s", "cv"}``, ``{"dist": "fixed", "value_s"}``,
``{"dist": "empirical", "values": [...]}`` or ``{"dist": "empirical", "file": "times.txt"}`` (one
value per line). A stream may add ``vip_share``, ``vip_level`` and ``returning_share``; an
agent ``reply`` and ``offer_reply`` distributions (its time to answer a chat, an offer) and
a ``decline_share``. A policy is a name or a variant:
``{"name", "strategy", "settings"}`` (settings merged over the file's). A trace is a list of
times, or of ``{"at_s", "handle_s", "patience_s"}`` objects, or ``"trace_file"``: a CSV with
a header naming ``at_s`` (and optionally ``handle_s``, ``patience_s``). Relative paths are
relative to the scenario file.
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ..errors import SettingsError
from ..settings import ChatSettings
from ._distributions import Distribution, Empirical, Exponential, Fixed, LogNormal
from ._policy import Variant
from ._scenario import (
    AgentSpec,
    ArrivalStream,
    PoissonArrivals,
    Scenario,
    ScenarioError,
    TraceArrivals,
)

__all__ = ["ScenarioFile", "load_scenario", "scenario_from_dict"]


@attrs.frozen
class ScenarioFile:
    """A loaded scenario plus the run options the file gave (None: not given)."""

    scenario: Scenario
    policies: tuple[str | Variant, ...] = ()
    replications: int | None = None
    seed: int | None = None
    confidence: float | None = None


def _fail(path: str, problem: str) -> ScenarioError:
    return ScenarioError(f"{path}: {problem}")


def _number(value: Any, path: str, *, minimum: float | None = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, f"must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise _fail(path, "must be finite")
    if minimum is not None and (x <= minimum if strict else x < minimum):
        raise _fail(path, f"must be {'>' if strict else '>='} {minimum:g}, got {x:g}")
    return x


def _int(value: Any, path: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(path, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _read_values(file: Path, path: str) -> list[float]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(path, f"cannot read {file}: {exc.strerror or exc}") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            try:
                out.append(float(line))
            except ValueError:
                raise _fail(path, f"{file}:{n}: not a number: {line!r}") from None
    return out


def _distribution(value: Any, path: str, base: Path) -> Distribution:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Exponential(_number(value, path, strict=True))
    if not isinstance(value, Mapping):
        raise _fail(path, f"must be a number (exponential mean) or an object, got {value!r}")
    kind = value.get("dist", "exponential")
    known = {
        "exponential": {"dist", "mean_s"},
        "lognormal": {"dist", "mean_s", "cv"},
        "fixed": {"dist", "value_s"},
        "empirical": {"dist", "values", "file"},
    }
    if kind not in known:
        raise _fail(f"{path}.dist", f"one of {', '.join(known)}, got {kind!r}")
    extra = set(value) - known[kind]
    if extra:
        raise _fail(path, f"unknown key(s) for {kind}: {', '.join(sorted(extra))}")
    try:
        if kind == "exponential":
            return Exponential(_number(value.get("mean_s"), f"{path}.mean_s", strict=True))
        if kind == "lognormal":
            return LogNormal(
                _number(value.get("mean_s"), f"{path}.mean_s", strict=True),
                _number(value.get("cv", 1.0), f"{path}.cv", strict=True),
            )
        if kind == "fixed":
            return Fixed(_number(value.get("value_s"), f"{path}.value_s"))
        if "file" in value:
            return Empirical(_read_values(base / str(value["file"]), f"{path}.file"))
        values = value.get("values")
        if not isinstance(values, list):
            raise _fail(path, "empirical needs 'values' (a list) or 'file'")
        return Empirical([_number(v, f"{path}.values[{i}]") for i, v in enumerate(values)])
    except ValueError as exc:
        if isinstance(exc, ScenarioError):
            raise
        raise _fail(path, str(exc)) from None


def _trace(item: Mapping[str, Any], path: str, base: Path) -> dict[str, Any]:
    rows: list[Mapping[str, Any]] = []
    if "trace_file" in item:
        file = base / str(item["trace_file"])
        try:
            with file.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames is None or "at_s" not in reader.fieldnames:
                    raise _fail(f"{path}.trace_file", f"{file}: needs a header with 'at_s'")
                for n, row in enumerate(reader, 2):
                    try:
                        rows.append(
                            {k: float(v) for k, v in row.items() if k and v not in (None, "")}
                        )
                    except ValueError:
                        raise _fail(f"{path}.trace_file", f"{file}:{n}: not a number") from None
        except OSError as exc:
            raise _fail(f"{path}.trace_file", f"cannot read {file}: {exc.strerror}") from None
    else:
        raw = item.get("trace")
        if not isinstance(raw, list):
            raise _fail(f"{path}.trace", "must be a list of times or of objects")
        for i, entry in enumerate(raw):
            rows.append(entry if isinstance(entry, Mapping) else {"at_s": entry})
            _number(rows[-1].get("at_s"), f"{path}.trace[{i}].at_s")
    rows = sorted(rows, key=lambda r: float(r["at_s"]))
    out: dict[str, Any] = {"times_s": [float(r["at_s"]) for r in rows]}
    for key in ("handle_s", "patience_s"):
        present = [key in r for r in rows]
        if any(present):
            if not all(present):
                raise _fail(f"{path}.trace", f"give {key} for every arrival or for none")
            out[key] = [_number(r[key], f"{path}.trace.{key}") for r in rows]
    return out


_STREAM_KEYS = {
    "group",
    "per_min",
    "rate_per_s",
    "handle",
    "patience",
    "trace",
    "trace_file",
    "vip_share",
    "vip_level",
    "returning_share",
}
_CUSTOMER_KEYS = ("vip_share", "vip_level", "returning_share")


def _stream(item: Any, path: str, base: Path) -> ArrivalStream:
    if not isinstance(item, Mapping):
        raise _fail(path, f"must be an object, got {item!r}")
    extra = set(item) - _STREAM_KEYS
    if extra:
        raise _fail(path, f"unknown key(s): {', '.join(sorted(extra))}")
    group = item.get("group", "")
    if not isinstance(group, str):
        raise _fail(f"{path}.group", f"must be a string, got {group!r}")
    handle = _distribution(item.get("handle", 300.0), f"{path}.handle", base)
    patience = (
        _distribution(item["patience"], f"{path}.patience", base)
        if item.get("patience") is not None
        else None
    )
    who = {k: item[k] for k in _CUSTOMER_KEYS if k in item}
    try:
        if "trace" in item or "trace_file" in item:
            return TraceArrivals(
                group=group, handle=handle, patience=patience, **_trace(item, path, base), **who
            )
        if "per_min" in item:
            rate = _number(item["per_min"], f"{path}.per_min", strict=True) / 60.0
        elif "rate_per_s" in item:
            rate = _number(item["rate_per_s"], f"{path}.rate_per_s", strict=True)
        else:
            raise _fail(path, "give per_min, rate_per_s, trace or trace_file")
        return PoissonArrivals(rate, group, handle, patience, **who)
    except ScenarioError as exc:
        if str(exc).startswith(path):
            raise
        raise _fail(path, str(exc)) from None


def _agents(item: Any, path: str, base: Path) -> list[AgentSpec]:
    if not isinstance(item, Mapping):
        raise _fail(path, f"must be an object, got {item!r}")
    known = {"id", "count", "prefix", "slots", "groups", "tier", "shifts"}
    extra = set(item) - known - {"reply", "offer_reply", "decline_share"}
    if extra:
        raise _fail(path, f"unknown key(s): {', '.join(sorted(extra))}")
    slots = _int(item.get("slots", 1), f"{path}.slots", 1)
    tier = item.get("tier", 0)
    if isinstance(tier, bool) or not isinstance(tier, int):
        raise _fail(f"{path}.tier", f"must be an integer, got {tier!r}")
    groups = item.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise _fail(f"{path}.groups", "must be a list of strings")
    shifts = item.get("shifts", [])
    if not isinstance(shifts, list) or not all(isinstance(s, list) and len(s) == 2 for s in shifts):
        raise _fail(f"{path}.shifts", "must be a list of [start_s, end_s] pairs")
    for i, (s, e) in enumerate(shifts):
        _number(s, f"{path}.shifts[{i}][0]")
        _number(e, f"{path}.shifts[{i}][1]")
    if "id" in item:
        if "count" in item:
            raise _fail(path, "give id (one agent) or count (several), not both")
        ids = [str(item["id"])]
    else:
        count = _int(item.get("count", 1), f"{path}.count", 1)
        prefix = str(item.get("prefix", "agent"))
        ids = [f"{prefix}{i + 1:02d}" for i in range(count)]
    answers: dict[str, Any] = {
        key: _distribution(item[key], f"{path}.{key}", base)
        for key in ("reply", "offer_reply")
        if key in item
    }
    if "decline_share" in item:
        answers["decline_share"] = item["decline_share"]
    try:
        return [AgentSpec(aid, slots, frozenset(groups), tier, shifts, **answers) for aid in ids]
    except ValueError as exc:
        raise _fail(path, str(exc)) from None


_TOP_KEYS = {
    "duration_s",
    "warmup_s",
    "target_s",
    "replications",
    "seed",
    "confidence",
    "policies",
    "arrivals",
    "agents",
    "settings",
}


def scenario_from_dict(data: Any, base_dir: str | Path = ".") -> ScenarioFile:
    """Build a :class:`ScenarioFile` from plain data (see the module docstring for the shape).

    Raises :class:`ScenarioError` naming the bad field.
    """
    base = Path(base_dir)
    if not isinstance(data, Mapping):
        raise ScenarioError(f"a scenario must be an object, got {type(data).__name__}")
    extra = set(data) - _TOP_KEYS
    if extra:
        raise ScenarioError(f"unknown key(s): {', '.join(sorted(extra))}")
    arrivals = data.get("arrivals")
    if not isinstance(arrivals, list) or not arrivals:
        raise ScenarioError("arrivals: must be a non-empty list")
    agents_raw = data.get("agents")
    if not isinstance(agents_raw, list) or not agents_raw:
        raise ScenarioError("agents: must be a non-empty list")
    streams = [_stream(item, f"arrivals[{i}]", base) for i, item in enumerate(arrivals)]
    agents = [a for i, item in enumerate(agents_raw) for a in _agents(item, f"agents[{i}]", base)]
    settings = None
    if "settings" in data:
        try:
            settings = ChatSettings.from_dict(data["settings"])
        except SettingsError as exc:
            raise ScenarioError(f"settings.{exc}") from None
    kwargs: dict[str, float] = {}
    for key in ("duration_s", "warmup_s", "target_s"):
        if key in data:
            kwargs[key] = _number(data[key], key)
    policies = data.get("policies", [])
    if isinstance(policies, str):
        policies = [policies]
    if not isinstance(policies, list):
        raise ScenarioError("policies: must be a list of policy names or variant objects")
    policies = [_policy(p, f"policies[{i}]") for i, p in enumerate(policies)]
    replications = _int(data["replications"], "replications", 1) if "replications" in data else None
    seed = _int(data["seed"], "seed", 0) if "seed" in data else None
    confidence = None
    if "confidence" in data:
        confidence = _number(data["confidence"], "confidence", strict=True)
        if confidence >= 1:
            raise ScenarioError(f"confidence: must be in (0, 1), got {confidence:g}")
    scenario = Scenario(streams, agents, settings=settings, **kwargs)
    return ScenarioFile(scenario, tuple(policies), replications, seed, confidence)


def _policy(item: Any, path: str) -> str | Variant:
    """A policy name, or ``{"name", "strategy", "settings"}``: a :class:`Variant`."""
    if isinstance(item, str):
        return item
    if not isinstance(item, Mapping):
        raise _fail(path, f"must be a policy name or an object, got {item!r}")
    extra = set(item) - {"name", "strategy", "settings"}
    if extra:
        raise _fail(path, f"unknown key(s): {', '.join(sorted(extra))}")
    name, strategy = item.get("name"), item.get("strategy", "round_robin")
    if not isinstance(name, str) or not name:
        raise _fail(f"{path}.name", "a variant needs a name (a non-empty string)")
    if not isinstance(strategy, str):
        raise _fail(f"{path}.strategy", f"must be a policy name, got {strategy!r}")
    settings = item.get("settings", {})
    if not isinstance(settings, Mapping):
        raise _fail(f"{path}.settings", "must be an object of settings")
    return Variant(settings, strategy, name)


def _load_data(file: Path) -> Any:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read {file}: {exc.strerror or exc}") from None
    if file.suffix.lower() == ".toml":
        if sys.version_info < (3, 11):
            raise ScenarioError(f"{file}: TOML scenarios need Python 3.11+; use JSON")
        tomllib: Any = importlib.import_module("tomllib")
        try:
            return tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"{file}: invalid TOML: {exc}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            f"{file}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{file}: not UTF-8 text") from None


def load_scenario(path: str | Path) -> ScenarioFile:
    """Read a scenario file (``.json``, or ``.toml`` on Python 3.11+)."""
    file = Path(path)
    data = _load_data(file)
    try:
        return scenario_from_dict(data, file.parent)
    except ScenarioError as exc:
        raise ScenarioError(f"{file}: {exc}") from None
