"""Command-line flags: each a dotted config key, shared by the commands that read a config."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sor.config import Config, load_config, parse_override, read_section
from sor.redaction import register

__all__ = [
    "DATA_FLAGS",
    "EVALUATION_FLAGS",
    "PARAM_FLAGS",
    "STREAM_FLAGS",
    "SWEEP_FLAGS",
    "add_flags",
    "config_from_args",
    "warn_unknown_venue_overrides",
]

# Flags of the commands that read data: flag -> dotted config key.
DATA_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--data": (
        "data.path",
        {
            "help": "Databento MBP-1/MBP-10 CSV (plain or .gz) or DBN (.dbn, .dbn.zst); "
            "required unless data.path is set in --config (sor run: default generated data)"
        },
    ),
    "--symbol": ("data.symbol", {"help": "instrument to use where the file holds several"}),
    "--start": (
        "window.start",
        {"help": "window start: ISO 8601, ns, or a time of day (on every day, window.timezone)"},
    ),
    "--end": ("window.end", {"help": "window end (inclusive)"}),
}
# Flags of the commands that evaluate a router and write results.
EVALUATION_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--out": ("output.out", {"help": "results JSON path (default results.json)"}),
    "--allocator": (
        "router.allocator",
        {"help": "static (model.md §3 split) or cont_kukanov (market + queue-aware limits)"},
    ),
    "--schedule": (
        "schedule.enabled",
        {
            "action": "store_const",
            "const": True,
            "help": "many parent orders (schedule.*) with a walk-forward split",
        },
    ),
}
STREAM_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--bootstrap": (
        "kafka.bootstrap",
        {"help": "Kafka bootstrap servers HOST:PORT[,...]; default: start the embedded broker"},
    ),
    "--topic": ("kafka.topic", {"help": "topic (default mock_l1_stream)"}),
    "--speed": (
        "stream.speed",
        {"type": float, "help": "pacing: 0 as fast as possible, 1 real time"},
    ),
}
SWEEP_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--trials": ("search.trials", {"type": int, "help": "number of Optuna trials"}),
    "--sampler": ("search.sampler", {"help": "grid, random, tpe, cmaes or qmc"}),
    "--seed": ("search.seed", {"type": int, "help": "sampler seed"}),
    "--storage": (
        "search.storage",
        {"help": "Optuna storage URL (sqlite:///sweep.db) or journal file"},
    ),
    "--study-name": ("search.study_name", {"help": "Optuna study name"}),
    "--resume": (
        "search.resume",
        {"action": "store_const", "const": True, "help": "continue the stored study"},
    ),
    "--ray-address": (
        "ray.address",
        {"help": "existing Ray cluster (default: $RAY_ADDRESS or local)"},
    ),
    "--num-cpus": ("ray.num_cpus", {"type": int, "help": "CPUs for a local Ray runtime"}),
}
PARAM_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--lambda-over": ("params.lambda_over", {"type": float, "help": "overfill penalty, $/share"}),
    "--lambda-under": (
        "params.lambda_under",
        {"type": float, "help": "underfill penalty, $/share"},
    ),
    "--theta-queue": ("params.theta_queue", {"type": float, "help": "queue-risk penalty, $/share"}),
    "--horizon-s": (
        "params.horizon_s",
        {"type": float, "help": "decision horizon T of the cont_kukanov router, seconds"},
    ),
}


def add_flags(
    parser: argparse.ArgumentParser,
    *groups: Mapping[str, tuple[str, dict[str, Any]]],
    required: Iterable[str] = (),
) -> None:
    """Add --config, --set and the flags of `groups` to `parser`.

    Flags named in `required` are listed, and shown in the usage line, as required: the command
    refuses to run without them unless the configuration file sets their key (argparse alone
    cannot know that, so the command checks it).
    """
    must = set(required)
    needed = (
        parser.add_argument_group("required (unless the --config file sets them)") if must else None
    )
    parser.add_argument("--config", help="YAML configuration (see configs/default.yaml)")
    if any(group is EVALUATION_FLAGS for group in groups):
        parser.add_argument(
            "--venues",
            metavar="FILE",
            help="fees and rebates: the venues section of this YAML file replaces the "
            "configuration's (e.g. configs/venues-us-equities.yaml)",
        )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set order.cap=displayed",
    )
    for group in groups:
        for flag, (key, kwargs) in group.items():
            if "action" not in kwargs:
                kwargs = {"metavar": key.rsplit(".", 1)[-1].upper(), **kwargs}
            target = needed if needed is not None and flag in must else parser
            target.add_argument(flag, dest=key.replace(".", "__"), **kwargs)
    if must:
        # argparse shows every flag of the form --name in brackets, as optional.
        shown = " ".join(f"{flag} {_metavar(groups, flag)}" for flag in sorted(must))
        parser.usage = f"%(prog)s {shown} [options]"


def _metavar(groups: Iterable[Mapping[str, tuple[str, dict[str, Any]]]], flag: str) -> str:
    for group in groups:
        if flag in group:
            key, kwargs = group[flag]
            return str(kwargs.get("metavar", key.rsplit(".", 1)[-1].upper()))
    raise KeyError(flag)


def config_from_args(
    args: argparse.Namespace, *groups: Mapping[str, tuple[str, dict[str, Any]]]
) -> Config:
    """Build the validated `Config` from --config, the dedicated flags, --venues (the venues
    section of another file) and --set overrides, in that order."""
    overrides: dict[str, Any] = {}
    for group in groups:
        for key, _ in group.values():
            overrides[key] = getattr(args, key.replace(".", "__"))
    if getattr(args, "venues", None) is not None:
        overrides["venues"] = read_section(args.venues, "venues")
    for text in args.set:
        key, value = parse_override(text)
        overrides[key] = value
    config = load_config(args.config, overrides)
    register(config.secrets())  # masked from here on in logs, error lines and results
    return config


def warn_unknown_venue_overrides(config: Config, venues: Iterable[int]) -> list[int]:
    """Warn about `venues.overrides` entries for publisher_ids the data does not have.

    Such an override is not an error (one configuration may serve several files), but its fee
    and rebate are used nowhere, which a typo in a publisher_id would otherwise hide.

    Returns:
        The publisher_ids overridden but absent, ascending.
    """
    present = sorted(int(v) for v in venues)
    absent = sorted(set(config.venues.overrides) - set(present))
    for venue in absent:
        logging.getLogger("sor").warning(
            "venues.overrides: publisher_id %d is not in the data (venues present: %s); its "
            "fee and rebate are not used",
            venue,
            ", ".join(map(str, present)),
        )
    return absent
