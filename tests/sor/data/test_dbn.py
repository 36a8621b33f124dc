"""DBN input gives exactly the snapshots of the same data's CSV export."""

from __future__ import annotations

import pytest

from sor.data.dbn import dbn_to_csv, is_dbn
from sor.data.loader import load_snapshots
from sor.errors import DataError
from tests.csvdata import SHARED_DATA

databento = pytest.importorskip("databento")
DBN = SHARED_DATA / "dbn"
FILES = [
    "XNAS.ITCH__test_data.mbp-1.dbn.zst",
    "XNAS.ITCH__test_data.mbp-10.dbn.zst",
    "GLBX.MDP3__test_data.mbp-10.dbn.zst",
    "EQUS.MINI__test_data.mbp-1.dbn.zst",
]


@pytest.mark.skipif(not DBN.exists(), reason="../shared/data not present")
@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("pretty", [True, False])
def test_dbn_equals_its_csv_export(tmp_path, name, pretty):
    store = databento.DBNStore.from_file(DBN / name)
    csv = tmp_path / "export.csv"
    store.to_csv(csv, pretty_px=pretty, pretty_ts=pretty, map_symbols=True)
    from_dbn, summary = load_snapshots(DBN / name)
    from_csv, _ = load_snapshots(csv)
    assert from_dbn.equals(from_csv)
    assert summary.path.endswith(name) and len(from_dbn) > 0


def test_dbn_written_by_the_encoder_loads(tmp_path):
    """A small MBP-1 file written with databento-dbn's encoder: two venues, exact prices."""
    import databento_dbn as dbn

    path = tmp_path / "tiny.dbn"
    metadata = dbn.Metadata(
        dataset="XNAS.ITCH",
        schema=dbn.Schema.MBP_1,
        start=1_722_519_392_000_000_000,
        stype_in=dbn.SType.RAW_SYMBOL,
        stype_out=dbn.SType.INSTRUMENT_ID,
        symbols=["AAPL"],
        partial=[],
        not_found=[],
        mappings=[],
        end=1_722_519_393_000_000_000,
    )

    def record(ts, publisher, bid, ask, bid_sz, ask_sz):
        level = dbn.BidAskPair(
            bid_px=int(bid * 1e9),
            ask_px=int(ask * 1e9),
            bid_sz=bid_sz,
            ask_sz=ask_sz,
            bid_ct=1,
            ask_ct=1,
        )
        return dbn.MBP1Msg(
            publisher_id=publisher,
            instrument_id=38,
            ts_event=ts,
            price=int(ask * 1e9),
            size=1,
            action=dbn.Action.ADD,
            side=dbn.Side.ASK,
            depth=0,
            ts_recv=ts + 1000,
            ts_in_delta=0,
            sequence=1,
            levels=level,
            flags=130,
        )

    records = [
        record(1_722_519_392_000_000_000, 2, 222.81, 222.83, 300, 200),
        record(1_722_519_392_500_000_000, 9, 222.80, 222.84, 100, 400),
    ]
    with open(path, "wb") as fh:
        fh.write(bytes(metadata))
        for r in records:
            fh.write(bytes(r))
    snaps, _ = load_snapshots(path)
    assert snaps.venues.tolist() == [2, 9]
    assert snaps.ask_px[1].tolist() == [222.83, 222.84]
    assert snaps.ask_sz[1].tolist() == [200, 400]


def test_not_dbn_and_wrong_schema(tmp_path):
    fake = tmp_path / "fake.dbn"
    fake.write_bytes(b"DBN\x01garbage")
    assert is_dbn(fake)
    with pytest.raises(DataError, match=r"fake\.dbn: not a readable DBN file"):
        dbn_to_csv(fake)
    if (DBN / "XNAS.ITCH__test_data.tbbo.dbn.zst").exists():
        with pytest.raises(DataError, match="DBN schema 'tbbo': expected one of"):
            load_snapshots(DBN / "XNAS.ITCH__test_data.tbbo.dbn.zst")
