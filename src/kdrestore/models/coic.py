"""CoIC: context-based instance-level modulation of any restoration backbone (Ran et al., "Harnessing Joint
Rain-/Detail-aware Representations to Eliminate Intricate Rains", ICLR 2024, arXiv 2404.12091).

What the paper states: an instance encoder turns each rainy image into a normalised embedding that
describes its rain and background detail; CoI-M uses it, with the layer's own input context, to reweight
every convolution kernel per instance (CNNs), and to modulate the key/value inputs of attention
(Transformers); the encoder is trained with a rain-/detail-aware contrastive loss
(:mod:`kdrestore.distill.methods.coic`).

Our reading (sizes, initialisation and the 1x1 rule are ours; the formula follows the authors' code):

* **encoder**: 3x3 conv, three stride-2 residual stages (widths w, 2w, 4w, 8w; LeakyReLU 0.1, no
  BatchNorm) -> feature map ``f`` (1/8 resolution; the contrastive loss compares these, as the authors'
  code does), global average pool, 2-layer MLP, L2 normalisation -> ``z`` (``dim``, the modulation input).
* **CoI-M conv** (:class:`CoIMConv2d`, every wrapped k x k conv with k > 1): ``h = MLP([z, GAP(input)])``
  split into ``a`` (C_out), ``b`` (C_in/groups), ``s`` (k*k); the per-instance kernel is
  ``W * k^2 * softmax_kk(sigmoid(a_o + b_i) * s)``, applied as one grouped conv over the batch (eager)
  or as unfold + batched matmul (ONNX tracing: batch stays dynamic). The MLP's last layer starts at
  zero, so a new model computes exactly its backbone. 1x1 convs are not modulated (a softmax over one
  tap is constant).
* **key/value context** (:class:`KVContextConv`, Restormer's MDTA): ``k, v`` are computed from
  ``LN(x) + Linear(SiLU(z))`` instead of ``LN(x)`` (``q`` unchanged); the 1x1 ``qkv`` conv is linear,
  so this is an exact per-instance shift of its k/v outputs. The Linear starts at zero.

* **what the encoder sees** (``context_size``): 0 (default, our first reading) embeds the network's own
  input, which in training is the crop; ``context_size: S`` embeds the WHOLE rainy image resized to
  ``S x S`` (:func:`context_view`, as the authors' code does), given in training by the data
  (``data.train.context: S``: the whole image's view beside each crop, :mod:`kdrestore.data.synth`,
  :mod:`kdrestore.data.paired`) and computed from the input itself otherwise (a whole image at
  inference). Tiled inference pins the whole image's embedding for all tiles (:meth:`CoICNet.pinned`).

Wrapped convs subclass ``nn.Conv2d`` and keep their names, so the backbone's keys are unchanged under
``backbone.``; ``modulate = False`` runs the plain backbone (stage 1 of training).
"""
from __future__ import annotations

import contextlib
import copy
import fnmatch
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import KdrestoreError
from .registry import build_model, register_model

_PUBLISHED = {"text": "Ran et al., 'Harnessing Joint Rain-/Detail-aware Representations to Eliminate Intricate "
                      "Rains' (CoIC), ICLR 2024; encoder sizes and initialisation are our reading"}


def context_view(image: Tensor, size: int) -> Tensor:
    """``B x C x H x W`` -> ``B x C x size x size``: the whole image as CoIC's encoder sees it (bilinear
    with antialiasing; the same function makes the training views and the inference view)."""
    if image.shape[-2:] == (size, size):
        return image
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class _Context:
    """The embedding shared by the modulated layers of one model (``z`` only while its forward runs)."""

    def __init__(self) -> None:
        self.z: Tensor | None = None
        self.pinned: Tensor | None = None  # an embedding held for every forward (tiled inference)
        self.last: Tensor | None = None
        self.features: Tensor | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> "_Context":
        return _Context()  # never copy a live graph (EMA / snapshot copies)


class _Stage(nn.Module):
    """Stride-2 residual stage: ``act(conv(act(conv_s2(x))) + conv1x1_s2(x))``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 2, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1, 2, 0)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv2(F.leaky_relu(self.conv1(x), 0.1))
        return F.leaky_relu(y + self.skip(x), 0.1)


class InstanceEncoder(nn.Module):
    """Image ``B x C x H x W`` -> unit embedding ``B x dim`` (conv, three stride-2 stages, pool, MLP)."""

    def __init__(self, in_channels: int = 3, width: int = 8, dim: int = 64) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_channels, width, 3, 1, 1)
        self.stages = nn.Sequential(*[_Stage(width * 2**i, width * 2 ** (i + 1)) for i in range(3)])
        self.mlp = nn.Sequential(nn.Linear(8 * width, dim), nn.LeakyReLU(0.1), nn.Linear(dim, dim))
        self.dim = dim

    def features(self, x: Tensor) -> Tensor:
        """The 1/8-resolution map ``B x 8w x h x w`` the embedding is pooled from."""
        return self.stages(F.leaky_relu(self.head(x), 0.1))

    def embed(self, f: Tensor) -> Tensor:
        return F.normalize(self.mlp(f.mean(dim=(2, 3))), dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.embed(self.features(x))


class CoIMConv2d(nn.Conv2d):
    """A k x k conv whose kernel is reweighted per instance from the embedding and its input's mean."""

    def __init__(self, conv: nn.Conv2d, ctx: _Context, dim: int, hidden: int = 16) -> None:
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise KdrestoreError(f"CoI-M needs integer zero padding, got {conv.padding!r} / {conv.padding_mode}")
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size,  # type: ignore[arg-type]
                         conv.stride, conv.padding, conv.dilation, conv.groups, conv.bias is not None,  # type: ignore[arg-type]
                         device=conv.weight.device, dtype=conv.weight.dtype)
        self.load_state_dict(conv.state_dict())
        self.ctx = ctx
        taps = self.kernel_size[0] * self.kernel_size[1]
        self.generator = nn.Sequential(nn.Linear(dim + self.in_channels, hidden), nn.ReLU(),
                                       nn.Linear(hidden, self.out_channels + self.in_channels // self.groups + taps))
        nn.init.zeros_(self.generator[2].weight)
        nn.init.zeros_(self.generator[2].bias)

    def modulation(self, x: Tensor, z: Tensor) -> Tensor:
        """Per-instance kernel scales ``B x C_out x C_in/g x kh x kw`` (all ones at initialisation)."""
        o, i = self.out_channels, self.in_channels // self.groups
        h = self.generator(torch.cat([z, x.mean(dim=(2, 3))], 1))
        a, b, s = h[:, :o], h[:, o:o + i], h[:, o + i:]
        gate = torch.sigmoid(a[:, :, None] + b[:, None, :])[..., None] * s[:, None, None, :]
        att = torch.softmax(gate, dim=-1) * s.shape[1]
        return att.reshape(-1, o, i, *self.kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        z = self.ctx.z
        if z is None:
            return super().forward(x)
        weight = self.weight.unsqueeze(0) * self.modulation(x, z)
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return self._unfold_conv(x, weight)
        b = x.shape[0]
        bias = self.bias.repeat(b) if self.bias is not None else None
        out = F.conv2d(x.reshape(1, -1, *x.shape[2:]), weight.reshape(-1, *weight.shape[2:]), bias,
                       self.stride, self.padding, self.dilation, b * self.groups)  # type: ignore[arg-type]
        return out.reshape(b, self.out_channels, *out.shape[2:])

    def _unfold_conv(self, x: Tensor, weight: Tensor) -> Tensor:
        """The same per-instance conv as im2col + batched matmul (no batch-sized group count to bake in)."""
        b, g = x.shape[0], self.groups
        kh, ph, dh, sh = self.kernel_size[0], self.padding[0], self.dilation[0], self.stride[0]  # type: ignore[index]
        h_out = (x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)  # B x C_in*k*k x L
        cols = cols.reshape(b, g, -1, cols.shape[-1])
        out = weight.reshape(b, g, self.out_channels // g, -1) @ cols  # B x g x C_out/g x L
        out = out.reshape(b, self.out_channels, h_out, -1)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


class KVContextConv(nn.Conv2d):
    """The 1x1 ``qkv`` conv of an MDTA block with ``k, v`` computed from ``input + Linear(SiLU(z))``."""

    def __init__(self, conv: nn.Conv2d, ctx: _Context, dim: int) -> None:
        if conv.kernel_size != (1, 1) or conv.out_channels != 3 * conv.in_channels or conv.groups != 1:
            raise KdrestoreError("the key/value context needs a 1x1 qkv conv with 3 x C outputs")
        super().__init__(conv.in_channels, conv.out_channels, 1, bias=conv.bias is not None,
                         device=conv.weight.device, dtype=conv.weight.dtype)
        self.load_state_dict(conv.state_dict())
        self.ctx = ctx
        self.context = nn.Linear(dim, conv.in_channels)
        nn.init.zeros_(self.context.weight)
        nn.init.zeros_(self.context.bias)

    def forward(self, x: Tensor) -> Tensor:
        y = super().forward(x)
        z = self.ctx.z
        if z is None:
            return y
        c = self.in_channels
        shift = self.context(F.silu(z)) @ self.weight[c:, :, 0, 0].t()  # B x 2C: W_kv (x + ctx) - W_kv x
        return y + F.pad(shift, (c, 0))[:, :, None, None]


class CoICNet(nn.Module):
    """A backbone whose convs (and attention k/v) are modulated per instance by an :class:`InstanceEncoder`."""

    def __init__(self, backbone: nn.Module, in_channels: int = 3, wrap: Sequence[str] = ("*",), dim: int = 64,
                 encoder_width: int = 8, hidden: int = 16, kv_context: bool = True, context_size: int = 0) -> None:
        super().__init__()
        if context_size < 0 or (context_size and context_size % 8):
            raise KdrestoreError(f"model.args.context_size: 0 (embed the input) or a multiple of 8, got {context_size}")
        self.context_size = int(context_size)
        self.encoder = InstanceEncoder(in_channels, encoder_width, dim)
        self.backbone = backbone
        self._ctx = _Context()
        self.modulate = True
        self.wrapped = self._wrap(list(wrap), dim, hidden, kv_context)
        if not self.wrapped:
            raise KdrestoreError(f"model.args.wrap {list(wrap)} matches no k x k conv of {type(backbone).__name__}")
        self.feature_points = [f"backbone.{p}" for p in getattr(backbone, "feature_points", [])]
        if isinstance(getattr(backbone, "multiple", None), int):
            self.multiple = backbone.multiple

    def _wrap(self, patterns: list[str], dim: int, hidden: int, kv_context: bool) -> list[str]:
        from .restormer import MDTA

        done = []
        for name, module in list(self.backbone.named_modules()):
            for child_name, child in list(module.named_children()):
                path = f"{name}.{child_name}" if name else child_name
                if type(child) is not nn.Conv2d:
                    continue
                if kv_context and isinstance(module, MDTA) and child_name == "qkv":
                    setattr(module, child_name, KVContextConv(child, self._ctx, dim))
                elif max(child.kernel_size) > 1 and any(fnmatch.fnmatchcase(path, p) for p in patterns):
                    setattr(module, child_name, CoIMConv2d(child, self._ctx, dim, hidden))
                else:
                    continue
                done.append(path)
        return done

    @property
    def embedding(self) -> Tensor | None:
        """The embedding of the last modulated forward (``None`` when modulation was off)."""
        return self._ctx.last

    @property
    def instance_features(self) -> Tensor | None:
        """The encoder's feature map in the last modulated forward (what the contrastive loss compares)."""
        return self._ctx.features

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """``context``: the whole image's :func:`context_view` when ``x`` is a crop of it (training);
        by default the encoder embeds ``x`` itself (resized to ``context_size`` when that is set)."""
        if not self.modulate:
            self._ctx.last = self._ctx.features = None
            return self.backbone(x)
        if self._ctx.pinned is not None:
            z, f = self._ctx.pinned.expand(x.shape[0], -1), None  # one image's embedding for its tiles
        else:
            if context is None:
                context = context_view(x, self.context_size) if self.context_size else x
            elif context.shape[-2:] != (self.context_size, self.context_size):
                raise KdrestoreError(f"coic: a context view of {tuple(context.shape[-2:])} for a model with "
                                     f"context_size {self.context_size}")
            f = self.encoder.features(context)
            z = self.encoder.embed(f)
        self._ctx.z, self._ctx.last, self._ctx.features = z, z, f
        try:
            return self.backbone(x)
        finally:
            self._ctx.z = None

    @contextlib.contextmanager
    def pinned(self, image: Tensor) -> Iterator[None]:
        """Hold the embedding of the whole ``image`` (``1 x C x H x W``) for every forward inside (the tiles
        of that image, in batches of any size). A model that embeds its input (``context_size`` 0) is
        left as it is."""
        if image.shape[0] != 1:
            raise KdrestoreError(f"coic: pin one image at a time, got a batch of {image.shape[0]}")
        if not self.context_size or not self.modulate:
            yield
            return
        self._ctx.pinned = self.encoder(context_view(image, self.context_size))
        try:
            yield
        finally:
            self._ctx.pinned = None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@register_model("coic", task="derain", family="student", channels=3, published=_PUBLISHED)
def coic(backbone: str = "msresnet-tiny", backbone_args: dict[str, Any] | None = None,
         wrap: Sequence[str] = ("*",), dim: int = 32, encoder_width: int = 4, hidden: int = 16,
         kv_context: bool = True, context_size: int = 0) -> CoICNet:
    """CoIC around a registered ``backbone`` (default msresnet-tiny): every k x k conv matching ``wrap``
    (fnmatch patterns on the backbone's module paths) is CoI-M modulated; MDTA k/v get the context.
    ``context_size``: embed the whole image resized to that size (the authors' setting), 0 the input."""
    if backbone.lower() == "coic":
        raise KdrestoreError("model.args.backbone: coic cannot wrap itself")
    args = copy.deepcopy({k: _plain(v) for k, v in (backbone_args or {}).items()})
    net = build_model(backbone, **args)
    return CoICNet(net, int(args.get("in_channels", 3)), wrap, dim, encoder_width, hidden, kv_context, context_size)
