"""Field regexps: simple patterns match without a clock, every other one within the time budget."""

from __future__ import annotations

import re

import pytest

from app.catalog.rules import RegexpTooSlow, _linear, fullmatch


@pytest.mark.parametrize("pattern", ["^[a-z][a-z0-9-]*$", "^[a-z]+$", "^.*$", "a{2,5}", "(?i)^ab*$",
                                     "^[a-z0-9_]{3,40}$", "a|b"])
def test_patterns_with_one_simple_repeat_are_linear(pattern):
    assert _linear(pattern)


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|a)+$", r"^\d+\.\d+$", "a?a?a?aaa", r"(a)\1",
                                     "(?=a)a*", "x{1000}y*", "[", "(?:ab{2}){3}"])
def test_groups_alternation_lookaround_and_competing_repeats_keep_the_time_limit(pattern):
    assert not _linear(pattern)


@pytest.mark.parametrize(("pattern", "value"), [
    ("^[a-z][a-z0-9-]*$", "customer-portal"), ("^[a-z][a-z0-9-]*$", "Customer"),
    ("^[a-z][a-z0-9-]*$", "a\n"), ("^.*$", "x\ny"), ("(?i)^ab*$", "ABBB"), ("a{2,5}", "aaaaaa"),
    (r"^\d+\.\d+$", "1.25"), (r"^\d+\.\d+$", "1.2.5"), ("^[a-z0-9_]{3,40}$", "ab"),
])
def test_both_paths_answer_as_python_re(pattern, value):
    assert fullmatch(re.compile(pattern), value) == (re.fullmatch(pattern, value) is not None)


def test_a_pattern_that_backtracks_without_end_still_stops_at_the_budget():
    with pytest.raises(RegexpTooSlow):
        fullmatch(re.compile("(a|a)+$"), "a" * 40 + "!")
