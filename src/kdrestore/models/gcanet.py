"""GCANet (Chen et al., "Gated Context Aggregation Network for Image Dehazing and Deraining",
WACV 2019), in the layout of the published dehazing checkpoint (``wacv_gcanet_dehaze.pth``).

Published description: encoder conv1, conv2 (3x3) and conv3 (3x3, stride 2), each with affine
InstanceNorm + ReLU and no bias; six *smoothed dilated* residual blocks (dilations 2,2,2,4,4,4:
each dilated conv is preceded by a separable-and-shared ``(2d-1) x (2d-1)`` filter applied to every
channel, initialised to identity) and one plain residual block; a gated fusion (a 3x3 conv on the
concatenated levels y1, y2 (after block 4) and y3 (after block 7) gives 3 gate maps, output =
sum of gate_k * level_k); decoder deconv3 (4x4 transposed, stride 2) + IN + ReLU, deconv2 (3x3) +
IN + ReLU, deconv1 (1x1). The dehazing model predicts a residual added to the hazy image.

Input convention of the published test code: RGB on the 0-255 scale concatenated with an edge map,
minus 128. The edge map (following the description and released test code) is, per pixel, the sum of
absolute differences to its 4 neighbours, averaged over the colour channels and divided by 4.
The released code resizes to a multiple of 4; here the image is padded (reflect) to a multiple of 4
and cropped back instead (our choice: it keeps every pixel).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import crop_to, pad_to_multiple
from .registry import register_model


class ShareSepConv(nn.Module):
    """One ``k x k`` filter shared by every channel (depthwise), identity at initialisation."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        w = torch.zeros(1, 1, kernel_size, kernel_size)
        w[0, 0, kernel_size // 2, kernel_size // 2] = 1.0
        self.weight = nn.Parameter(w)
        self.kernel_size = kernel_size

    def forward(self, x: Tensor) -> Tensor:
        # Fold the channels into the batch so the one filter applies to each (ONNX-friendly).
        b, c, h, w = x.shape
        y = F.conv2d(x.reshape(b * c, 1, h, w), self.weight, None, 1, self.kernel_size // 2)
        return y.reshape(b, c, h, w)


class _ResBlock(nn.Module):
    """Residual block of two dilated 3x3 convs with affine IN; ``smooth`` adds the shared pre-filters."""

    def __init__(self, ch: int, dilation: int, smooth: bool) -> None:
        super().__init__()
        if smooth:
            self.pre_conv1 = ShareSepConv(2 * dilation - 1)
            self.pre_conv2 = ShareSepConv(2 * dilation - 1)
        self.smooth = smooth
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm1 = nn.InstanceNorm2d(ch, affine=True)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm2 = nn.InstanceNorm2d(ch, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self.pre_conv1(x) if self.smooth else x
        y = F.relu(self.norm1(self.conv1(y)))
        y = self.pre_conv2(y) if self.smooth else y
        return F.relu(x + self.norm2(self.conv2(y)))


def edge_map(img: Tensor) -> Tensor:
    """Edge map of the published GCANet input: 4-neighbour absolute differences, channel mean, / 4."""
    dx = (img[..., :, 1:] - img[..., :, :-1]).abs()
    dy = (img[..., 1:, :] - img[..., :-1, :]).abs()
    e = F.pad(dx, (1, 0)) + F.pad(dx, (0, 1)) + F.pad(dy, (0, 0, 1, 0)) + F.pad(dy, (0, 0, 0, 1))
    return e.mean(1, keepdim=True) / 4.0


class GCANet(nn.Module):
    """GCANet dehazing network; ``forward`` maps a hazy [0,1] RGB batch to the dehazed image."""

    def __init__(self, ch: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, ch, 3, 1, 1, bias=False)
        self.norm1 = nn.InstanceNorm2d(ch, affine=True)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.norm2 = nn.InstanceNorm2d(ch, affine=True)
        self.conv3 = nn.Conv2d(ch, ch, 3, 2, 1, bias=False)
        self.norm3 = nn.InstanceNorm2d(ch, affine=True)
        for k, d in enumerate((2, 2, 2, 4, 4, 4)):
            setattr(self, f"res{k + 1}", _ResBlock(ch, d, smooth=True))
        self.res7 = _ResBlock(ch, 1, smooth=False)
        self.gate = nn.Conv2d(3 * ch, 3, 3, 1, 1, bias=True)
        self.deconv3 = nn.ConvTranspose2d(ch, ch, 4, 2, 1)
        self.norm4 = nn.InstanceNorm2d(ch, affine=True)
        self.deconv2 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.norm5 = nn.InstanceNorm2d(ch, affine=True)
        self.deconv1 = nn.Conv2d(ch, 3, 1)
        self.feature_points = ["res1", "res3", "res6"]  # half-resolution features, 0-255 scale inside

    def residual(self, inp: Tensor) -> Tensor:
        """The published network: (cat(RGB*255, edge) - 128) -> residual on the 0-255 scale."""
        y = F.relu(self.norm1(self.conv1(inp)))
        y = F.relu(self.norm2(self.conv2(y)))
        y1 = F.relu(self.norm3(self.conv3(y)))
        y = self.res3(self.res2(self.res1(y1)))
        y2 = self.res4(y)
        y3 = self.res7(self.res6(self.res5(y2)))
        g = self.gate(torch.cat((y1, y2, y3), 1))
        y = y1 * g[:, 0:1] + y2 * g[:, 1:2] + y3 * g[:, 2:3]
        y = F.relu(self.norm4(self.deconv3(y)))
        y = F.relu(self.norm5(self.deconv2(y)))
        return self.deconv1(y)

    def forward(self, x: Tensor) -> Tensor:
        xp, size = pad_to_multiple(x, 4)
        img = xp * 255.0
        inp = torch.cat((img, edge_map(img)), 1) - 128.0
        return crop_to((img + self.residual(inp)) / 255.0, size)


@register_model("gcanet", task="dehaze", family="peer", channels=3,
                peer_weights="GCANet/wacv_gcanet_dehaze.pth",
                published={"dataset": "SOTS-indoor", "metric": "psnr/ssim (RGB)", "value": 30.23, "ssim": 0.980,
                           "convention": "full 500-image SOTS indoor set, RGB", "source": "Chen et al. WACV 2019",
                           "text": "SOTS-indoor RGB PSNR/SSIM 30.23/0.980 (Chen et al. WACV 2019)"})
def gcanet() -> GCANet:
    """GCANet for dehazing (702,818 params)."""
    return GCANet()
