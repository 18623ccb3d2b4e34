"""Write-ahead log: framing round trip, torn tails, file naming, group commit."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mev_assets.ingest.records import (
    KIND_BLOCK,
    KIND_SIGHTING,
    KIND_TX,
    TX_COLUMNS,
    decode_record,
    encode_block,
    encode_sighting,
    encode_tx,
)
from mev_assets.ingest.wal import (
    HEADER,
    WriteAheadLog,
    decode_frames,
    frame,
    parse_wal_name,
    read_wal_file,
    wal_name,
)

KEY = "2026-01-02T03:04:00"


def _payloads(n: int) -> list[bytes]:
    return [f"record-{i}-".encode() * (i % 7 + 1) for i in range(n)]


@pytest.mark.timeout(30)
def test_round_trip_through_a_log_file(tmp_path):
    wal = WriteAheadLog(tmp_path / "wal")
    wf = wal.open(KEY, 3)
    payloads = _payloads(100)
    # in batches, as the collector writes them (one os.write per event-loop tick)
    for i in range(0, 100, 17):
        wf.write(b"".join(frame(p) for p in payloads[i : i + 17]))
    assert wal.sync() == 1
    assert wal.sync() == 0  # nothing new written
    assert wal.open_bytes() == sum(len(p) + HEADER.size for p in payloads)
    wal.close()
    [(key, seq, path)] = wal.files_on_disk()
    assert (key, seq) == (KEY, 3) and path.name == "window=2026-01-02T03:04:00.000003.log"
    replay = read_wal_file(path)
    assert replay.records == payloads and not replay.torn


@pytest.mark.timeout(60)
@hsettings(max_examples=60, deadline=None)
@given(payloads=st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=20), data=st.data())
def test_torn_tail_keeps_every_complete_record(payloads, data):
    blob = b"".join(frame(p) for p in payloads)
    cut = data.draw(st.integers(min_value=0, max_value=len(blob)))
    replay = decode_frames(blob[:cut])
    # exactly the records that fit completely before the cut
    ends, pos = [], 0
    for p in payloads:
        pos += HEADER.size + len(p)
        ends.append(pos)
    complete = sum(1 for e in ends if e <= cut)
    assert replay.records == payloads[:complete]
    assert replay.valid_bytes == (ends[complete - 1] if complete else 0)
    assert replay.torn == (replay.valid_bytes < cut)


@pytest.mark.timeout(30)
def test_corrupt_record_stops_replay_there(tmp_path):
    payloads = _payloads(5)
    blob = bytearray(b"".join(frame(p) for p in payloads))
    # flip a byte inside the third payload: crc mismatch -> records 0 and 1 survive
    offset = sum(HEADER.size + len(p) for p in payloads[:2]) + HEADER.size + 1
    blob[offset] ^= 0xFF
    path = tmp_path / wal_name(KEY, 0)
    path.write_bytes(bytes(blob))
    replay = read_wal_file(path)
    assert replay.records == payloads[:2] and replay.torn
    # garbage length (e.g. a zero-filled tail after a crash) is not a record either
    assert decode_frames(frame(b"ok") + b"\xff\xff\xff\xff" + b"\x00" * 8).records == [b"ok"]


@pytest.mark.timeout(30)
def test_log_names_and_retire(tmp_path):
    assert parse_wal_name(wal_name(KEY, 12)) == (KEY, 12)
    assert parse_wal_name("LOCK") is None and parse_wal_name("window=bad.1.log") is None
    wal = WriteAheadLog(tmp_path / "wal")
    a, b = wal.open(KEY, 0), wal.open(KEY, 1)
    assert wal.open(KEY, 0) is a  # one writer per (window, seq)
    a.write(frame(b"x"))
    b.write(frame(b"y"))
    wal.retire(a)
    assert [(k, s) for k, s, _ in wal.files_on_disk()] == [(KEY, 1)]
    # appending to an existing log (reopened after a restart) continues it
    wal.close()
    wal2 = WriteAheadLog(tmp_path / "wal")
    wal2.open(KEY, 1).write(frame(b"z"))
    wal2.close()
    assert read_wal_file(wal2.path_for(KEY, 1)).records == [b"y", b"z"]


@pytest.mark.timeout(30)
def test_syncer_thread_runs_and_calls_hooks(tmp_path):
    wal = WriteAheadLog(tmp_path / "wal", fsync_interval=0.01)
    calls = []
    wal.add_sync_hook(lambda: calls.append(1))
    wal.start_syncer()
    wf = wal.open(KEY, 0)
    wf.write(frame(b"durable"))
    import time

    deadline = time.monotonic() + 10
    while (wf._dirty or len(calls) < 3) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not wf._dirty and len(calls) >= 3
    wal.close()
    assert wf.closed
    assert os.path.exists(wal.path_for(KEY, 0))  # closing does not delete


@pytest.mark.timeout(30)
def test_record_codec_round_trip():
    tx = tuple(range(len(TX_COLUMNS) - 1)) + ("src",)
    assert decode_record(encode_tx(tx)) == (KIND_TX, tx)
    assert decode_record(encode_sighting((5, "0xab", "b"))) == (KIND_SIGHTING, (5, "0xab", "b"))
    blk = (1, 2, "0xh", "0xp", 3, "7", 4, 5, ["0xa", "0xb"], "s")
    kind, got = decode_record(encode_block(blk))
    assert kind == KIND_BLOCK and got == blk
    with pytest.raises(ValueError):
        decode_record(b"T[1,2]")
    with pytest.raises(ValueError):
        decode_record(b"Q[]")
