"""A small exact model that metric checks evaluate: a mixture of two independent-pixel categoricals.

One component is fitted to a data set's training split by counting (with add-one smoothing), the other is uniform,
each with weight 1/2. Its log-likelihood is exact (a log-sum-exp over the two components); its ``elbo`` is the
importance-weighted bound of Burda et al. (2016) with the prior as proposal, log (1/k) sum_i p(x | z_i), z_i ~ p(z),
a true lower bound in expectation. So it has every capability, and a metric can be checked against each alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from genbench.contract import CAPABILITIES, DataInfo, ImageData, NotApplicable
from genbench.toolkit.stats import log_mean_exp

#: ``elbo`` draws its component choices from a generator seeded with this: a fixed function of the data.
ELBO_SEED = 0


class ProbeModel:
    """The mixture with a chosen subset of capabilities; ``refuse`` names one whose method raises NotApplicable."""

    def __init__(self, train: ImageData, capabilities: Iterable[str] = CAPABILITIES, refuse: str | None = None) -> None:
        self.info = DataInfo(train.shape, train.levels)
        self.capabilities = frozenset(capabilities)
        self.refuse = refuse
        flat = train.images.reshape(len(train), -1).long()
        counts = torch.ones(self.info.dims, self.info.levels, dtype=torch.float64)
        counts.scatter_add_(1, flat.T, torch.ones(flat.T.shape, dtype=torch.float64))
        fitted = (counts / counts.sum(1, keepdim=True)).log()
        uniform = torch.full_like(fitted, -math.log(self.info.levels))
        self.log_probs = torch.stack([fitted, uniform]).float()  # (component, dims, levels)

    def _allow(self, capability: str) -> None:
        if capability not in self.capabilities:
            raise NotImplementedError(f"the probe has no {capability}")
        if capability == self.refuse:
            raise NotApplicable(f"the probe model refuses {capability} (checking that the metric says N/A)")

    def component_log_likelihoods(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) for both components: (2, n)."""
        flat = x.reshape(len(x), -1).long().to(self.log_probs.device)
        positions = torch.arange(self.info.dims, device=flat.device)
        return self.log_probs[:, positions, flat].sum(-1)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        self._allow("log_likelihood")
        return self.component_log_likelihoods(x).logsumexp(0) - math.log(2)

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        self._allow("elbo")
        per_component = self.component_log_likelihoods(x)
        choices = torch.randint(0, 2, (k, len(x)), generator=torch.Generator().manual_seed(ELBO_SEED))
        picked = per_component.gather(0, choices.to(per_component.device))  # (k, n): log p(x | z_i)
        return log_mean_exp(picked, dim=0)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        self._allow("sample")
        components = torch.randint(0, 2, (n,), generator=generator)
        probs = self.log_probs.cpu()[components].exp().reshape(-1, self.info.levels)
        draws = torch.multinomial(probs, 1, generator=generator)
        return draws.reshape(n, *self.info.shape).to(torch.uint8)

    def fit(self, train: ImageData, ctx: Any) -> None:
        """Fitted when built."""

    def to(self, device: torch.device) -> ProbeModel:
        self.log_probs = self.log_probs.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"log_probs": self.log_probs}

    def load_state_dict(self, state: Any) -> None:
        self.log_probs = state["log_probs"]
