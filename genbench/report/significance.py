"""Is A better than B? Tests over seeds, Holm's correction, rank groups (letters) and the seeds that would decide.

A leaderboard's numbers are means over training seeds; a difference between two of them may be noise of the
seeds (Lucic et al. 2018 found that most GAN rankings vanish given enough of them). This module says whether
it is, for ``genbench compare`` and for the leaderboard's rank groups:

- The test, per column: the paired t test over seeds (``scipy.stats.ttest_rel``) where both sides measured the
  same seeds (seed s of A beside seed s of B: one data split, and for two configs of one model one
  initialisation), else Welch's t test (``scipy.stats.ttest_ind(equal_var=False)``). Either needs two seeds a
  side: with one seed per side no test is possible, and none is made.
- The difference, mean A - mean B, with that test's 95% confidence interval.
- The effect size: Hedges' g, the difference over the pooled standard deviation of the seeds times Hedges'
  small-sample correction J = 1 - 3 / (4 (nA + nB) - 9); the same for paired and unpaired tests, so it reads
  the same everywhere.
- Holm's step-down correction (Holm 1979) across the family of columns compared: every quality column (those
  that declare a rank, or those named with ``--metrics``). Times, when asked for, are a family of their own:
  they measure the machine's load as much as the model, and adding them must not change a verdict on quality.
- Seeds for power: how many seeds per model the test that was made needs for 80% power at alpha 0.05 (two-sided)
  against the observed effect (noncentral t, ``scipy.stats.nct``): Welch's as a two-sample t test against g,
  the paired test as a one-sample t test of the per-seed differences against d_z (their mean over their
  standard deviation). An effect observed over a few seeds is itself noisy, so this is an order of magnitude,
  not a promise.
- Evaluation noise. A metric evaluated r > 1 times on independent sample sets records the mean as X with
  ``X_eval_std`` (their standard deviation, ddof 1) and ``X_eval_n`` (r). Each seed's X then carries the noise
  of one mean of r evaluations, so the spread over seeds already contains evaluation noise: the test over seeds
  is the test, and the share of the seeds' variance that evaluation explains, (eval std² / r) / seed std², is
  reported beside it. With one seed per side and repeats on both, Welch's test over the evaluation repeats is
  made and labelled "evaluations only": it says that these two trained models' evaluations differ, not that
  their trainings (or configs) do.
- Threads. Runs with other torch thread counts train to other numbers (the digits' GAN FID moved by about 3
  between one thread and two), so where the sides' thread counts differ, their difference contains that
  nondeterminism; it is seed-like noise, and with one seed per side no test is made at all.

The leaderboard groups models per ranked column with a compact letter display (Piepho 2004): Holm-corrected
pairwise tests among the models with two seeds or more; models that share a letter are not significantly
different. Close models (neighbours in a column that share a letter) get the seeds that would separate them.

scipy is imported inside the functions that need it: the CLI, which imports this module, starts without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import string
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations, pairwise
from typing import TYPE_CHECKING, Any

from genbench.contract import CellRecord
from genbench.report.aggregate import TRAIN_TIME

if TYPE_CHECKING:
    from genbench.report.leaderboard import Leaderboard

ALPHA = 0.05
POWER = 0.8
CONFIDENCE = 0.95
#: Seeds per model beyond which ``seeds_for_power`` stops looking (and says "more than this").
MAX_SEEDS = 10_000
#: The suffixes of the columns a metric evaluated several times writes beside X (the repeats' spread and count).
EVAL_STD, EVAL_N = "_eval_std", "_eval_n"

PAIRED, WELCH, EVALUATIONS, NO_SPREAD = "paired t", "Welch t", "Welch t, evaluations only", "no spread"


# ---------------------------------------------------------------------------------------------- the statistics


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979); NaN (no test made) stays NaN and is not in the family.

    Sorted ascending, p_(i) is multiplied by (m - i + 1), made monotone by a running maximum and capped at 1:
    rejecting where the adjusted value is below alpha controls the familywise error rate at alpha under any
    dependence between the tests.
    """
    tested = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[index] = running
    return adjusted


def hedges_g(a: Sequence[float], b: Sequence[float]) -> float:
    """(mean a - mean b) / pooled standard deviation, times J = 1 - 3 / (4 (na + nb) - 9) (Hedges 1981).

    Needs two values on one side at least; where both sides have no spread, ±inf for a difference and 0 for none.
    """
    na, nb = len(a), len(b)
    if na + nb < 3:
        return math.nan
    difference = _mean(a) - _mean(b)
    pooled = math.sqrt((_sum_squares(a) + _sum_squares(b)) / (na + nb - 2))
    if pooled == 0.0:
        return 0.0 if difference == 0.0 else math.copysign(math.inf, difference)
    return difference / pooled * (1.0 - 3.0 / (4.0 * (na + nb) - 9.0))


def power_of_t_test(effect_size: float, n: int, alpha: float = ALPHA, paired: bool = False) -> float:
    """Power of the two-sided t test with n seeds per model against a standardized difference (noncentral t): the
    two-sample test against Cohen's d (or Hedges' g), or, ``paired``, the one-sample test of the n per-seed
    differences against d_z, their mean over their standard deviation."""
    import scipy.stats

    df, shift = (n - 1, abs(effect_size) * math.sqrt(n)) if paired else (2 * n - 2, abs(effect_size) * math.sqrt(n / 2))
    critical = float(scipy.stats.t.ppf(1 - alpha / 2, df))
    return float(scipy.stats.nct.sf(critical, df, shift) + scipy.stats.nct.cdf(-critical, df, shift))


def seeds_for_power(
    effect_size: float, alpha: float = ALPHA, power: float = POWER, most: int = MAX_SEEDS, paired: bool = False
) -> int | None:
    """The fewest seeds per model at which the two-sided t test at ``alpha`` (``power_of_t_test``) detects
    ``effect_size`` with probability ``power``; None where more than ``most`` would be needed.

    Power grows with n, so the count is found by doubling and then bisecting: a few dozen noncentral t tails."""
    if math.isnan(effect_size) or effect_size == 0.0:
        return None
    if math.isinf(effect_size):
        return 2
    low, high = 1, 2  # power(low) < power <= power(high) once the doubling stops
    while power_of_t_test(effect_size, high, alpha, paired) < power:
        if high >= most:
            return None
        low, high = high, min(2 * high, most)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if power_of_t_test(effect_size, middle, alpha, paired) >= power else (middle, high)
    return high


@dataclass(frozen=True)
class Measurements:
    """One side's values of one column: seed -> value, and where recorded the evaluation repeats behind each."""

    values: Mapping[int, float]
    #: seed -> standard deviation over the evaluation repeats (``X_eval_std``), and their number (``X_eval_n``).
    eval_std: Mapping[int, float] = field(default_factory=dict)
    eval_n: Mapping[int, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return _mean(list(self.values.values())) if self.values else math.nan

    @property
    def std(self) -> float:
        """Standard deviation over seeds (ddof 1); NaN for one seed."""
        return math.sqrt(_sum_squares(list(self.values.values())) / (self.n - 1)) if self.n > 1 else math.nan

    @property
    def evaluation_std(self) -> float:
        """The evaluation repeats' standard deviation, pooled over seeds (root mean variance); NaN without repeats."""
        spreads = [self.eval_std[seed] for seed in self.values if seed in self.eval_std]
        return math.sqrt(_mean([s * s for s in spreads])) if spreads else math.nan

    @property
    def evaluation_repeats(self) -> int:
        """The fewest evaluation repeats behind one seed's value (1 where none were recorded)."""
        return min((self.eval_n[seed] for seed in self.values if seed in self.eval_n), default=1)


@dataclass(frozen=True)
class Outcome:
    """One test of a difference: which, the difference A - B with its interval, the statistic and the p-value.

    ``test`` is empty where none could be made, and ``reason`` says why."""

    test: str
    difference: float
    low: float = math.nan
    high: float = math.nan
    statistic: float = math.nan
    df: float = math.nan
    p_value: float = math.nan
    effect_size: float = math.nan
    reason: str = ""
    #: The paired test's standardized effect: the per-seed differences' mean over their standard deviation.
    d_z: float = math.nan

    @property
    def seeds_needed(self) -> int | None:
        """Seeds per model at which this test (paired, or Welch's as two-sample) has 80% power against the observed
        effect (d_z, or g); None for other tests, no observed effect, or more than MAX_SEEDS."""
        if self.test == PAIRED:
            return seeds_for_power(self.d_z, paired=True)
        return seeds_for_power(self.effect_size) if self.test == WELCH else None


def compare_measurements(
    a: Measurements, b: Measurements, confidence: float = CONFIDENCE, evaluations_apart: str = ""
) -> Outcome:
    """Paired t over seeds where both sides have the same two or more seeds, Welch's t otherwise; with one seed
    a side, Welch's t over evaluation repeats where both have them ("evaluations only"), else no test.

    ``evaluations_apart`` says why the two trained models differ by more than their seeds (other thread counts):
    then a test over evaluation repeats would find that difference, and none is made."""
    difference = a.mean - b.mean
    if a.n >= 2 and b.n >= 2:
        g = hedges_g(list(a.values.values()), list(b.values.values()))
        if set(a.values) == set(b.values):
            seeds = sorted(a.values)
            return _paired([a.values[s] for s in seeds], [b.values[s] for s in seeds], g, confidence)
        return _welch(list(a.values.values()), list(b.values.values()), g, confidence)
    if a.n == 1 and b.n == 1 and a.evaluation_repeats >= 2 and b.evaluation_repeats >= 2:
        if evaluations_apart:
            return Outcome("", difference, reason=f"no test: one seed per side, {evaluations_apart}")
        return _welch_evaluations(a, b, confidence)
    fewest = "one seed per side" if a.n <= 1 and b.n <= 1 else f"{'A' if a.n < 2 else 'B'} has one seed"
    return Outcome("", difference, reason=f"no test: {fewest} (a test needs two seeds a side)")


def _paired(a: list[float], b: list[float], g: float, confidence: float) -> Outcome:
    import scipy.stats

    differences = [x - y for x, y in zip(a, b, strict=True)]
    mean = _mean(differences)
    if _sum_squares(differences) == 0.0:
        return _no_spread(mean, len(a) - 1, g)
    with _quiet_cancellation():
        result = scipy.stats.ttest_rel(a, b)
        interval = result.confidence_interval(confidence)
    low, high, statistic, df, p_value = _floats(interval.low, interval.high, result.statistic, result.df, result.pvalue)
    d_z = mean / math.sqrt(_sum_squares(differences) / (len(differences) - 1))
    return Outcome(PAIRED, mean, low, high, statistic, df, p_value, g, d_z=d_z)


def _welch(a: list[float], b: list[float], g: float, confidence: float) -> Outcome:
    import scipy.stats

    difference = _mean(a) - _mean(b)
    if _sum_squares(a) == 0.0 and _sum_squares(b) == 0.0:
        return _no_spread(difference, len(a) + len(b) - 2, g)
    with _quiet_cancellation():
        result = scipy.stats.ttest_ind(a, b, equal_var=False)
        interval = result.confidence_interval(confidence)
    low, high, statistic, df, p_value = _floats(interval.low, interval.high, result.statistic, result.df, result.pvalue)
    return Outcome(WELCH, difference, low, high, statistic, df, p_value, g)


def _no_spread(difference: float, df: float, g: float) -> Outcome:
    """Every seed gave the same difference (a deterministic fit): it is exact for these seeds, not a noisy estimate."""
    p_value = 1.0 if difference == 0.0 else 0.0
    return Outcome(NO_SPREAD, difference, difference, difference, math.nan, df, p_value, g)


def _welch_evaluations(a: Measurements, b: Measurements, confidence: float) -> Outcome:
    """Welch's t over the evaluation repeats of one trained model a side, from their means, spreads and counts."""
    import scipy.stats

    ra, rb = a.evaluation_repeats, b.evaluation_repeats
    sa, sb = a.evaluation_std, b.evaluation_std
    difference = a.mean - b.mean
    if sa == 0.0 and sb == 0.0:
        return dataclasses.replace(_no_spread(difference, ra + rb - 2, math.nan), test=EVALUATIONS)
    result = scipy.stats.ttest_ind_from_stats(a.mean, sa, ra, b.mean, sb, rb, equal_var=False)
    va, vb = sa * sa / ra, sb * sb / rb
    df = (va + vb) ** 2 / (va * va / (ra - 1) + vb * vb / (rb - 1))
    half = float(scipy.stats.t.ppf((1 + confidence) / 2, df)) * math.sqrt(va + vb)
    pooled = math.sqrt(((ra - 1) * sa * sa + (rb - 1) * sb * sb) / (ra + rb - 2))
    g = difference / pooled * (1.0 - 3.0 / (4.0 * (ra + rb) - 9.0))
    statistic, p_value = _floats(result.statistic, result.pvalue)
    return Outcome(EVALUATIONS, difference, difference - half, difference + half, statistic, df, p_value, g)


@contextlib.contextmanager
def _quiet_cancellation() -> Iterator[None]:
    """scipy warns of precision loss where seeds agree to the last bits; the spread is then round-off, and the
    test's answer (a tiny p) stands, so that warning alone is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        yield


def _floats(*values: Any) -> tuple[float, ...]:
    """scipy's numpy scalars as plain floats, for JSON and for printing."""
    return tuple(float(value) for value in values)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _sum_squares(values: Sequence[float]) -> float:
    mean = _mean(values)
    return math.fsum((v - mean) ** 2 for v in values)


# --------------------------------------------------------------------------------------- one column, two sides


QUALITY, TIMES = "quality", "times"


@dataclass(frozen=True)
class Comparison:
    """One column compared between side A and side B: both sides' measurements, the test, Holm's p-value."""

    column: str
    higher_is_better: bool
    #: The Holm family it belongs to: QUALITY (the quality columns) or TIMES (times, a family of their own).
    family: str
    a: Measurements
    b: Measurements
    result: Outcome
    p_holm: float = math.nan

    @property
    def significant(self) -> bool:
        return self.p_holm < ALPHA

    @property
    def better(self) -> str | None:
        """ "A" or "B" where the difference is significant, by the column's direction; else None."""
        if not self.significant or self.result.difference == 0.0:
            return None
        return "A" if (self.result.difference > 0) == self.higher_is_better else "B"

    @property
    def seeds_needed(self) -> int | None:
        """Seeds per model for 80% power against the observed g, where a test over seeds found no difference."""
        return None if self.significant else self.result.seeds_needed

    def verdict(self) -> str:
        if not self.result.test:
            return self.result.reason
        if self.better is not None:
            only = " (evaluations only: not the training)" if self.result.test == EVALUATIONS else ""
            return f"{self.better} better{only}"
        if self.result.test != PAIRED and self.result.test != WELCH:
            return "no significant difference" + (" (evaluations only)" if self.result.test == EVALUATIONS else "")
        needed = self.seeds_needed
        if self.result.p_value < ALPHA:
            return f"no significant difference after Holm's correction (p = {self.result.p_value:.2g} alone)"
        if self.result.effect_size == 0.0:
            return "no significant difference; the means are equal"
        if needed is None:
            return f"no significant difference; more than {MAX_SEEDS:,} seeds per model would be needed to tell"
        if needed <= min(self.a.n, self.b.n):
            return (
                f"no significant difference, though {needed} seeds per model give this test 80% power against the "
                "observed effect: a miss, or a smaller true effect"
            )
        return f"no significant difference; {needed} seeds per model would detect the observed effect (80% power)"

    def as_dict(self) -> dict[str, Any]:
        """A flat row for CSV and JSON."""
        result = self.result
        return {
            "column": self.column,
            "higher_is_better": self.higher_is_better,
            "family": self.family,
            **_side_fields("a", self.a),
            **_side_fields("b", self.b),
            "difference": result.difference,
            "low": result.low,
            "high": result.high,
            "test": result.test,
            "statistic": result.statistic,
            "df": result.df,
            "p_value": result.p_value,
            "p_holm": self.p_holm,
            "hedges_g": result.effect_size,
            "significant": self.significant,
            "better": self.better or "",
            "seeds_needed": self.seeds_needed,
            "verdict": self.verdict(),
        }


def _side_fields(prefix: str, side: Measurements) -> dict[str, Any]:
    return {
        f"{prefix}_n": side.n,
        f"{prefix}_mean": side.mean,
        f"{prefix}_std": side.std,
        f"{prefix}_eval_std": side.evaluation_std,
        f"{prefix}_eval_n": side.evaluation_repeats,
    }


def measurements(records: Sequence[CellRecord], column: str) -> Measurements:
    """The finished cells' values of a column, seed -> value, with their evaluation repeats where recorded."""
    values: dict[int, float] = {}
    eval_std: dict[int, float] = {}
    eval_n: dict[int, int] = {}
    for record in records:
        value = record.train_time if column == TRAIN_TIME else record.metrics.get(column)
        if record.status != "ok" or value is None or not math.isfinite(value):
            continue
        values[record.seed] = float(value)
        spread, repeats = record.metrics.get(column + EVAL_STD), record.metrics.get(column + EVAL_N)
        if spread is not None and repeats is not None and math.isfinite(spread) and repeats >= 2:
            eval_std[record.seed], eval_n[record.seed] = float(spread), int(repeats)
    return Measurements(values, eval_std, eval_n)


def compare_records(
    a: Sequence[CellRecord],
    b: Sequence[CellRecord],
    directions: Mapping[str, tuple[bool, str]],
    evaluations_apart: str = "",
) -> list[Comparison]:
    """Every column of ``directions`` (column -> (higher is better, family)) compared between the cells of A and
    of B, with Holm's correction applied within each family (``evaluations_apart``: see ``compare_measurements``)."""
    comparisons = []
    for column, (higher_is_better, family) in directions.items():
        ours, theirs = measurements(a, column), measurements(b, column)
        outcome = compare_measurements(ours, theirs, evaluations_apart=evaluations_apart)
        comparisons.append(Comparison(column, higher_is_better, family, ours, theirs, outcome))
    return holm_by_family(comparisons)


def holm_by_family(comparisons: Sequence[Comparison]) -> list[Comparison]:
    adjusted = list(comparisons)
    for family in dict.fromkeys(c.family for c in comparisons):
        members = [i for i, c in enumerate(comparisons) if c.family == family]
        for i, p in zip(members, holm([comparisons[i].result.p_value for i in members]), strict=True):
            adjusted[i] = dataclasses.replace(comparisons[i], p_holm=p)
    return adjusted


# ------------------------------------------------------------------------------- rank groups on the leaderboard


def letter_display(order: Sequence[str], different: Sequence[tuple[str, str]]) -> dict[str, str]:
    """A compact letter display: models that share a letter are not significantly different (Piepho 2004's
    insert-and-absorb). ``order`` lists the models best first; 'a' is the group of the best one."""
    groups: list[frozenset[str]] = [frozenset(order)]
    for x, y in different:
        split: list[frozenset[str]] = []
        for group in groups:
            split += [group - {x}, group - {y}] if x in group and y in group else [group]
        unique = list(dict.fromkeys(split))
        groups = [g for g in unique if g and not any(g < other for other in unique)]
    position = {model: i for i, model in enumerate(order)}
    groups.sort(key=lambda group: sorted(position[m] for m in group))
    alphabet = string.ascii_lowercase + string.ascii_uppercase
    names = [alphabet[i] if i < len(alphabet) else f"[{i + 1}]" for i in range(len(groups))]
    return {model: "".join(n for n, g in zip(names, groups, strict=True) if model in g) for model in order}


@dataclass(frozen=True)
class ClosePair:
    """Two neighbours of a column's order that the tests did not separate, and the seeds that would."""

    better: str
    worse: str
    effect_size: float
    seeds_needed: int | None


@dataclass(frozen=True)
class RankGroups:
    """One column's groups on one data set: the letters of the models with two seeds or more, and close pairs."""

    column: str
    letters: dict[str, str]
    #: Models with one seed: no test is possible for them.
    untested: list[str]
    close: list[ClosePair]


def rank_groups(leaderboard: Leaderboard, dataset: str, column: str) -> RankGroups:
    """Holm-corrected pairwise tests among the models with two seeds or more; their letters; close neighbours."""
    higher = leaderboard.specs[column].higher_is_better
    entries = [entry for entry in leaderboard.entries if entry.dataset == dataset]
    sides = {
        model: measurements([entry.record for entry in entries if entry.model == model], column)
        for model in leaderboard.models(dataset)
    }
    sign = -1.0 if higher else 1.0
    tested = sorted((m for m, s in sides.items() if s.n >= 2), key=lambda m: sign * sides[m].mean)
    untested = [m for m, s in sides.items() if s.n == 1]
    pairs = list(combinations(tested, 2))
    tests = [compare_measurements(sides[x], sides[y]) for x, y in pairs]
    adjusted = holm([t.p_value for t in tests])
    different = [pair for pair, p in zip(pairs, adjusted, strict=True) if p < ALPHA]
    letters = letter_display(tested, different)
    close = []
    for better, worse in pairwise(tested):
        if (better, worse) not in different:
            outcome = tests[pairs.index((better, worse))]
            close.append(ClosePair(better, worse, outcome.effect_size, outcome.seeds_needed))
    return RankGroups(column, letters, untested, close)


RANK_GROUPS_TITLE = "Rank groups"
RANK_GROUPS_LEGEND = (
    "Per ranked column, models that share a letter are not significantly different: pairwise t tests over seeds "
    "(paired where both models ran the same seeds, Welch's otherwise), Holm-corrected within the column, alpha 0.05; "
    "'a' holds the best model. – : one seed, no test possible. genbench compare A,B gives one pair in full."
)
CLOSE_TITLE = "Seeds to separate close models"
CLOSE_LEGEND = (
    "Neighbours in a column's order that the tests did not separate, their observed effect size (|Hedges' g|) and the "
    "seeds per model at which a two-sided t test at alpha 0.05 would detect it with 80% power (noncentral t). An "
    "effect size observed over a few seeds is itself noisy: read the count as an order of magnitude."
)
ONE_SEED_LEGEND = "One seed per model: no test is possible, so there are no rank groups; run two seeds or more."


def rank_group_tables(leaderboard: Leaderboard, dataset: str) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """The rank-groups table of a data set and, where some neighbours were not separated, the seeds that would:
    (title, legend, headers, rows of text). None where fewer than two models or no ranked column."""
    models = leaderboard.models(dataset)
    columns = leaderboard.quality_columns(dataset)
    if len(models) < 2 or not columns:
        return []
    groups = [rank_groups(leaderboard, dataset, column) for column in columns]
    rows = [[model, *(_letters(g, model) for g in groups)] for model in models]
    if not any(g.letters for g in groups):
        return [(RANK_GROUPS_TITLE, ONE_SEED_LEGEND, ["model", *columns], rows)]
    tables = [(RANK_GROUPS_TITLE, RANK_GROUPS_LEGEND, ["model", *columns], rows)]
    close = [
        [g.column, f"{pair.better} vs {pair.worse}", f"{abs(pair.effect_size):.2g}", _seeds_text(pair)]
        for g in groups
        for pair in g.close
    ]
    if close:
        tables.append((CLOSE_TITLE, CLOSE_LEGEND, ["column", "models", "|g|", "seeds per model"], close))
    return tables


def _letters(groups: RankGroups, model: str) -> str:
    if model in groups.letters:
        return groups.letters[model]
    return "–" if model in groups.untested else "N/A"


def _seeds_text(pair: ClosePair) -> str:
    if pair.effect_size == 0.0:
        return "none: equal means"
    return f"more than {MAX_SEEDS:,}" if pair.seeds_needed is None else str(pair.seeds_needed)
