"""Count what genbench's store survives: damaged files recovered, and kill -9 trials with the records they lost.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/fault_injection.py                 # every damaged state, 10 kills
    OMP_NUM_THREADS=1 .venv/bin/python scripts/fault_injection.py --trials 16 --fresh-processes

Damaged states (tests/faults.py, DAMAGED_STATES): one file of a finished run damaged one way, then the run
repeated; recovered means one warning line, the file moved aside to .corrupt, and exactly the numbers of the
undamaged run. Kill trials: the grid independent + vae, seeds 0 and 1, digits, one epoch, metrics
nll,bpd,sample_time, killed with SIGKILL at a random moment and resumed; a record is lost if one present after
the kill is missing or different after the resume; identical means nll, bpd, status and cell ids equal those of
an uninterrupted run. Kills hit forked children of this process (its imports already done) unless
--fresh-processes starts a new ``python -m genbench.cli`` for every run, as a user's shell would.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import faults

from genbench.toolkit.files import DamagedFileWarning


def count_damaged_states(folder: Path) -> tuple[int, int]:
    import genbench_fid.feature_extractor_classifier as classifier

    classifier.ClassifierConfig = faults.short_classifier()  # type: ignore[misc]
    pristine = folder / "pristine"
    reference = faults.run_damage_grid(pristine)
    recovered = 0
    for index, state in enumerate(faults.DAMAGED_STATES):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                frame, corrupt = faults.recover(state, pristine, folder / f"state{index}")
                damage_lines = [w for w in caught if issubclass(w.category, DamagedFileWarning)]
                ok = len(damage_lines) == 1 and corrupt.is_file() and faults.same_numbers(frame, reference)
            except Exception as error:  # counted as not recovered, and said why
                ok, damage_lines = False, []
                print(f"  {type(error).__name__}: {error}")
        recovered += ok
        print(f"{'recovered' if ok else 'NOT RECOVERED'}: {state.name}")
    return recovered, len(faults.DAMAGED_STATES)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10, help="kill -9 trials (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--fresh-processes", action="store_true", help="a new Python process for every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genbench-faults-") as temporary:
        folder = Path(temporary)
        recovered, states = count_damaged_states(folder / "damage")
        trials = faults.kill_trials(folder / "kill", args.trials, args.seed, fresh=args.fresh_processes)
    for trial in trials:
        print(
            f"kill at {trial.delay:5.2f} s: {trial.records_before} records on disk ({trial.damaged_before} damaged), "
            f"{trial.records_lost} lost, resume exit {trial.exit_code}, identical {trial.identical}, "
            f"temporaries left {trial.temporaries_left}"
        )
    good = sum(t.exit_code == 0 and t.identical and not t.damaged_before and not t.temporaries_left for t in trials)
    print(f"\ndamaged states recovered: {recovered} of {states}")
    lost = sum(trial.records_lost for trial in trials)
    print(f"kill -9 trials: {len(trials)}, recovered identically: {good}, records lost: {lost}")
    return 0 if recovered == states and good == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
