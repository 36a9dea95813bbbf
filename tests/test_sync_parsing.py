"""The sync's batch parse pauses the cyclic garbage collector, and always restores it."""

from __future__ import annotations

import gc

import pytest

from app.sync.parsing import collector_paused, parse_batch


def test_the_collector_is_paused_for_a_batch_and_restored_after_nested_pauses():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # a second batch in another thread, say
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer batch is still running
    assert gc.isenabled()


def test_the_collector_is_restored_when_a_batch_fails_and_left_off_if_it_was_off():
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("parse crashed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_parse_batch_parses_and_hashes_every_file():
    parsed, hashes = parse_batch({"catalog/a.yaml": b'name: "a"\n', "catalog/b.yaml": b"[broken\n"})
    assert parsed["catalog/a.yaml"].identifier == "a"
    assert parsed["catalog/b.yaml"].document is None and not parsed["catalog/b.yaml"].ok
    assert set(hashes) == {"catalog/a.yaml", "catalog/b.yaml"}
    assert gc.isenabled()
