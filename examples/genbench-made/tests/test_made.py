"""MADE passes genbench's conformance checks, and its masks make each output depend only on earlier values."""

from __future__ import annotations

import pytest
import torch
from genbench import DataInfo
from genbench.testing import MODEL, load_plugins, model_checks

from genbench_made import MADE, MADEConfig, made_masks

SMALL = {"hidden": 32, "layers": 2}


@pytest.mark.parametrize("check", model_checks(load_plugins(["genbench_made"]).get(MODEL, "made"), SMALL), ids=str)
def test_made_conforms(check) -> None:  # type: ignore[no-untyped-def]
    check.run()


def test_masks_connect_output_d_only_to_inputs_before_d() -> None:
    masks = made_masks(dims=5, hidden=7, layers=2)
    reach = masks[0].float()
    for mask in masks[1:]:
        reach = mask.float() @ reach  # paths from each input to each unit
    assert torch.equal(reach > 0, torch.ones(5, 5).tril(-1) > 0)


def test_an_output_does_not_change_when_its_value_or_later_ones_do() -> None:
    info = DataInfo((1, 3, 3), 5)
    model = MADE(MADEConfig(hidden=16), info)
    x = torch.randint(0, 5, (1, 1, 3, 3), dtype=torch.uint8)
    changed = x.clone()
    changed.view(-1)[4:] = (changed.view(-1)[4:] + 1) % 5
    assert torch.equal(model.logits(x)[:, :5], model.logits(changed)[:, :5])
    assert not torch.equal(model.logits(x)[:, 5:], model.logits(changed)[:, 5:])
