"""DnCNN (Zhang et al., "Beyond a Gaussian Denoiser", IEEE TIP 2017).

Published description: a plain stack of 3x3 convolutions, 64 channels, ``conv+ReLU``, then
``(conv+BN+ReLU) x (depth - 2)``, then ``conv``; residual learning: the network predicts the noise and
the clean image is ``y - net(y)``. DnCNN-S (known sigma) has 17 layers, DnCNN-B (blind, sigma in
[0, 55]) 20. The published PyTorch checkpoints (legacy ``module.dncnn.{i}.*`` keys, convs without bias)
are mapped by :meth:`DnCNN.convert_state_dict`.

``dncnn-s25-folded`` is a released variant of the sigma=25 model with BatchNorm folded into conv
biases (keys ``model.{i}.weight/bias``). Although its notes say it "returns the clean image", running it
on noisy Set12 (sigma=25) shows its output is the *noise*: ``y - out`` scores 30.46 dB, ``out``
itself ~6 dB. So it is used with the same residual convention (our measurement, not the notes).
"""
from __future__ import annotations

from torch import Tensor, nn

from .registry import register_model

_SET12 = "Set12 gray, AWGN (float, unclipped), PSNR on clipped [0,1] output"


class DnCNN(nn.Module):
    """DnCNN with BatchNorm (published layout); ``forward`` returns ``y - noise``."""

    def __init__(self, channels: int = 1, depth: int = 17, features: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1, bias=False), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False),
                       nn.BatchNorm2d(features), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, channels, 3, padding=1, bias=False))
        self.dncnn = nn.Sequential(*layers)
        # conv outputs at 1/4, 1/2 and 3/4 depth: distillation points
        convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
        self.feature_points = [f"dncnn.{convs[len(convs) * k // 4]}" for k in (1, 2, 3)]

    def forward(self, x: Tensor) -> Tensor:
        return x - self.dncnn(x)

    @staticmethod
    def convert_state_dict(sd: dict[str, Tensor]) -> dict[str, Tensor]:
        """Strip the ``module.`` prefix of DataParallel checkpoints."""
        return {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}


class DnCNNFolded(nn.Module):
    """DnCNN with BatchNorm folded into the conv biases: ``depth`` convs with bias, ReLU between.

    The released weights output the noise (verified by measurement), so ``forward`` returns ``y - out``.
    """

    def __init__(self, channels: int = 1, depth: int = 17, features: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = channels
        for i in range(depth):
            cout = channels if i == depth - 1 else features
            layers.append(nn.Conv2d(cin, cout, 3, padding=1, bias=True))
            if i < depth - 1:
                layers.append(nn.ReLU(inplace=True))
            cin = cout
        self.model = nn.Sequential(*layers)
        convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
        self.feature_points = [f"model.{convs[len(convs) * k // 4]}" for k in (1, 2, 3)]

    def forward(self, x: Tensor) -> Tensor:
        return x - self.model(x)


def _pub(sigma: int, psnr: float, note: str = "") -> dict[str, object]:
    d: dict[str, object] = {"dataset": "Set12", "sigma": sigma, "metric": "psnr", "value": psnr,
                            "convention": _SET12, "source": "Zhang et al. TIP 2017",
                            "text": f"Set12 sigma={sigma} PSNR {psnr:.2f} (Zhang et al. TIP 2017)"}
    if note:
        d["note"] = note
    return d


@register_model("dncnn-s15", task="denoise", family="peer", channels=1,
                peer_weights="DnCNN/DnCNN-S-15/net.pth", published=_pub(15, 32.86))
def dncnn_s15() -> DnCNN:
    """DnCNN-S, 17 layers, trained for sigma=15 (556,032 params)."""
    return DnCNN(1, 17)


@register_model("dncnn-s25", task="denoise", family="peer", channels=1,
                peer_weights="DnCNN/DnCNN-S-25/net.pth",
                published=_pub(25, 30.44, "the PyTorch weights' authors report 30.40 for these weights"))
def dncnn_s25() -> DnCNN:
    """DnCNN-S, 17 layers, trained for sigma=25 (556,032 params)."""
    return DnCNN(1, 17)


@register_model("dncnn-s50", task="denoise", family="peer", channels=1,
                peer_weights="DnCNN/DnCNN-S-50/net.pth", published=_pub(50, 27.18))
def dncnn_s50() -> DnCNN:
    """DnCNN-S, 17 layers, trained for sigma=50 (556,032 params)."""
    return DnCNN(1, 17)


@register_model("dncnn-b", task="denoise", family="peer", channels=1,
                peer_weights="DnCNN/DnCNN-B/net.pth",
                published=_pub(25, 30.36, "blind model (sigma in [0,55]) evaluated at sigma=25"))
def dncnn_b() -> DnCNN:
    """DnCNN-B, 20 layers, blind Gaussian denoising (667,008 params)."""
    return DnCNN(1, 20)


@register_model("dncnn-s25-folded", task="denoise", family="peer", channels=1,
                peer_weights="DnCNN/dncnn_25_bnfolded.pth",
                published=_pub(25, 30.44, "BN-folded release of DnCNN-S sigma=25"))
def dncnn_s25_folded() -> DnCNNFolded:
    """DnCNN-S sigma=25 with BatchNorm folded into biases (555,137 params)."""
    return DnCNNFolded(1, 17)
