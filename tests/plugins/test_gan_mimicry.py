"""The gan plugin's ``architecture = "resnet_mimicry"``: the ResNet G and D of Mimicry's CIFAR-10 DCGAN
(github.com/kwotsin/mimicry, torch_mimicry/nets/dcgan/dcgan_cifar.py with modules/resblocks.py), with the
parameter count of their code, and a fit that runs."""

from __future__ import annotations

import torch

from genbench import DataInfo, FitContext, ImageData
from genbench_gan import GAN, GANConfig


def conv(c_in: int, c_out: int, kernel: int) -> int:
    return c_in * c_out * kernel * kernel + c_out  # weights and bias, as nn.Conv2d's default


def mimicry_cifar_dcgan_counts(nz: int = 128, ngf: int = 256, ndf: int = 128, channels: int = 3) -> tuple[int, int]:
    """Parameters of DCGANGeneratorCIFAR(nz=128, ngf=256, bottom_width=4) and DCGANDiscriminatorCIFAR(ndf=128),
    added up layer by layer from their code: G = l1 Linear(nz, 16 ngf); three GBlock(ngf, ngf, upsample) of
    b1 BatchNorm(ngf), c1 and c2 3x3 convs, b2 BatchNorm, c_sc 1x1 conv (upsampling makes the shortcut
    learnable); b5 BatchNorm(ngf); c5 3x3 conv to the image. D = DBlockOptimized(3, ndf) (c1, c2, c_sc);
    DBlock(ndf, ndf, downsample) (c1, c2, c_sc); two DBlock(ndf, ndf) without a shortcut conv; l5 Linear(ndf, 1)."""
    batch_norm = 2 * ngf
    g_block = batch_norm + conv(ngf, ngf, 3) + batch_norm + conv(ngf, ngf, 3) + conv(ngf, ngf, 1)
    generator = nz * 16 * ngf + 16 * ngf + 3 * g_block + batch_norm + conv(ngf, channels, 3)
    optimized = conv(channels, ndf, 3) + conv(ndf, ndf, 3) + conv(channels, ndf, 1)
    down = 2 * conv(ndf, ndf, 3) + conv(ndf, ndf, 1)
    plain = 2 * conv(ndf, ndf, 3)
    return generator, optimized + down + 2 * plain + ndf + 1


def test_the_mimicry_shaped_gan_has_the_parameter_count_of_their_code() -> None:
    expected_g, expected_d = mimicry_cifar_dcgan_counts()
    assert (expected_g, expected_d) == (4_276_739, 1_053_825)
    gan = GAN(
        GANConfig(architecture="resnet_mimicry", latent_dim=128, width=256, d_width=128), DataInfo((3, 32, 32), 256)
    )
    assert sum(p.numel() for p in gan.generator.parameters()) == expected_g
    assert sum(p.numel() for p in gan.discriminator.parameters()) == expected_d


def test_the_resnet_gan_fits_and_samples_on_small_images() -> None:
    info = DataInfo((1, 8, 8), 17)
    images = torch.randint(0, 17, (32, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    gan = GAN(GANConfig(architecture="resnet_mimicry", width=8, d_width=4, epochs=1, batch_size=16), info)
    gan.fit(ImageData(images, 17), FitContext(torch.device("cpu"), 0, torch.Generator().manual_seed(0)))
    samples = gan.sample(5, torch.Generator().manual_seed(1))
    assert samples.shape == (5, 1, 8, 8) and samples.dtype == torch.uint8 and int(samples.max()) < 17
