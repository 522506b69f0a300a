"""Teachers: a registry model with weights, a published peer, a ``torch.export`` file (``.pt2``), a
TorchScript file (deprecated by PyTorch: loading one shows its DeprecationWarning) or any ``nn.Module``.

A teacher is frozen (no gradients) and stays in eval mode. Its outputs can be cached by input
content, a noise-map teacher (FFDNet) can take each sample's true noise level from the batch
(``sigma_from_batch``: the blind-noise teacher for a blind student), and a check on the first batch
catches a teacher whose output range differs from the student's (for example 0-255 against 0-1).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import Tensor, nn

from ..config import TeacherSpec  # noqa: F401  (a recipe's teacher; typed with the recipe)
from ..errors import KdrestoreError


class PerChannel(nn.Module):
    """A gray model applied to every channel of a ``B x C x H x W`` batch (channels folded into the batch)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.feature_points = [f"model.{p}" for p in getattr(model, "feature_points", [])]

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        return self.model(x.reshape(b * c, 1, h, w)).reshape(b, c, h, w)


TEACHER_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class ExportedModule(nn.Module):
    """A ``torch.export`` program as a module; its graph is fixed (exported in eval mode), so ``train`` is a no-op.

    Load only ``.pt2`` files you trust: ``torch.export.load`` may fall back to unpickling. A program exported
    without ``dynamic_shapes`` accepts only its example's batch and size; that is reported by name.
    """

    def __init__(self, program: nn.Module, source: str = "") -> None:
        super().__init__()
        self.program, self.source = program, source

    def train(self, mode: bool = True) -> ExportedModule:  # the exported graph has no train mode
        self.training = False
        return self

    def forward(self, x: Tensor) -> Tensor:
        try:
            return self.program(x)
        except (AssertionError, RuntimeError) as exc:
            if "guard" not in str(exc).lower():
                raise
            raise KdrestoreError(f"the torch.export teacher {self.source} refuses an input of shape {tuple(x.shape)} "
                                 f"({exc}); export it with dynamic_shapes for the batch, height and width") from exc


class FrozenTeacher(nn.Module):
    """Wraps a teacher: frozen parameters, always eval mode, optional output cache.

    ``precision`` ``bf16``/``fp16`` runs the teacher under autocast (outputs returned as float32);
    ``channels_last`` stores its weights and inputs in that memory format. Both are speed options
    (on this project's AVX-512 CPU a DnCNN teacher runs about 4x faster in bf16); measure the
    teacher's own score in that precision before trusting its targets.
    """

    def __init__(self, model: nn.Module, name: str, cache: bool = False, precision: str = "fp32",
                 channels_last: bool = False, sigma_from_batch: bool = False) -> None:
        super().__init__()
        self.sigma_from_batch = sigma_from_batch
        if precision not in TEACHER_PRECISIONS:
            raise KdrestoreError(f"teacher precision must be one of {list(TEACHER_PRECISIONS)}, got {precision!r}")
        self.model, self.name, self.cache = model, name, cache
        self.precision, self.channels_last = precision, channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._cache: dict[bytes, Tensor] = {}
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> FrozenTeacher:  # never leave eval mode (BatchNorm, dropout)
        super().train(False)
        return self

    def run(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        """The teacher on ``x`` in its precision and memory format (no cache, no gradient context);
        ``sigma`` (0-255, one per sample) only for a ``sigma_from_batch`` teacher."""
        dtype = TEACHER_PRECISIONS[self.precision]
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        kwargs = {"sigma": self._checked_sigma(sigma, x)} if self.sigma_from_batch else {}
        if dtype is None:
            return self.model(x, **kwargs)
        with torch.autocast(x.device.type, dtype=dtype):
            out = self.model(x, **kwargs)
        return out.float() if isinstance(out, Tensor) else out

    def _checked_sigma(self, sigma: Tensor | None, x: Tensor) -> Tensor:
        if sigma is None or not isinstance(sigma, Tensor) or sigma.numel() != x.shape[0] or bool(sigma.isnan().any()):
            raise KdrestoreError(f"teacher {self.name} takes each sample's noise level from the batch "
                                 "(sigma_from_batch) but got none for some samples: the training data must be "
                                 "noise (AWGN) and the method kd or kd-qat; otherwise give the teacher a fixed "
                                 "args.sigma")
        return sigma.to(device=x.device, dtype=torch.float32)

    @torch.no_grad()
    def forward(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        if not self.cache:
            return self.run(x, sigma)
        levels = sigma.tolist() if self.sigma_from_batch and isinstance(sigma, Tensor) else [None] * x.shape[0]
        keys = [hashlib.sha1(s.detach().cpu().numpy().tobytes() + repr(level).encode()).digest()
                for s, level in zip(x, levels)]
        if all(k in self._cache for k in keys):
            return torch.stack([self._cache[k] for k in keys]).to(x.device)
        out = self.run(x, sigma)
        for k, o in zip(keys, out):
            self._cache[k] = o.detach().cpu()
        return out


def load_teacher(spec: TeacherSpec | nn.Module, peers: str | None = None, cache: bool = False,
                 precision: str = "fp32", channels_last: bool = False) -> FrozenTeacher:
    """Build a frozen teacher from a spec (registry name + weights, torch.export or TorchScript file, an
    ensemble) or wrap a module; ``precision``/``channels_last`` as :class:`FrozenTeacher`."""
    speed = {"precision": precision, "channels_last": channels_last}
    if isinstance(spec, nn.Module):
        return FrozenTeacher(spec, type(spec).__name__, cache, **speed)
    model, name, _ = _teacher_module(spec, peers)
    if spec.sigma_from_batch:
        _check_sigma_from_batch(spec, model, name)
    return FrozenTeacher(model, name, cache, sigma_from_batch=spec.sigma_from_batch, **speed)


def _check_sigma_from_batch(spec: TeacherSpec, model: nn.Module, name: str) -> None:
    """A ``sigma_from_batch`` teacher must be one noise-map model whose level is not fixed by ``args.sigma``."""
    if spec.members or spec.self_ensemble or spec.per_channel:
        raise KdrestoreError(f"teacher {name}: sigma_from_batch applies to one noise-map model, not to an "
                             "ensemble, a self-ensemble or a per-channel teacher")
    if "sigma" in spec.args:
        raise KdrestoreError(f"teacher {name}: sigma_from_batch takes the level from the batch; remove args.sigma "
                             f"({spec.args['sigma']})")
    if not callable(getattr(model, "set_noise_level", None)):
        raise KdrestoreError(f"teacher {name} has no noise-level input (such as FFDNet's map): sigma_from_batch "
                             "does not apply to it")


def _teacher_module(spec: TeacherSpec, peers: str | None) -> tuple[nn.Module, str, Any]:
    """The teacher's module, its name and its input convention (for ensembles)."""
    from .ensemble import MeanEnsemble, SelfEnsemble, check_conventions, input_convention

    if spec.members:
        if spec.name or spec.torchscript or spec.exported:
            raise KdrestoreError("a teacher spec with 'members' (an ensemble) takes no 'name', 'exported' or "
                                 "'torchscript'")
        built = [_teacher_module(m, peers) for m in spec.members]
        check_conventions([c for _, _, c in built])
        model: nn.Module = MeanEnsemble([m for m, _, _ in built], [m.weight for m in spec.members])
        name, convention = "mean(" + ", ".join(n for _, n, _ in built) + ")", built[0][2]
    else:
        model, name = _single_module(spec, peers)
        from ..models.registry import model_entry

        meta_channels = model_entry(spec.name).meta.get("channels") if spec.name else None
        convention = input_convention(name, model, spec.args, spec.per_channel, meta_channels)
        if spec.per_channel:
            model = PerChannel(model)
    if spec.self_ensemble:
        model, name = SelfEnsemble(model), f"x8({name})"
    return model, name, convention


def _single_module(spec: TeacherSpec, peers: str | None) -> tuple[nn.Module, str]:
    if spec.exported:
        path = Path(spec.exported)
        if not path.is_file():
            raise KdrestoreError(f"teacher torch.export file not found: {path}")
        try:
            return ExportedModule(torch.export.load(str(path)).module(), str(path)), path.name
        except Exception as exc:
            raise KdrestoreError(f"cannot load the torch.export teacher {path}: {exc}") from exc
    if spec.torchscript:
        path = Path(spec.torchscript)
        if not path.is_file():
            raise KdrestoreError(f"teacher TorchScript file not found: {path}")
        return torch.jit.load(str(path), map_location="cpu"), path.name
    if not spec.name:
        raise KdrestoreError("a teacher needs 'name' (a registered model), 'exported' (a torch.export file), "
                             "'torchscript' (a file) or 'members' (an ensemble)")
    from ..evaluate.api import load_model
    from ..models.registry import build_model

    if spec.args:
        from ..models.registry import default_weights, model_entry
        from ..models.weights import load_weights

        model = build_model(spec.name, **spec.args)
        path = spec.weights or default_weights(spec.name, peers)
        if path is None and model_entry(spec.name).meta.get("peer_weights"):  # as load_model: never a random peer
            raise KdrestoreError(f"teacher '{spec.name}' with args {spec.args} has no weights: give 'weights', or "
                                 "--peers / $KDRESTORE_PEERS for its published file")
        if path is not None:
            load_weights(model, path)
    else:
        model = load_model(spec.name, spec.weights, peers)
    return model, spec.name


def check_output_range(teacher: FrozenTeacher, x: Tensor, student_out: Tensor) -> None:
    """Refuse a teacher whose outputs live on another scale than the student's (checked once)."""
    nominal = torch.full((x.shape[0],), 25.0, device=x.device) if teacher.sigma_from_batch else None
    t = teacher(x, nominal) if nominal is not None else teacher(x)  # the scale, at a nominal level 25
    if t.shape != student_out.shape:
        raise KdrestoreError(f"teacher {teacher.name} returns shape {tuple(t.shape)} but the student "
                             f"returns {tuple(student_out.shape)} for the same input {tuple(x.shape)}")
    t_hi, s_hi, x_hi = float(t.abs().amax()), float(student_out.detach().abs().amax()), float(x.abs().amax())
    ref = max(s_hi, x_hi, 1e-6)
    if t_hi > 4 * ref + 1 or t_hi < ref / 20:
        raise KdrestoreError(f"teacher {teacher.name} outputs values up to {t_hi:.3g} while the inputs reach "
                             f"{x_hi:.3g} and the student {s_hi:.3g}: different ranges (0-255 vs 0-1?); "
                             "wrap the teacher so it maps [0,1] images to [0,1] images")


class FirstBatchRangeCheck:
    """:func:`check_output_range` on the first batch only: every method with teachers runs this one."""

    def __init__(self) -> None:
        self.done = False

    def __call__(self, checks: Iterable[tuple[FrozenTeacher, Tensor, Tensor]]) -> None:
        """``checks``: ``(teacher, input, student output)``, each slice one or a few samples."""
        if self.done:
            return
        for teacher, x, student_out in checks:
            check_output_range(teacher, x, student_out)
        self.done = True
