"""Command-line numbers out of range are usage errors (exit 2, naming the argument), never a
traceback from the database or the socket layer."""

from __future__ import annotations

import pytest

from app.cli import MAX_ID, build_parser


@pytest.mark.parametrize("argv", [
    ["jobs", "show", "99999999999999999999"], ["jobs", "retry", "99999999999999999999"],
    ["jobs", "requeue", "0"], ["token", "revoke", "-1"], ["jobs", "list", "--limit", "99999999999999999999"],
    ["requests", "list", "--limit", "-1"], ["serve", "--port", "99999"],
    ["worker", "--concurrency", "100000"],
])
def test_out_of_range_numbers_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    assert "must be from" in capsys.readouterr().err


def test_numbers_in_range_pass():
    assert build_parser().parse_args(["jobs", "show", str(MAX_ID)]).id == MAX_ID
    assert build_parser().parse_args(["serve", "--port", "0"]).port == 0
    assert build_parser().parse_args(["requests", "list", "--limit", "10000"]).limit == 10_000
