"""genbench.report.significance: Holm, letters, power, the choice of test, and the false-positive rate by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from genbench.contract import CellRecord
from genbench.report.significance import (
    EVALUATIONS,
    NO_SPREAD,
    PAIRED,
    QUALITY,
    WELCH,
    Measurements,
    compare_measurements,
    compare_records,
    hedges_g,
    holm,
    letter_display,
    power_of_t_test,
    seeds_for_power,
)


def test_holm_against_a_hand_computed_case() -> None:
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (kept monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # a large p is capped at 1; an untested column (NaN) is not counted in the family: m = 2 here
    adjusted = holm([0.6, math.nan, 0.02])
    assert adjusted[0] == pytest.approx(0.6) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    assert holm([0.7, 0.9]) == pytest.approx([1.0, 1.0])  # 0.7 x 2 is capped at 1


@pytest.mark.parametrize(
    ("order", "different", "letters"),
    [
        (["A", "B", "C"], [], {"A": "a", "B": "a", "C": "a"}),
        (["A", "B", "C"], [("A", "B"), ("A", "C"), ("B", "C")], {"A": "a", "B": "b", "C": "c"}),
        # only the ends differ: the middle one belongs to both groups
        (["A", "B", "C"], [("A", "C")], {"A": "a", "B": "ab", "C": "b"}),
        # a chain: A-B, B-C, C-D not separated; A from C and D, B from D
        (["A", "B", "C", "D"], [("A", "C"), ("A", "D"), ("B", "D")], {"A": "a", "B": "ab", "C": "bc", "D": "c"}),
    ],
)
def test_letter_display_on_known_patterns(
    order: list[str], different: list[tuple[str, str]], letters: dict[str, str]
) -> None:
    found = letter_display(order, different)
    assert found == letters
    for x in order:  # the defining property: two models share a letter exactly when they were not separated
        for y in order:
            if x < y:
                shared = bool(set(found[x]) & set(found[y]))
                assert shared == ((x, y) not in different), (x, y)


def test_seeds_for_power_against_the_textbook() -> None:
    # Cohen (1988), table 2.4.1, two-sided alpha 0.05, power 0.8: d = 0.5 -> 64, d = 0.8 -> 26; d = 1 -> 17 (G*Power)
    assert seeds_for_power(1.0) == 17
    assert seeds_for_power(0.5) == 64
    assert seeds_for_power(-0.8) == 26  # the sign of the difference does not matter
    assert power_of_t_test(1.0, 16) < 0.8 <= power_of_t_test(1.0, 17)
    assert seeds_for_power(0.0) is None and seeds_for_power(0.001) is None  # more than MAX_SEEDS
    # the paired test, a one-sample t of the differences: d_z = 1 needs 10 (G*Power: 10 pairs, power 0.80)
    assert seeds_for_power(1.0, paired=True) == 10
    assert power_of_t_test(1.0, 9, paired=True) < 0.8 <= power_of_t_test(1.0, 10, paired=True)


def test_power_matches_a_simulation_of_welch_tests() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (4000, 17))
    b = rng.normal(1.0, 1.0, (4000, 17))
    rejected = scipy.stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05
    assert float(rejected.mean()) == pytest.approx(power_of_t_test(1.0, 17), abs=3 * math.sqrt(0.8 * 0.2 / 4000))


def test_hedges_g_by_hand() -> None:
    a, b = [1.0, 2.0, 3.0], [2.0, 3.5, 4.2]
    # b's squared deviations from 3.2333: 1.5211, 0.0711, 0.9344 (sum 2.5267); a's: 2
    pooled = math.sqrt((2.0 + 2.5266667) / 4)
    assert hedges_g(a, b) == pytest.approx((2.0 - 3.2333333) / pooled * (1 - 3 / (4 * 6 - 9)), rel=1e-6)


def test_paired_where_seeds_pair_welch_otherwise() -> None:
    a = Measurements({0: 1.0, 1: 2.0, 2: 3.0})
    paired = compare_measurements(a, Measurements({0: 2.0, 1: 3.5, 2: 4.2}))
    assert paired.test == PAIRED and paired.df == 2
    expected = scipy.stats.ttest_rel([1.0, 2.0, 3.0], [2.0, 3.5, 4.2])
    assert paired.p_value == pytest.approx(expected.pvalue) and paired.low < paired.difference < paired.high
    welch = compare_measurements(a, Measurements({3: 2.0, 4: 3.5, 5: 4.2}))
    assert welch.test == WELCH
    assert welch.p_value == pytest.approx(scipy.stats.ttest_ind([1, 2, 3], [2, 3.5, 4.2], equal_var=False).pvalue)


def test_one_seed_gives_no_test_and_says_so() -> None:
    result = compare_measurements(Measurements({0: 1.0}), Measurements({0: 2.0}))
    assert result.test == "" and math.isnan(result.p_value) and "one seed per side" in result.reason
    result = compare_measurements(Measurements({0: 1.0, 1: 1.5}), Measurements({0: 2.0}))
    assert result.test == "" and "B has one seed" in result.reason


def test_evaluation_repeats_with_one_seed_test_the_evaluations_only() -> None:
    a = Measurements({0: 60.0}, eval_std={0: 0.5}, eval_n={0: 5})
    b = Measurements({0: 62.0}, eval_std={0: 0.6}, eval_n={0: 5})
    result = compare_measurements(a, b)
    assert result.test == EVALUATIONS
    expected = scipy.stats.ttest_ind_from_stats(60.0, 0.5, 5, 62.0, 0.6, 5, equal_var=False)
    assert result.p_value == pytest.approx(expected.pvalue) and result.high < 0
    [comparison] = compare_records(
        [_record(0, fid=60.0, fid_eval_std=0.5, fid_eval_n=5)], [], {"fid": (False, QUALITY)}
    )
    assert comparison.result.test == ""  # B has no cell: nothing to test


def test_seeds_without_spread_are_an_exact_difference() -> None:
    result = compare_measurements(Measurements({0: 2.0, 1: 2.0}), Measurements({0: 3.0, 1: 3.0}))
    assert result.test == NO_SPREAD and result.p_value == 0.0 and result.low == result.high == -1.0


def _record(seed: int, **metrics: float) -> CellRecord:
    return CellRecord(f"cell{seed}", "model", "digits", seed, "ok", {}, "key", metrics=metrics)


DIRECTIONS = {"fid": (False, QUALITY), "bpd": (False, QUALITY), "precision": (True, QUALITY)}
TRIALS, SEEDS = 40, 5


def _simulated_sides(rng: np.random.Generator, shift: float) -> tuple[list[CellRecord], list[CellRecord]]:
    """Five seeds a side of three columns drawn from one distribution; side B's fid moved by ``shift`` sds."""
    sides = []
    for offset in (0.0, shift):
        draws = rng.normal(0.0, 1.0, (SEEDS, 3))
        sides.append(
            [
                _record(s, fid=40 + 3 * (d[0] + offset), bpd=2 + 0.01 * d[1], precision=0.7 + 0.02 * d[2])
                for s, d in enumerate(draws)
            ]
        )
    return sides[0], sides[1]


def test_false_positive_rate_between_identical_configurations_by_simulation() -> None:
    """Two sides drawn from one distribution: compare (the path genbench compare takes from the cell records)
    says "significant" in at most 5% of trials plus two standard errors of the simulation."""
    rng = np.random.default_rng(20261202)
    false_positives = sum(
        any(c.significant for c in compare_records(*_simulated_sides(rng, 0.0), DIRECTIONS)) for _ in range(TRIALS)
    )
    assert false_positives / TRIALS <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / TRIALS)


def test_a_real_shift_is_found_by_the_same_simulation() -> None:
    """The same simulation with B's fid four seed-sds worse: found in most trials, and B called worse."""
    rng = np.random.default_rng(20261202)
    found = 0
    for _ in range(TRIALS):
        fid = next(c for c in compare_records(*_simulated_sides(rng, 4.0), DIRECTIONS) if c.column == "fid")
        found += fid.better == "A"
        assert fid.better != "B"
    assert found / TRIALS >= 0.8
