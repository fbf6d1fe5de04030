"""tests/support_hypothesis.py: what each profile runs of a property's examples."""

import pytest

from tests.support_hypothesis import CI_MAX_EXAMPLES, THOROUGH_FACTOR, examples


def test_ci_caps_and_may_run_fewer_of_an_expensive_property(monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    assert examples(40) == 40
    assert examples(500) == CI_MAX_EXAMPLES
    assert examples(40, ci=20) == 20


def test_thorough_keeps_ten_times_the_old_count_whatever_ci_runs(monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "thorough")
    assert examples(40, ci=20) == 40 * THOROUGH_FACTOR
    assert examples(60, ci=30) == examples(60) == 60 * THOROUGH_FACTOR


@pytest.mark.parametrize("ci", [0, 41])
def test_ci_is_at_least_one_and_at_most_the_old_count(monkeypatch, ci):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    with pytest.raises(ValueError, match="ci is 1 to n"):
        examples(40, ci=ci)
