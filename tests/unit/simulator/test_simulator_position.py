"""Saving and resuming: a day produced again from the saved books is the same day."""

from __future__ import annotations

from datetime import date, timedelta

from strata.simulator.feed import Feed
from strata.simulator.position import Position, data_dir_of

START = date(2026, 2, 1)


def test_books_saved_at_the_start_of_a_day_produce_the_same_rest_of_the_run(settings, tmp_path):
    whole = Feed(9, 500, START, settings)
    list(whole.master_events())
    uninterrupted = []
    for n in range(40):
        uninterrupted += [e.id for e in whole.day_events(START + timedelta(days=n))]

    first = Feed(9, 500, START, settings)
    list(first.master_events())
    before = []
    for n in range(25):
        before += [e.id for e in first.day_events(START + timedelta(days=n))]
    path = tmp_path / "simulator.json"
    Position(9, 500, START, START, phase="stream", day=START + timedelta(days=25), books=first.state()).save(path)

    saved = Position.load(path)
    resumed = Feed(saved.seed, saved.customers, saved.start, settings)
    resumed.restore(saved.books, saved.day)
    after = []
    for n in range(25, 40):
        after += [e.id for e in resumed.day_events(START + timedelta(days=n))]
    assert before + after == uninterrupted
    assert len(set(uninterrupted)) == len(uninterrupted)


def test_position_round_trips_through_its_file(tmp_path):
    path = tmp_path / "simulator.json"
    Position(1, 10, START, START + timedelta(days=3), phase="stream", day=START, published=7,
             books={"arrays": {}}, closed_through="2026-01").save(path)
    loaded = Position.load(path)
    assert (loaded.seed, loaded.day, loaded.published, loaded.closed_through) == (1, START, 7, "2026-01")
    assert not list(tmp_path.glob("*.tmp"))


def test_data_dir_is_where_the_sqlite_database_lives(tmp_path):
    assert data_dir_of(f"sqlite+aiosqlite:///{tmp_path}/strata.db", "elsewhere") == tmp_path
    assert data_dir_of("postgresql+asyncpg://u:p@h/db", tmp_path) == tmp_path


def test_a_position_written_before_rms_were_recorded_counts_them_registered_once_streaming(tmp_path):
    import json

    for phase, registered in (("stream", True), ("master", False)):
        path = tmp_path / f"{phase}.json"
        Position(1, 10, START, START, phase=phase, day=START).save(path)
        body = json.loads(path.read_text())
        del body["rms_registered"]
        path.write_text(json.dumps(body))
        assert Position.load(path).rms_registered is registered
