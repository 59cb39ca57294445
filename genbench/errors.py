"""The exceptions every layer raises and the CLI turns into one line (exit 2) or a failed cell."""

from __future__ import annotations


class GenbenchError(Exception):
    """A user mistake: the CLI prints its message on one line and exits 2."""


class PluginError(GenbenchError):
    """A plugin misbehaved; the message names the plugin."""


class NotApplicable(Exception):
    """Raised by a metric's compute function when it cannot measure this model; the reason is recorded."""


class PluginOutputError(Exception):
    """A plugin returned something the contract rules out (uint8 samples in another range, a positive log p of
    discrete data, a NaN): the cell fails with this one sentence, and the run goes on. Not a GenbenchError,
    which would stop the run as a user mistake."""


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the cell is recorded as failed with this reason."""
