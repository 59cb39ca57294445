"""Built-in data sets: the scikit-learn digits (the offline default), MNIST, CIFAR-10, a folder of images."""

from __future__ import annotations

import genbench
from genbench_datasets.binarized_mnist import load_binarized_mnist
from genbench_datasets.cifar10 import load_cifar10
from genbench_datasets.digits import load_digits
from genbench_datasets.folder import load_folder
from genbench_datasets.mnist import load_mnist, load_mnist_dynamic


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
            "mnist_dynamic",
            "MNIST binarized afresh every minibatch (Burda et al. 2016): 59,600 train, test binarized once; IDX files",
            load_mnist_dynamic,
        ),
        genbench.DatasetSpec(
            "binarized_mnist",
            "Larochelle & Murray's fixed binarized MNIST, .amat files 50,000/10,000/10,000, or --download",
            load_binarized_mnist,
        ),
        genbench.DatasetSpec(
            "cifar10",
            "CIFAR-10 32x32 RGB, 256 levels, official 50,000/10,000 split; the binary version under --data-root, "
            "or --download",
            load_cifar10,
        ),
        genbench.DatasetSpec("folder", "a directory of PNG/JPEG images of one size, given as --data-root", load_folder),
    ]
