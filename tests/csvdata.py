"""Small hand-written Databento MBP-1 CSVs for tests, where the right answer is obvious."""

from __future__ import annotations

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

HEADER = (
    "ts_recv,ts_event,rtype,publisher_id,instrument_id,action,side,depth,price,size,flags,"
    "ts_in_delta,sequence,bid_px_00,ask_px_00,bid_sz_00,ask_sz_00,bid_ct_00,ask_ct_00,symbol"
)
BASE_NS = 1_722_519_392_000_000_000  # 2024-08-01T13:36:32Z


def iso(ns: int) -> str:
    """ns since the epoch as Databento's pretty timestamp."""
    import pandas as pd

    return pd.Timestamp(ns, unit="ns", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f") + (
        f"{ns % 1000:03d}Z"
    )


def row(
    t_ms: float,
    pub: int,
    bid: float | str,
    ask: float | str,
    bid_sz: int,
    ask_sz: int,
    *,
    action: str = "A",
    side: str = "N",
    price: float | str = "",
    size: int = 0,
    seq: int = 0,
    symbol: str = "AAPL",
    recv_delay_ns: int = 1000,
) -> str:
    """One MBP-1 CSV line at BASE_NS + t_ms milliseconds."""
    ts = BASE_NS + int(round(t_ms * 1e6))
    return (
        f"{iso(ts + recv_delay_ns)},{iso(ts)},1,{pub},38,{action},{side},0,{price},{size},0,0,"
        f"{seq},"
        f"{bid},{ask},{bid_sz},{ask_sz},1,1,{symbol}"
    )


def write_csv(path: Path, lines: list[str], header: str = HEADER) -> Path:
    """Write a header and lines to `path`."""
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    return path


def to_raw_style(src: Path, dst: Path, *, timestamps: bool = True) -> Path:
    """Rewrite a pretty CSV in Databento's raw style: 1e-9 integer prices, int64 max for an
    undefined price, and (with `timestamps`) integer ns timestamps."""
    import pandas as pd

    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    if timestamps:
        for col in ("ts_recv", "ts_event"):
            df[col] = pd.to_datetime(df[col], format="ISO8601").astype("int64").astype(str)
    for col in ("bid_px_00", "ask_px_00", "price"):
        df[col] = [
            "9223372036854775807" if v == "" else str(round(float(v) * 1e9)) for v in df[col]
        ]
    df.to_csv(dst, index=False)
    return dst


def two_generated_days(folder: Path, *, n_events: int = 6000) -> Path:
    """Two generated MBP-1 days in one file, 2024-08-01 and 2024-08-02, each from 14:29:30 UTC
    for about 80 s (6,000 events), the second at a different price level."""
    from sor.synth.generate import generate

    lines: list[str] = []
    for seed, (date, price) in enumerate((("2024-08-01", 222.80), ("2024-08-02", 230.10))):
        part = folder / f"{date}.csv"
        start = f"{date}T14:29:30Z"
        generate(part, n_events=n_events, schema="mbp-1", seed=seed, start=start, price=price)
        header, *rows = part.read_text().splitlines()
        lines += [header] * (not lines) + rows
    path = folder / "two_days.csv"
    path.write_text("\n".join(lines) + "\n")
    return path
