"""RepDN: a re-parameterisable plain denoiser on 2x2 pixel-unshuffled input (ours; FFDNet's layout,
RepVGG's blocks).

Layout (after FFDNet): the image is pixel-unshuffled 2x2 (a quarter of the pixels, 4 sub-images per
channel), a plain stack of ``depth`` 3x3 convolutions of ``width`` channels with ReLU runs at half
resolution, and the last one predicts the noise of the sub-images: ``clean = x - shuffle(net(unshuffle(x)))``.
No noise-level map: the network is blind (or trained at one sigma).

Blocks (after RepVGG, Ding et al. CVPR 2021, without BatchNorm): while training every convolution
is three branches, ``3x3 conv + 1x1 conv + per-channel scaled identity`` (identity only where input
and output widths match), summed. They are linear, so they fold exactly into one 3x3 convolution:
the 1x1 kernel goes to the centre tap and the identity to ``diag(scale)`` at the centre.
``deploy=True`` builds the folded network (one conv per layer, what inference and ONNX run);
:meth:`RepDN.fuse` folds a trained network in place. In eval mode the training form already runs
the folded kernel (computed from the branches on each call), so its speed equals the deployed one.

Weights: :meth:`RepDN.convert_state_dict` (called by ``load_weights``) detects the form of a checkpoint
and converts it to the model's form: branches -> folded (exact), folded -> branches (the folded
kernel in the 3x3 branch, the 1x1 branch and identity scale set to zero: the same function, trainable
again), and FFDNet's published checkpoint -> a student of width 64 (teacher initialisation: BatchNorm
folded into the convolutions, FFDNet's constant noise-level map at ``init_sigma`` folded into the first
bias, the first ``depth - 1`` convolutions kept, a zero tail: the network starts as the identity). A checkpoint of
another depth is refused by name, except that with ``init_grow=True`` a shallower RepDN checkpoint deepens
this model: identity layers (a Dirac 3x3 kernel, zero bias) are inserted after the ReLUs of its body,
spread evenly, so the deeper network starts as exactly the same function (a ReLU output is >= 0, so an
identity convolution and the next ReLU pass it unchanged) and trains on from there (net2net-style growth).

Quantisation-aware training: :func:`kdrestore.models.fakequant.set_fake_quant` switches on INT8
fake-quantisation of the folded kernels (per output channel, symmetric) and of the activations
(per tensor, observed range), as the static QDQ export quantises them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import KdrestoreError
from .common import crop_to, pad_to_multiple
from .fakequant import ActFakeQuant, fake_quant_weight
from .registry import register_model

_PUBLISHED = {"text": "ours: FFDNet layout (Zhang et al. TIP 2018) with RepVGG-style re-parameterisable "
                      "blocks (Ding et al. CVPR 2021), BatchNorm-free"}
_FFDNET_PREFIX = "intermediate_dncnn.itermediate_dncnn."


class RepConv(nn.Module):
    """``conv3x3 + conv1x1 (+ scale * identity)`` while training; one 3x3 conv once folded."""

    def __init__(self, cin: int, cout: int, deploy: bool = False) -> None:
        super().__init__()
        self.cin, self.cout = cin, cout
        self.fake_quant = False
        if deploy:
            self.fused = nn.Conv2d(cin, cout, 3, padding=1)
            return
        self.conv3 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv1 = nn.Conv2d(cin, cout, 1)
        self.scale = nn.Parameter(torch.ones(cout)) if cin == cout else None

    @property
    def deployed(self) -> bool:
        return hasattr(self, "fused")

    def folded(self) -> tuple[Tensor, Tensor]:
        """The single 3x3 kernel and bias equal to the sum of the branches."""
        if self.deployed:
            return self.fused.weight, self.fused.bias
        weight = self.conv3.weight + F.pad(self.conv1.weight, (1, 1, 1, 1))
        if self.scale is not None:
            eye = torch.eye(self.cout, dtype=weight.dtype, device=weight.device) * self.scale[:, None]
            weight = weight + F.pad(eye[:, :, None, None], (1, 1, 1, 1))
        return weight, self.conv3.bias + self.conv1.bias

    def forward(self, x: Tensor) -> Tensor:
        if self.training and not self.fake_quant and not self.deployed:
            y = self.conv3(x) + self.conv1(x)
            return y + x * self.scale.view(1, -1, 1, 1) if self.scale is not None else y
        weight, bias = self.folded()
        if self.fake_quant:
            weight = fake_quant_weight(weight)
        if torch.jit.is_tracing() and not self.deployed:  # ONNX export: the folded kernel as a constant
            with torch.no_grad():
                weight, bias = (torch.from_numpy(t.detach().cpu().numpy().copy()).to(x.device) for t in (weight, bias))
        return F.conv2d(x, weight, bias, padding=1)

    @torch.no_grad()
    def fuse(self) -> None:
        """Replace the branches by the folded convolution (in place)."""
        if self.deployed:
            return
        weight, bias = self.folded()
        conv = nn.Conv2d(self.cin, self.cout, 3, padding=1).to(weight)
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        del self.conv3, self.conv1, self.scale
        self.fused = conv


class RepDN(nn.Module):
    """Pixel-unshuffle -> ``depth`` RepConv (ReLU between) -> pixel-shuffle; predicts the noise."""

    def __init__(self, in_channels: int = 1, width: int = 64, depth: int = 8, deploy: bool = False,
                 init_sigma: float = 25.0, init_grow: bool = False) -> None:
        super().__init__()
        if depth < 2 or width < 1:
            raise KdrestoreError(f"repdn needs depth >= 2 and width >= 1, got depth {depth}, width {width}")
        self.in_channels, self.width, self.depth, self.init_sigma = in_channels, width, depth, float(init_sigma)
        self.init_grow = bool(init_grow)
        self.multiple = 2
        sub = 4 * in_channels
        sizes = [sub] + [width] * (depth - 1) + [sub]
        self.layers = nn.ModuleList(RepConv(a, b, deploy) for a, b in zip(sizes[:-1], sizes[1:]))
        self.acts = nn.ModuleList(ActFakeQuant() for _ in range(depth))  # after each ReLU and the tail
        self.input_quant = ActFakeQuant()
        self.feature_points: list[str] = [f"layers.{i}" for i in range(1, depth - 1, 2)]

    def forward(self, x: Tensor) -> Tensor:
        xp, size = pad_to_multiple(self.input_quant(x), 2, mode="replicate")
        f = F.pixel_unshuffle(xp, 2)
        last = len(self.layers) - 1
        for i, (layer, act) in enumerate(zip(self.layers, self.acts)):
            f = layer(f)
            f = act(f if i == last else F.relu(f))
        return crop_to(xp - F.pixel_shuffle(f, 2), size)

    def fuse(self) -> RepDN:
        """Fold every layer into one 3x3 convolution (in place); returns self."""
        for layer in self.layers:
            layer.fuse()
        return self

    # ---- checkpoints of the other form ------------------------------------------------------------
    def convert_state_dict(self, sd: dict[str, Tensor]) -> dict[str, Tensor]:
        """Map a checkpoint of either form (or FFDNet's published one) onto this model's form."""
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
        if any(k.startswith(_FFDNET_PREFIX) for k in sd):
            sd = self._from_ffdnet(sd)
        sd = self._grown(sd)
        own_deployed = self.layers[0].deployed
        has_fused = any(".fused." in k for k in sd)
        has_branches = any(".conv3." in k for k in sd)
        if own_deployed and has_branches:
            return _fold_state_dict(sd)
        if not own_deployed and has_fused and not has_branches:
            return self._unfold_state_dict(sd)
        return sd

    def _grown(self, sd: dict[str, Tensor]) -> dict[str, Tensor]:
        """``sd`` unchanged at this depth; a shallower checkpoint deepened by identity layers (``init_grow``)."""
        found = {int(k.split(".")[1]) for k in sd if k.startswith("layers.") and k.split(".")[1].isdigit()}
        have = max(found) + 1 if found else self.depth
        if have == self.depth:
            return sd
        if have > self.depth or not self.init_grow or have < 2:
            hint = ("; model.args.init_grow: true deepens a shallower checkpoint with identity layers (the same "
                    "function to start from)" if have < self.depth else "")
            raise KdrestoreError(f"repdn checkpoint has {have} layers but the model has depth {self.depth}{hint}")
        if any(".conv3." in k for k in sd):
            sd = _fold_state_dict(sd)
        old = [(sd[f"layers.{i}.fused.weight"], sd[f"layers.{i}.fused.bias"]) for i in range(have)]
        width = old[0][0].shape[0]
        identity = torch.zeros(width, width, 3, 3, dtype=old[0][0].dtype)
        identity[torch.arange(width), torch.arange(width), 1, 1] = 1.0
        extra, slots = self.depth - have, have - 1  # a slot after every layer but the tail
        chosen: list[tuple[Tensor, Tensor]] = []
        for i in range(slots):
            chosen.append(old[i])
            count = extra * (i + 1) // slots - extra * i // slots
            chosen += [(identity.clone(), identity.new_zeros(width))] * count
        chosen.append(old[-1])
        out = {k: v for k, v in sd.items() if not k.startswith("layers.")}
        for i, (w, b) in enumerate(chosen):
            out[f"layers.{i}.fused.weight"], out[f"layers.{i}.fused.bias"] = w, b
        return out

    def _unfold_state_dict(self, sd: dict[str, Tensor]) -> dict[str, Tensor]:
        out = {k: v for k, v in sd.items() if ".fused." not in k}
        for i, layer in enumerate(self.layers):
            w, b = sd.get(f"layers.{i}.fused.weight"), sd.get(f"layers.{i}.fused.bias")
            if w is None or b is None:
                continue  # reported as missing keys by the loader
            out[f"layers.{i}.conv3.weight"], out[f"layers.{i}.conv3.bias"] = w, b
            out[f"layers.{i}.conv1.weight"] = w.new_zeros(w.shape[0], w.shape[1], 1, 1)
            out[f"layers.{i}.conv1.bias"] = b.new_zeros(b.shape)
            if layer.scale is not None:
                out[f"layers.{i}.scale"] = w.new_zeros(w.shape[0])
        return out

    def _from_ffdnet(self, sd: dict[str, Tensor]) -> dict[str, Tensor]:
        convs = _ffdnet_convs(sd)
        if self.in_channels * 5 != convs[0][0].shape[1] or self.width != convs[0][0].shape[0]:
            raise KdrestoreError(
                f"FFDNet checkpoint (first conv {tuple(convs[0][0].shape)}) cannot initialise repdn with "
                f"{self.in_channels} channel(s) and width {self.width}: teacher initialisation needs "
                f"width {convs[0][0].shape[0]} and the teacher's colour mode")
        if self.depth > len(convs):
            raise KdrestoreError(f"FFDNet checkpoint has {len(convs)} convolutions; repdn depth {self.depth} "
                                 "cannot be initialised from it")
        c = self.in_channels
        w0, b0 = convs[0]
        head_w = w0[:, c:]  # drop the noise-map inputs; their constant map goes into the bias
        head_b = b0 + w0[:, :c].sum(dim=(1, 2, 3)) * (self.init_sigma / 255.0)
        tail_w, _ = convs[-1]  # FFDNet's own tail reads its 15th layer: on a truncated stack it yields
        # garbage (7.7 dB on held-out BSD400 at depth 8), so the tail starts at zero (output = input)
        tail = (tail_w.new_zeros(tail_w.shape), tail_w.new_zeros(tail_w.shape[0]))
        chosen = [(head_w, head_b)] + convs[1:self.depth - 1] + [tail]
        out = {}
        for i, (w, b) in enumerate(chosen):
            out[f"layers.{i}.fused.weight"], out[f"layers.{i}.fused.bias"] = w, b
        return out


def _ffdnet_convs(sd: dict[str, Tensor]) -> list[tuple[Tensor, Tensor]]:
    """FFDNet's convolutions in order with BatchNorm folded in (weight, bias)."""
    idx = sorted({int(k[len(_FFDNET_PREFIX):].split(".")[0]) for k in sd if k.startswith(_FFDNET_PREFIX)})
    convs: list[tuple[Tensor, Tensor]] = []
    for i in idx:
        w = sd.get(f"{_FFDNET_PREFIX}{i}.weight")
        if w is None or w.dim() != 4:
            continue
        w = w.float()
        bias = torch.zeros(w.shape[0])
        bn = f"{_FFDNET_PREFIX}{i + 1}."
        if f"{bn}running_mean" in sd:
            std = torch.sqrt(sd[f"{bn}running_var"].float() + 1e-5)
            gamma, beta = sd[f"{bn}weight"].float(), sd[f"{bn}bias"].float()
            w = w * (gamma / std)[:, None, None, None]
            bias = beta - sd[f"{bn}running_mean"].float() * gamma / std
        convs.append((w, bias))
    return convs


def _fold_state_dict(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Branch checkpoint -> folded checkpoint (exact)."""
    out = {k: v for k, v in sd.items() if not any(p in k for p in (".conv3.", ".conv1.")) and not k.endswith(".scale")}
    prefixes = sorted({k[: k.index(".conv3.")] for k in sd if ".conv3." in k})
    for p in prefixes:
        w = sd[f"{p}.conv3.weight"].float() + F.pad(sd[f"{p}.conv1.weight"].float(), (1, 1, 1, 1))
        scale = sd.get(f"{p}.scale")
        if scale is not None:
            w = w + F.pad(torch.diag(scale.float())[:, :, None, None], (1, 1, 1, 1))
        out[f"{p}.fused.weight"] = w
        out[f"{p}.fused.bias"] = sd[f"{p}.conv3.bias"].float() + sd[f"{p}.conv1.bias"].float()
    return out


@register_model("repdn", task="denoise", family="student", channels=1, published=_PUBLISHED)
def repdn(in_channels: int = 1, width: int = 64, depth: int = 8, deploy: bool = False,
          init_sigma: float = 25.0, init_grow: bool = False) -> RepDN:
    """Gray RepDN: 2x2 pixel-unshuffled plain re-parameterisable net (64 ch x 8 layers: ~0.23M params)."""
    return RepDN(in_channels, width, depth, deploy, init_sigma, init_grow)


@register_model("repdn-rgb", task="denoise", family="student", channels=3, published=_PUBLISHED)
def repdn_rgb(in_channels: int = 3, width: int = 96, depth: int = 8, deploy: bool = False,
              init_sigma: float = 25.0, init_grow: bool = False) -> RepDN:
    """Colour RepDN (96 ch x 8 layers, FFDNet-RGB's width)."""
    return RepDN(in_channels, width, depth, deploy, init_sigma, init_grow)
