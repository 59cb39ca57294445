"""scikit-learn's 8x8 digits: 1,797 images with 17 gray levels (0-16), shipped inside scikit-learn."""

from __future__ import annotations

import torch

from genbench import Dataset, DatasetOptions, ImageData
from genbench.data import SPLIT_SEED, binarize, make_dataset, split_train_test

TEST_FRACTION = 0.2


def load_digits(options: DatasetOptions) -> Dataset:
    from sklearn.datasets import load_digits as sklearn_digits  # here: scikit-learn is slow to import

    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images).to(torch.uint8).unsqueeze(1)
    data = ImageData(images, levels=17, labels=torch.from_numpy(bunch.target).long())
    if options.binarize:
        data = binarize(data)
    train, test = split_train_test(data, TEST_FRACTION)
    return make_dataset(
        "digits",
        train,
        test,
        source="sklearn.datasets.load_digits",
        split=f"random {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%}, seed {SPLIT_SEED}",
        binarized=options.binarize,
    )
