"""Built-in data sets: the scikit-learn digits (the offline default), MNIST, CIFAR-10, a folder of images."""

from __future__ import annotations

import genbench
from genbench_datasets.cifar10 import load_cifar10
from genbench_datasets.digits import load_digits
from genbench_datasets.folder import load_folder
from genbench_datasets.mnist import load_mnist


@genbench.hookimpl
def genbench_datasets() -> list[genbench.DatasetSpec]:
    return [
        genbench.DatasetSpec(
            "digits",
            "scikit-learn's 8x8 handwritten digits, 17 levels, 1,797 images; shipped with scikit-learn (offline)",
            load_digits,
        ),
        genbench.DatasetSpec(
            "mnist",
            "MNIST 28x28, 256 levels (2 with --binarize); IDX files under --data-root, or --download",
            load_mnist,
        ),
        genbench.DatasetSpec(
            "cifar10",
            "CIFAR-10 32x32 RGB, 256 levels, official 50,000/10,000 split; the binary version under --data-root, "
            "or --download",
            load_cifar10,
        ),
        genbench.DatasetSpec("folder", "a directory of PNG/JPEG images of one size, given as --data-root", load_folder),
    ]
