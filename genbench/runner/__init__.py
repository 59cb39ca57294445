"""The runner: a grid of cells (model x seed on one data set), each trained or loaded, evaluated and recorded.

Its rooms, in the order a run's data flows through them:

    prepare      check the request against the installed plugins and load the data; nothing written yet
    external     models made elsewhere: weights files (--checkpoint), sample sets (--sample-set)
    checkpoints  reading weights files and their JSON sidecars; ``genbench export``
    identity     every key and id: checkpoint keys (what was trained) and cell ids (how it was evaluated)
    driver       the process that owns the run folder: ids, run.json, reuse of finished cells, results, report
    dispatch     the driver's side of an executor: cells out as tasks, outcomes back, records written
    workers      the worker's side: a task in, the run rebuilt, one cell run, an outcome out
    cell         one cell: fit or load, evaluate every metric, record; failures stay the cell's
    grids        the PNG grid of samples each cell leaves
    provenance   how the run was made: device, package versions, git revision, times
    statistics   ``genbench stats``: FID reference statistics of a data set's split

``prepare`` checks everything the user gave before anything is written; ``execute`` then runs each cell that has
no finished record yet, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from genbench.runner.cell import run_cell
from genbench.runner.driver import execute
from genbench.runner.prepare import PreparedRun, prepare

__all__ = ["PreparedRun", "execute", "prepare", "run_cell"]
