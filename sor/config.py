"""The one validated configuration: YAML file + command-line overrides -> `Config`.

YAML is read here and nowhere else. Every key is documented in the README and in
configs/default.yaml; unknown keys and out-of-range values raise `ConfigError` naming the key.
"""

from __future__ import annotations

import difflib
import math
import re
import zoneinfo
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from sor.errors import ConfigError
from sor.redaction import is_secret_key, redact_mapping, url_secrets
from sor.vocabulary import (
    ALLOCATOR_PARAMS,
    ALLOCATORS,
    DEFAULT_FEE,
    DEFAULT_MAX_DATA_BYTES,
    DEFAULT_REBATE,
    MAX_SIZE,
    PARAM_NAMES,
    SEARCHED_PARAMS,
    Allocator,
    Cap,
    ChildSizing,
    Clock,
    CostBasis,
    Crossed,
    FillModel,
    QueueModel,
    SamplerName,
)

__all__ = [
    "BaselinesConfig",
    "Config",
    "DataConfig",
    "Distribution",
    "KafkaConfig",
    "OrderConfig",
    "OutputConfig",
    "ParamsConfig",
    "RayConfig",
    "RouterConfig",
    "ScheduleConfig",
    "SearchConfig",
    "StreamConfig",
    "VenueOverride",
    "VenuesConfig",
    "WindowConfig",
    "load_config",
    "parse_override",
    "read_section",
    "read_yaml",
]


# Plausible ranges of numeric settings. A value outside is a typo or a unit mistake, never a
# market, and would overflow the integer arithmetic of the schedules or exhaust the memory long
# before it gave an answer.
MAX_FEE = 1.0  #: dollars per share, fees and rebates
MAX_PENALTY = 1000.0  #: dollars per share, the router's penalties
MAX_SECONDS = 366 * 86400  #: seconds, durations: a year
MIN_BUCKET_S = 0.001  #: seconds, the smallest TWAP bucket
MAX_TRIALS = 10**7  #: trials of a sweep, and stochastic-approximation steps
MAX_SAMPLES = 10**6  #: outflow windows, bootstrap resamples
MAX_SEED = 2**32 - 1  #: numpy's and Optuna's seeds are unsigned 32-bit
MAX_READ_BYTES = 2**40  #: data.max_bytes, a TiB
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")  #: kafka-python's
_MAX_SHOWN = 200  #: characters of a refused value shown in an error


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(_Section):
    """Where the market data comes from and how it is read (model.md §1-§2)."""

    path: str | None = None  # None: the bundled generated data set
    symbol: str | None = None
    clock: Clock = "ts_event"
    crossed: Crossed = "error"
    # bytes of content (after decompression) read at most; a larger file is refused as it is read
    max_bytes: int = Field(DEFAULT_MAX_DATA_BYTES, gt=0, le=MAX_READ_BYTES)


class WindowConfig(_Section):
    """Evaluation window on ts_event, inclusive: ISO 8601, ns, or a time of day (on every day).

    `timezone` (an IANA name) is the zone of a time-of-day bound and of the calendar days of
    multi-day data (sor.data.days).
    """

    start: str | int | None = None
    end: str | int | None = None
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                "not a time zone: expected an IANA name such as 'UTC' or 'America/New_York'"
            ) from None
        return value

    @field_validator("start", "end")
    @classmethod
    def _plausible_ns(cls, value: str | int | None) -> str | int | None:
        # ns since the epoch for the years 2000-2099; anything else is a mistake, e.g. a time
        # of day that some YAML reader turned into seconds (12:00:00 -> 43200)
        if isinstance(value, int) and not 946_684_800 * 10**9 <= value < 4_102_444_800 * 10**9:
            raise ValueError(
                f"{value} is not a time in ns since the epoch (years 2000-2099); write a time of "
                "day or an ISO time as text, e.g. '13:36:32' or '2024-08-01T13:36:32Z'"
            )
        return value


class OrderConfig(_Section):
    """The parent order and the router's execution rules (model.md §3-§4)."""

    size: int = Field(5000, gt=0, le=MAX_SIZE)
    step: int = Field(100, gt=0, le=MAX_SIZE)
    cap: Cap = "order"
    cost_basis: CostBasis = "mid"
    child_sizing: ChildSizing = "available"
    fill_model: FillModel = "strict"
    # Off by default: a cap on filled shares over the market's traded volume since arrival...
    max_participation: float | None = Field(None, gt=0, le=1)
    # ... and Y of a temporary impact on taken shares (sigma and v estimated from the data).
    temporary_impact: float | None = Field(None, gt=0, le=10)


class VenueOverride(_Section):
    """Fee and rebate of one publisher_id, dollars per share. At an inverted venue both are
    negative: the taker is paid (fee < 0) and the maker pays (rebate < 0)."""

    fee: float | None = Field(None, ge=-0.01, le=0.01)
    rebate: float | None = Field(None, ge=-0.01, le=0.01)


class VenuesConfig(_Section):
    """Default fee and rebate, and per-publisher_id overrides."""

    fee: float = Field(DEFAULT_FEE, ge=0, le=MAX_FEE)
    rebate: float = Field(DEFAULT_REBATE, ge=0, le=MAX_FEE)
    overrides: dict[int, VenueOverride] = Field(default_factory=dict)


class BaselinesConfig(_Section):
    """Benchmark settings (model.md §5)."""

    twap_bucket_s: float = Field(60.0, ge=MIN_BUCKET_S, le=MAX_SECONDS)


class ParamsConfig(_Section):
    """Router parameters for `sor backtest`: penalties in dollars per share, horizon in seconds.

    The defaults lie in the middle of the default search space (`SearchConfig.space`): 0.05
    in 0.0-0.1 for each penalty, 15 s in 1-30 s for the horizon (its middle, 15.5 s, to a whole
    second). With the static allocator the sweep also fixes lambda_over here unless
    `search.space` sets it (model.md §3).
    """

    lambda_over: float = Field(0.05, ge=0, le=MAX_PENALTY)
    lambda_under: float = Field(0.05, ge=0, le=MAX_PENALTY)
    theta_queue: float = Field(0.05, ge=0, le=MAX_PENALTY)
    horizon_s: float = Field(15.0, gt=0, le=MAX_SECONDS)  # T of the Cont & Kukanov router


class RouterConfig(_Section):
    """Which allocator routes, and the fixed settings of the Cont & Kukanov one."""

    allocator: Allocator = "static"
    iterations: int = Field(1000, gt=0, le=MAX_TRIALS)  # stochastic-approximation steps
    lookback_s: float = Field(120.0, gt=0, le=MAX_SECONDS)  # past data the outflow samples use
    max_samples: int = Field(100, gt=0, le=MAX_SAMPLES)  # outflow windows per decision, at most
    queue_model: QueueModel = "conservative"
    cancel_power: float = Field(2.0, gt=0, le=100)  # exponent of the probabilistic queue model


class ScheduleConfig(_Section):
    """Many parent orders over the window, and the walk-forward split."""

    enabled: bool = False
    interval_s: float = Field(30.0, ge=0.001, le=MAX_SECONDS)  # a parent order every interval_s
    horizon_s: float = Field(60.0, gt=0, le=MAX_SECONDS)  # ... to be done within horizon_s
    twap_bucket_s: float = Field(10.0, ge=MIN_BUCKET_S, le=MAX_SECONDS)  # of each parent order
    train_fraction: float = Field(0.5, ge=0, le=1)  # arrivals in this first part tune
    # Whole days instead: tune on the orders of the first train_days days, report the rest.
    train_days: int | None = Field(None, ge=1)
    bootstrap_samples: int = Field(2000, gt=0, le=MAX_SAMPLES)  # resamples, 95% intervals


class KafkaConfig(_Section):
    """Broker connection; bootstrap None starts the embedded broker."""

    bootstrap: str | None = None
    topic: str = Field("mock_l1_stream", min_length=1)
    # kafka-python client settings passed through as they are: security_protocol, ssl_cafile,
    # ssl_certfile, ssl_keyfile, sasl_mechanism, sasl_plain_username, sasl_plain_password, ...
    security: dict[str, Any] = Field(default_factory=dict)

    @field_validator("security")
    @classmethod
    def _known_security_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        allowed = {
            "security_protocol",
            "ssl_cafile",
            "ssl_certfile",
            "ssl_keyfile",
            "ssl_password",
            "ssl_check_hostname",
            "ssl_crlfile",
            "sasl_mechanism",
            "sasl_plain_username",
            "sasl_plain_password",
            "sasl_kerberos_service_name",
            "sasl_kerberos_domain_name",
            "sasl_oauth_token_provider",
        }
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(
                f"unknown kafka-python security settings {unknown}; allowed: {sorted(allowed)}"
            )
        protocol = value.get("security_protocol")
        if protocol is not None and protocol not in SECURITY_PROTOCOLS:
            raise ValueError(
                f"security_protocol {_shown(protocol)} is not one of {list(SECURITY_PROTOCOLS)}"
            )
        # One value per setting: a path, a name, a password, a number or true/false.
        odd = sorted(
            key
            for key, v in value.items()
            if not isinstance(v, (str, int, float, bool)) or (isinstance(v, str) and len(v) > 4096)
        )
        if odd:
            raise ValueError(
                f"{odd}: each setting is one value: text of at most 4,096 characters, a number "
                "or true/false"
            )
        return value


class StreamConfig(_Section):
    """Producer pacing and batching, consumer patience, and where the signing key comes from."""

    speed: float = Field(0.0, ge=0)  # 0: as fast as the broker takes; 1: real time
    idle_timeout_s: float = Field(30.0, gt=0)  # also the consumer's patience with a lost broker
    connect_timeout_s: float = Field(30.0, gt=0)  # keep trying while no broker answers at start
    reconnect_timeout_s: float = Field(30.0, ge=0)  # producer: resume after losing the broker
    max_message_bytes: int = Field(1_000_000, gt=0)
    # Events packed into one message up to this many bytes; 0: one event per message.
    batch_bytes: int = Field(524_288, ge=0)
    # `sor produce`: the environment variable holding the signing key (never the key itself);
    # `sor run` signs with a fresh key of its own.
    key_env: str = Field("SOR_STREAM_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _batch_fits(self) -> StreamConfig:
        if self.batch_bytes > self.max_message_bytes:
            raise ValueError(
                f"`batch_bytes <= max_message_bytes` must hold, but got batch_bytes="
                f"{self.batch_bytes}, max_message_bytes={self.max_message_bytes}"
            )
        return self


class RayConfig(_Section):
    """Ray runtime: None address starts a local one."""

    address: str | None = None
    num_cpus: int | None = Field(None, gt=0)


class Distribution(_Section):
    """One parameter's search distribution: low/high (+ log or step), choices, or a fixed value."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0)
    choices: list[float] | None = None
    value: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Distribution:
        forms = [
            self.low is not None or self.high is not None,
            self.choices is not None,
            self.value is not None,
        ]
        if sum(forms) != 1:
            raise ValueError("give exactly one of `low`/`high`, `choices` or `value`")
        if self.choices is not None and len(self.choices) == 0:
            raise ValueError("`choices` must not be empty")
        if forms[0]:
            if self.low is None or self.high is None:
                raise ValueError("`low` and `high` go together")
            if not self.low <= self.high:
                raise ValueError(
                    f"`low <= high` must hold, but got low={self.low}, high={self.high}"
                )
            if self.log and self.low <= 0:
                raise ValueError(f"a log distribution needs `low > 0`, but got low={self.low}")
            if self.log and self.step is not None:
                raise ValueError("`log` and `step` cannot be used together")
        return self

    def grid(self) -> list[float] | None:
        """The finite set of values for the grid sampler, or None where it is continuous."""
        if self.value is not None:
            return [self.value]
        if self.choices is not None:
            return list(self.choices)
        # `_consistent`: with neither `value` nor `choices`, `low` and `high` are both set
        assert self.low is not None and self.high is not None
        if self.step is not None:
            n = int(math.floor((self.high - self.low) / self.step + 1e-9))
            return [round(self.low + i * self.step, 12) for i in range(n + 1)]
        if self.low == self.high:
            return [self.low]
        return None


def _search_ranges() -> dict[str, Distribution]:
    """Each parameter's default distribution where the sweep varies it."""
    space = {name: Distribution(low=0.0, high=0.1) for name in PARAM_NAMES}
    space["horizon_s"] = Distribution(low=1.0, high=30.0)
    return space


#: Parameters whose default distribution depends on the allocator: some allocator uses them
#: though they cannot change its answer (`sor.vocabulary.SEARCHED_PARAMS`): lambda_over.
_PER_ALLOCATOR = tuple(
    name
    for name in PARAM_NAMES
    if any(name in ALLOCATOR_PARAMS[a] and name not in SEARCHED_PARAMS[a] for a in ALLOCATORS)
)


def _default_space() -> dict[str, Distribution]:
    """The default `search.space` before `Config` adds the allocator's `_PER_ALLOCATOR` ones."""
    return {name: d for name, d in _search_ranges().items() if name not in _PER_ALLOCATOR}


class SearchConfig(_Section):
    """The Optuna sweep."""

    trials: int = Field(200, gt=0, le=MAX_TRIALS)
    sampler: SamplerName = "tpe"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    storage: str | None = None  # e.g. sqlite:///sweep.db or a journal file path
    study_name: str = "sor"
    resume: bool = False  # continue a stored study that already has trials
    # Trials proposed together before any of their results reach the sampler. Fixed (not the
    # number of workers) so that a seeded sweep gives the same trials on 1 worker or 100.
    trials_per_round: int = Field(16, gt=0, le=MAX_TRIALS)
    # Every parameter once `Config` has added those whose default depends on the allocator
    # (`_complete_space`); a parameter set here is searched as set, whatever the allocator.
    space: dict[str, Distribution] = Field(default_factory=_default_space)

    @field_validator("space", mode="before")
    @classmethod
    def _fill_half_ranges(cls, space: Any) -> Any:
        # `--set search.space.lambda_over.low=0.01` gives {low: 0.01}: keep the default high
        # (and vice versa) rather than refusing a range the user only meant to narrow.
        if not isinstance(space, dict):
            return space
        defaults = _search_ranges()
        out = dict(space)
        for name, dist in space.items():
            if (
                name in defaults
                and isinstance(dist, dict)
                and dist
                and set(dist) <= {"low", "high", "log", "step"}
                and ("low" in dist) != ("high" in dist)
            ):
                default = defaults[name]
                out[name] = {"low": default.low, "high": default.high, **dist}
        return out

    @field_validator("space")
    @classmethod
    def _all_params(cls, space: dict[str, Distribution]) -> dict[str, Distribution]:
        unknown = sorted(set(space) - set(PARAM_NAMES))
        if unknown:
            hints = {u: difflib.get_close_matches(u, PARAM_NAMES, n=1) for u in unknown}
            hint = "; ".join(f"{u!r}: did you mean {h[0]!r}?" for u, h in hints.items() if h)
            raise ValueError(
                f"unknown parameters {unknown}; expected {list(PARAM_NAMES)}"
                + (f" ({hint})" if hint else "")
            )
        full = _default_space()
        full.update(space)
        # lambda_over may be missing here: `Config` adds it for the configured allocator
        return {name: full[name] for name in PARAM_NAMES if name in full}


class OutputConfig(_Section):
    """Where results go."""

    out: str = "results.json"


class Config(_Section):
    """Everything a user sets."""

    data: DataConfig = Field(default_factory=DataConfig)
    window: WindowConfig = Field(default_factory=WindowConfig)
    order: OrderConfig = Field(default_factory=OrderConfig)
    venues: VenuesConfig = Field(default_factory=VenuesConfig)
    baselines: BaselinesConfig = Field(default_factory=BaselinesConfig)
    params: ParamsConfig = Field(default_factory=ParamsConfig)
    router: RouterConfig = Field(default_factory=RouterConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _complete_space(self) -> Config:
        """Add what `search.space` leaves to the allocator (runs before `_grid_is_finite`).

        A parameter that can change the allocator's answer is searched over its default range;
        one that cannot (lambda_over with the static allocator: its cost never overfills,
        model.md §3) is fixed at its `params` value, so that the sweep does not spend trials on
        it, the importance plot does not show it, and `best_parameters` still lists it.
        """
        space = self.search.space
        missing = [name for name in PARAM_NAMES if name not in space]
        if missing:
            ranges = _search_ranges()
            searched = SEARCHED_PARAMS[self.router.allocator]
            added = {
                name: ranges[name]
                if name in searched
                else Distribution(value=float(getattr(self.params, name)))
                for name in missing
            }
            self.search.space = {**space, **added}  # validated: in PARAM_NAMES order
        return self

    @model_validator(mode="after")
    def _grid_is_finite(self) -> Config:
        search = self.search
        if search.sampler == "grid":
            used = ALLOCATOR_PARAMS[self.router.allocator]
            continuous = [n for n in used if search.space[n].grid() is None]
            if continuous:
                raise ValueError(
                    f"search.space: the grid sampler needs a finite grid, but {continuous} are "
                    "continuous: give them `step`, `choices` or `value`"
                )
        return self

    def load_options(self) -> dict[str, Any]:
        """The `sor.data.loader.load_updates` / `load_snapshots` keywords this config sets."""
        window, data = self.window, self.data
        return {
            "start": window.start,
            "end": window.end,
            "symbol": data.symbol,
            "clock": data.clock,
            "crossed": data.crossed,
            "max_bytes": data.max_bytes,
            "timezone": window.timezone,
        }

    def redacted(self) -> dict[str, Any]:
        """The configuration as a dict with secrets masked: every key named with a secret word
        (passwords, tokens, key files) and the password and secret parameters of every URL."""
        out: dict[str, Any] = redact_mapping(self.model_dump(mode="json"))
        return out

    def secrets(self) -> list[str]:
        """Every secret value this configuration holds, for `sor.redaction.register`: the values
        of keys named with a secret word (kafka.security's sasl_plain_password, ssl_password,
        ...) and the passwords and secret query parameters of URLs (search.storage)."""
        found: list[str] = []

        def walk(value: Any, secret: bool) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    walk(item, secret or is_secret_key(key))
            elif isinstance(value, list | tuple):
                for item in value:
                    walk(item, secret)
            elif isinstance(value, str):
                if secret:
                    found.append(value)
                found.extend(url_secrets(value))

        walk(self.model_dump(mode="python"), False)
        return list(dict.fromkeys(s for s in found if s))


def _shown(value: Any) -> str:
    """`repr(value)`, cut to `_MAX_SHOWN` characters."""
    text = repr(value)
    if len(text) > _MAX_SHOWN:
        text = f"{text[:_MAX_SHOWN]}... ({len(text):,} characters)"
    return text


def _field_at(loc: tuple[int | str, ...]) -> FieldInfo | None:
    """The field a validation error's location points at, through sections and the values of
    dicts of sections (`venues.overrides.<id>.fee`)."""
    model: type[BaseModel] = Config
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return None
        if not parts:
            return field
        annotation = field.annotation
        if get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
            parts = parts[1:]  # the dict's key
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return None


def _allowed_range(loc: tuple[int | str, ...]) -> str:
    """ "0 < order.size <= 1000000000": the bounds of the field at `loc`, or "" without any."""
    field = _field_at(loc)
    low = high = ""
    for bound in field.metadata if field is not None else []:  # annotated_types.Gt, Ge, ...
        if getattr(bound, "gt", None) is not None:
            low = f"{bound.gt} < "
        elif getattr(bound, "ge", None) is not None:
            low = f"{bound.ge} <= "
        elif getattr(bound, "lt", None) is not None:
            high = f" < {bound.lt}"
        elif getattr(bound, "le", None) is not None:
            high = f" <= {bound.le}"
    if not (low or high):
        return ""
    return f"{low}{'.'.join(map(str, loc))}{high}"


def _known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return []
    return list(model.model_fields)


_RANGE_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")
_MAX_ERRORS = 20  #: errors listed; the rest are counted


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    errors = exc.errors()
    for error in errors[:_MAX_ERRORS]:
        loc = tuple(error["loc"])
        key = ".".join(str(p) for p in loc)
        if error["type"] == "extra_forbidden":
            known = _known_keys(Config, loc)
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = (
                f" (did you mean {'.'.join([*map(str, loc[:-1]), close[0]])!r}?)" if close else ""
            )
            lines.append(f"unknown key {key!r}{hint}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            allowed = _allowed_range(loc) if error["type"] in _RANGE_ERRORS else ""
            allowed = f"allowed: {allowed}; " if allowed else ""
            lines.append(f"{key}: {message} ({allowed}got {_shown(error.get('input'))})")
    if len(errors) > _MAX_ERRORS:
        lines.append(f"... and {len(errors) - _MAX_ERRORS} more")
    return f"{source}: invalid configuration: " + "; ".join(lines)


def _set_path(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


class _AliasRefused(yaml.YAMLError):
    """A YAML anchor or alias, at `line` (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__(f"line {line}")
        self.line = line


class _Loader(yaml.SafeLoader):
    """YAML without the YAML 1.1 surprises a trading config would hit, and without aliases.

    Plain PyYAML reads `12:00:00` as the base-60 integer 43200 and `2024-10-21T12:00:00Z` as a
    datetime: a window written as a time of day would silently become 43,200 ns after 1970. Here
    both stay strings; every other scalar resolves as usual.

    Anchors and aliases (`&a`, `*a`) are refused: a few hundred bytes of nested aliases expand
    to gigabytes (a "billion laughs"), and a configuration has no need of them.
    """

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Refuse an alias or an anchored node; else compose as PyYAML does."""
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _AliasRefused(event.start_mark.line + 1)
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag
        not in (
            "tag:yaml.org,2002:timestamp",
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
        )  # fmt: skip
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


_NO_ALIASES = "YAML anchors and aliases (&name, *name) are not accepted: write each value out"


def read_yaml(text: str) -> Any:
    """Parse YAML text with `_Loader` (times of day and ISO times stay strings)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line: where (line and column, 1-based) and what."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else problem


def parse_override(text: str) -> tuple[str, Any]:
    """Split a `key.path=value` override; the value is read as YAML (numbers, null, lists)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, value = text.split("=", 1)
    try:
        return key.strip(), read_yaml(value) if value.strip() else None
    except _AliasRefused:
        raise ConfigError(f"override {key.strip()}: {_NO_ALIASES}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"override {text!r}: value is not valid YAML: {_yaml_problem(exc)}"
        ) from None


def read_section(path: str | Path, section: str) -> dict[str, Any]:
    """The mapping under the top-level key `section` of the YAML file at `path`, unvalidated
    (`load_config` validates it where it is used).

    Raises:
        ConfigError: unreadable file, bad YAML, or no mapping under `section`; names the file.
    """
    raw = _read_yaml_file(path)
    value = raw.get(section)
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a {section!r} section (a mapping) at the top level")
    return value


def _read_yaml_file(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a UTF-8 YAML file without aliases; ConfigError naming it."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text: byte {data[exc.start]:#04x} at offset {exc.start} "
            "(save the configuration as UTF-8)"
        ) from None
    try:
        raw = read_yaml(text) or {}
    except _AliasRefused as exc:
        raise ConfigError(f"{path}:{exc.line}: {_NO_ALIASES}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return raw


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read a YAML config (None: defaults), apply dotted overrides, validate.

    Args:
        path: YAML file; keys absent from it take their defaults.
        overrides: {"search.trials": 50, ...}, applied after the file (None values are skipped).

    Raises:
        ConfigError: unreadable file, bad YAML, unknown key or invalid value; names the key.
    """
    raw: dict[str, Any] = {}
    source = str(path) if path else "configuration"
    if path is not None:
        raw = _read_yaml_file(path)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_path(raw, key, value)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None
