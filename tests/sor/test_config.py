"""The one validated configuration: defaults, overrides and every kind of invalid value."""

from __future__ import annotations

from pathlib import Path

import pytest

from sor.config import Config, Distribution, load_config, parse_override
from sor.errors import ConfigError
from sor.vocabulary import PARAM_NAMES

ROOT = Path(__file__).resolve().parents[2]


def test_default_yaml_documents_exactly_the_code_defaults():
    assert load_config(ROOT / "configs" / "default.yaml") == Config()


def test_overrides_apply_after_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("search: {trials: 7, sampler: random}\norder: {cap: displayed}\n")
    config = load_config(path, {"search.trials": 9, "data.path": None})
    assert config.search.trials == 9 and config.search.sampler == "random"
    assert config.order.cap == "displayed"


def test_parse_override_reads_yaml_values():
    assert parse_override("search.trials=50") == ("search.trials", 50)
    assert parse_override("venues.overrides={2: {fee: 0.001}}") == (
        "venues.overrides",
        {2: {"fee": 0.001}},
    )
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        parse_override("search.trials")


def test_user_space_narrows_fixes_and_switches_sampler(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "search:\n  sampler: grid\n  space:\n"
        "    lambda_over: {value: 0.01}\n"
        "    lambda_under: {low: 0.0, high: 0.02, step: 0.01}\n"
        "    theta_queue: {choices: [0.0, 0.05]}\n"
    )
    search = load_config(path).search
    assert search.space["lambda_over"].grid() == [0.01]
    assert search.space["lambda_under"].grid() == [0.0, 0.01, 0.02]
    assert search.space["theta_queue"].grid() == [0.0, 0.05]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"search.trails": 3}, r"unknown key 'search.trails' \(did you mean 'search.trials'\?\)"),
        ({"ordr": {"size": 1}}, r"unknown key 'ordr' \(did you mean 'order'\?\)"),
        (
            {"order.size": 0},
            r"order.size: Input should be greater than 0 "
            r"\(allowed: 0 < order.size <= 1000000000; got 0\)",
        ),
        ({"order.step": -100}, r"order.step: Input should be greater than 0"),
        ({"order.cap": "dsplayed"}, r"order.cap: Input should be 'displayed' or 'order'"),
        ({"order.cost_basis": "bid"}, r"order.cost_basis: Input should be 'mid' or 'cash'"),
        ({"order.child_sizing": "x"}, r"order.child_sizing: Input should be 'available' or"),
        ({"order.fill_model": "x"}, r"order.fill_model: Input should be 'strict' or 'naive'"),
        ({"data.clock": "ts_in"}, r"data.clock: Input should be 'ts_event' or 'ts_recv'"),
        ({"data.crossed": "fix"}, r"data.crossed: Input should be 'error' or 'skip'"),
        ({"venues.fee": -0.1}, r"venues.fee: Input should be greater than or equal to 0"),
        ({"venues.overrides": {2: {"fe": 0.1}}}, r"unknown key 'venues.overrides.2.fe'"),
        ({"venues.overrides": {"nasdaq": {"fee": 0.1}}}, r"venues.overrides.nasdaq"),
        ({"baselines.twap_bucket_s": 0}, r"baselines.twap_bucket_s: Input should be greater"),
        ({"params.lambda_under": -1}, r"params.lambda_under: Input should be greater than or"),
        ({"kafka.topic": ""}, r"kafka.topic: String should have at least 1 character"),
        (
            {"kafka.security": {"sasl_pasword": "x"}},
            r"unknown kafka-python security settings "
            r"\['sasl_pasword'\]",
        ),
        ({"stream.speed": -1}, r"stream.speed: Input should be greater than or equal to 0"),
        ({"stream.idle_timeout_s": 0}, r"stream.idle_timeout_s: Input should be greater than 0"),
        ({"stream.batch_bytes": -1}, r"stream.batch_bytes: Input should be greater than or equal"),
        (
            {"stream.batch_bytes": 2_000_000},
            r"stream: .*`batch_bytes <= max_message_bytes` must hold",
        ),
        ({"stream.key_env": "MY KEY"}, r"stream.key_env: String should match pattern"),
        ({"ray.num_cpus": 0}, r"ray.num_cpus: Input should be greater than 0"),
        ({"search.trials": 0}, r"search.trials: Input should be greater than 0"),
        ({"search.sampler": "bayes"}, r"search.sampler: Input should be 'grid', 'random'"),
        ({"search.trials_per_round": 0}, r"search.trials_per_round: Input should be greater"),
        (
            {"search.space": {"lambda_ovr": {"low": 0, "high": 1}}},
            r"unknown parameters \['lambda_ovr'\].*did you mean 'lambda_over'",
        ),
        (
            {"search.space": {"theta_queue": {"low": 2, "high": 1}}},
            r"search.space.theta_queue: `low <= high` must hold, but got low=2.0, high=1.0",
        ),
        (
            {"search.space": {"theta_queue": {"low": 0, "high": 1, "log": True}}},
            r"a log distribution needs `low > 0`",
        ),
        (
            {"search.space": {"theta_queue": {"low": 0.5}}},  # the default high is 0.1
            r"search.space.theta_queue: `low <= high` must hold, but got low=0.5, high=0.1",
        ),
        (
            {"search.space": {"theta_queue": {"low": 0, "high": 1, "value": 1}}},
            r"give exactly one of",
        ),
        ({"search.space": {"theta_queue": {"choices": []}}}, r"`choices` must not be empty"),
        (
            {"search.space": {"theta_queue": {"low": 0.1, "high": 1, "log": True, "step": 0.1}}},
            r"`log` and `step` cannot be used together",
        ),
        (
            {"search.sampler": "grid"},  # static: lambda_over fixed by default, not in the list
            r"the grid sampler needs a finite grid, but \['lambda_under', 'theta_queue'\]",
        ),
        (
            {"search.sampler": "grid", "router.allocator": "cont_kukanov"},
            r"the grid sampler needs a finite grid, but \['lambda_over', 'lambda_under'",
        ),
        (
            {"search.space": {"theta_queue": {"value": float("nan")}}},
            r"search.space.theta_queue.value: Input should be a finite number",
        ),
        ({"venues.rebate": float("inf")}, r"venues.rebate: Input should be a finite number"),
        ({"window.start": 43200}, r"window.start: 43200 is not a time in ns since the epoch"),
        ({"router.allocator": "cont-kukanov"}, r"router.allocator: Input should be 'static' or"),
        ({"router.iterations": 0}, r"router.iterations: Input should be greater than 0"),
        ({"router.queue_model": "optimistic"}, r"router.queue_model: Input should be"),
        ({"router.cancel_power": -1}, r"router.cancel_power: Input should be greater than 0"),
        ({"params.horizon_s": 0}, r"params.horizon_s: Input should be greater than 0"),
        ({"schedule.train_fraction": 1.5}, r"schedule.train_fraction: Input should be less"),
        (
            {"schedule.interval_s": 0},
            r"schedule.interval_s: Input should be greater than or equal to 0.001",
        ),
        ({"schedule.horizon_s": -5}, r"schedule.horizon_s: Input should be greater than 0"),
        ({"schedule.enabled": "maybe"}, r"schedule.enabled: Input should be a valid boolean"),
        (
            {"search.space": {"horizon_s": {"low": 10, "high": 1}}},
            r"search.space.horizon_s: `low <= high` must hold",
        ),
        (
            {
                "router.allocator": "cont_kukanov",
                "search.sampler": "grid",
                "search.space": {
                    n: {"value": 0.1} for n in ("lambda_over", "lambda_under", "theta_queue")
                },
            },
            r"the grid sampler needs a finite grid, but \['horizon_s'\]",
        ),
    ],
)
def test_invalid_values_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(scalar)


def test_secrets_are_redacted():
    config = load_config(
        None, {"kafka.security": {"sasl_plain_password": "hunter2", "sasl_plain_username": "me"}}
    )
    redacted = config.redacted()
    assert redacted["kafka"]["security"] == {
        "sasl_plain_password": "***",
        "sasl_plain_username": "me",
    }
    assert "hunter2" not in str(redacted)


def test_half_a_range_keeps_the_default_other_end():
    config = load_config(None, {"search.space.lambda_over.low": 0.01})
    assert (config.search.space["lambda_over"].low, config.search.space["lambda_over"].high) == (
        0.01,
        0.1,
    )
    config = load_config(None, {"search.space": {"horizon_s": {"high": 10}}})
    assert config.search.space["horizon_s"].low == 1.0


def test_times_in_yaml_stay_text(tmp_path):
    """YAML 1.1 reads 12:00:00 as 43200 and an ISO time as a datetime: not here."""
    path = tmp_path / "window.yaml"
    path.write_text("window:\n  start: 12:00:00\n  end: 2024-10-21T13:00:00Z\n")
    config = load_config(path, {"order.size": "1_000"})
    assert config.window.start == "12:00:00" and config.window.end == "2024-10-21T13:00:00Z"
    assert load_config(None, {"window.start": parse_override("x=13:36:32")[1]}).window.start == (
        "13:36:32"
    )


def _inside(value: float, dist) -> bool:
    """Whether `value` is one the sweep can propose from `dist`."""
    if dist.value is not None:
        return value == dist.value
    if dist.choices is not None:
        return value in dist.choices
    return dist.low <= value <= dist.high


@pytest.mark.parametrize("allocator", ["static", "cont_kukanov"])
def test_backtest_defaults_lie_inside_the_default_search_space(allocator):
    # Both sides read from the config model: moving either default out of the other fails here.
    config = load_config(None, {"router.allocator": allocator})
    for name in PARAM_NAMES:
        value, dist = getattr(config.params, name), config.search.space[name]
        assert _inside(value, dist), (name, value, dist)


def test_static_default_space_fixes_lambda_over_and_cont_kukanov_searches_it():
    static = Config()
    assert static.router.allocator == "static"
    assert static.search.space["lambda_over"] == Distribution(value=static.params.lambda_over)
    assert list(static.search.space) == list(PARAM_NAMES)
    moved = load_config(None, {"params.lambda_over": 0.07})
    assert moved.search.space["lambda_over"].value == 0.07  # fixed at the params value
    ck = load_config(None, {"router.allocator": "cont_kukanov"})
    assert ck.search.space["lambda_over"] == Distribution(low=0.0, high=0.1)
    # the other parameters' defaults do not depend on the allocator
    for name in ("lambda_under", "theta_queue", "horizon_s"):
        assert static.search.space[name] == ck.search.space[name]
    # a dumped config (what Ray workers and the results JSON get) reads back the same
    assert Config.model_validate(static.model_dump()) == static
    assert Config.model_validate(ck.model_dump()) == ck


def test_a_user_space_setting_lambda_over_is_honoured_with_the_static_allocator(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("search:\n  space:\n    lambda_over: {low: 0.0, high: 0.1}\n")
    assert load_config(path).search.space["lambda_over"] == Distribution(low=0.0, high=0.1)
    fixed = load_config(None, {"search.space.lambda_over.value": 0.02})
    assert fixed.search.space["lambda_over"] == Distribution(value=0.02)
    narrowed = load_config(None, {"search.space.lambda_over.high": 0.03})
    assert narrowed.search.space["lambda_over"] == Distribution(low=0.0, high=0.03)


BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
"""


@pytest.mark.parametrize(
    "tail",
    [
        "order:\n  size: *g\n",
        "kafka:\n  security:\n    ssl_password: *g\n",
        "order:\n  size: &n 100\n  step: *n\n",
    ],
)
def test_yaml_anchors_and_aliases_are_refused_naming_file_and_line(tmp_path, tail):
    path = tmp_path / "bomb.yaml"
    path.write_text(("" if "&n" in tail else BOMB) + tail)
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    line = 2 if "&n" in tail else 1
    assert message.startswith(f"{path}:{line}: YAML anchors and aliases (&name, *name) are not")
    assert "\n" not in message


def test_yaml_alias_in_an_override_is_refused():
    with pytest.raises(ConfigError, match=r"^override order.size: YAML anchors and aliases"):
        parse_override("order.size=[&a 1, *a]")


def test_error_text_is_bounded():
    with pytest.raises(ConfigError) as refused:
        load_config(None, {"order.size": "x" * 1_000_000, "order.step": ["y" * 1000] * 1000})
    assert len(str(refused.value)) < 1000
    assert "(1,000,002 characters)" in str(refused.value)


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("order.size", 10**12, "0 < order.size <= 1000000000"),
        ("order.step", 10**12, "0 < order.step <= 1000000000"),
        ("venues.fee", 1e308, "0 <= venues.fee <= 1.0"),
        ("venues.rebate", 2.0, "0 <= venues.rebate <= 1.0"),
        ("venues.overrides.2.fee", 5.0, "-0.01 <= venues.overrides.2.fee <= 0.01"),
        ("baselines.twap_bucket_s", 1e-300, "0.001 <= baselines.twap_bucket_s <= 31622400"),
        ("schedule.twap_bucket_s", 1e-300, "0.001 <= schedule.twap_bucket_s <= 31622400"),
        ("schedule.bootstrap_samples", 10**9, "0 < schedule.bootstrap_samples <= 1000000"),
        ("params.lambda_under", 1e9, "0 <= params.lambda_under <= 1000.0"),
        ("params.horizon_s", 1e12, "0 < params.horizon_s <= 31622400"),
        ("router.iterations", 10**9, "0 < router.iterations <= 10000000"),
        ("search.trials", 10**9, "0 < search.trials <= 10000000"),
        ("search.seed", -1, "0 <= search.seed <= 4294967295"),
        ("search.seed", 2**32, "0 <= search.seed <= 4294967295"),
        ("data.max_bytes", 0, "0 < data.max_bytes <= 1099511627776"),
    ],
)
def test_numbers_outside_their_plausible_range_name_the_key_and_the_range(key, value, allowed):
    with pytest.raises(ConfigError) as refused:
        load_config(None, {key: value})
    message = str(refused.value)
    assert message.startswith(f"configuration: invalid configuration: {key}: Input should be")
    assert f"(allowed: {allowed}; got {value!r})" in message
    assert "\n" not in message


def test_out_of_range_values_exit_2_with_one_line(tmp_path):
    import subprocess
    import sys

    for setting in (
        "order.size=1000000000000",
        "venues.fee=1e308",
        "baselines.twap_bucket_s=1e-300",
    ):
        done = subprocess.run(
            [sys.executable, "-m", "sor", "backtest", "--set", setting],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        )
        assert done.returncode == 2, done.stderr
        key = setting.split("=")[0]
        assert done.stderr.startswith(f"sor: error: configuration: invalid configuration: {key}:")
        assert done.stderr.count("\n") == 1, done.stderr


def test_config_file_that_is_not_utf8_names_the_file_and_offset(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("order:\n  size: 100\n# caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"^{path}: not UTF-8 text: byte 0xe9 at offset 24 "):
        load_config(path)


def test_kafka_security_protocol_is_checked_as_a_value():
    with pytest.raises(
        ConfigError,
        match=r"kafka.security: security_protocol 'SSLX' is not one of \['PLAINTEXT', 'SSL', ",
    ):
        load_config(None, {"kafka.security": {"security_protocol": "SSLX"}})
    config = load_config(None, {"kafka.security": {"security_protocol": "SASL_SSL"}})
    assert config.kafka.security == {"security_protocol": "SASL_SSL"}


def test_kafka_security_values_are_single_values():
    with pytest.raises(ConfigError, match=r"kafka.security: \['ssl_cafile'\]: each setting is one"):
        load_config(None, {"kafka.security": {"ssl_cafile": ["a", "b"]}})


def test_data_max_bytes_reaches_the_loader():
    assert load_config(None, {"data.max_bytes": 12345}).load_options()["max_bytes"] == 12345
    assert load_config(None).load_options()["max_bytes"] == 2**30
