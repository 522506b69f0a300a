"""Data-free distillation: a student learns from frozen teachers on images a generator invents.

Lineage: adversarial data-free KD (DFAD, Fang et al., arXiv 1912.11006; for restoration DFSR, Zhang et
al., CVPR 2021): a generator searches for inputs where student and teacher disagree, the student closes
the gap; BatchNorm-statistics matching of DeepInversion (Yin et al., CVPR 2020) and the mode-seeking
ratio of MSGAN (Mao et al., CVPR 2019) keep samples natural and diverse; AECR-Net's contrastive
regularisation (anchor ``S(x)``, positive ``T(x)``, negative ``x``) is added to the student loss.

Our reading (the weights, the generator and the schedule are ours). The data set is ``kind: latent``
(a label and a seed per sample, :mod:`kdrestore.data.latent`); :class:`DegradationAwareGenerator` makes
clean content from ``z`` and the label's differentiable haze / rain / noise model degrades it. ``T`` is
the teacher covering the sample's label (``distill.teachers[i].degradations``; several are averaged by
``weight``); options under ``distill.options``:

* **images and windows**: ``G`` makes images of ``data.train.crop`` pixels, or larger when a label has a
  ``context`` (``{haze: 128}``: GCANet needs ~128+ px of scene to dehaze; on 32-64 px crops it scores
  14-15 dB on SOTS). The student and every loss use a random ``crop`` window of each image; a teacher
  sees the whole image of a label with context and its output is cut to the window;
* **generator phase**, at the start of every ``generator_every``-th step from ``generator_start`` on
  (DFAD trains the student 5 times per generator update), ``generator_steps`` Adam updates of ``G`` only,
  each on a fresh batch drawn from a generator seeded by ``(train.seed, step, k)``, student in eval mode::

      L_G = - adversarial_weight * L1(S(x), T(x))     (through S and, with ``teacher_grad``, T)
            + fidelity_weight * L1(T(x), J)   (the teacher can restore x: x stays in its domain)
            + bn_weight * mean_l (|mu_l(x) - mu_l^T|_2 + |var_l(x) - var_l^T|_2)   (teachers with BN)
            + tv_weight * TV(J) - diversity_weight * mean_i min(|J_i - J_j|_1 / |z_i - z_j|_1, diversity_cap)

  with ``x = G(z, label)``, ``J`` its clean content, ``j`` the next sample of the batch; the BN term
  (DnCNN) pushes the statistics of the images the teacher sees to those it was trained on;
* **student step** (the trainer's loop), on ``x = G(z, label)`` from the batch's seeds, ``G`` frozen::

      L_S = output.weight * d(S(x), T(x)) + contrastive.weight * sum_i n_i/B * CR_i(S(x), T(x), x)

  ``CR_i`` in the features of teacher ``i`` (its first ``contrastive_layers`` feature points, or
  ``distill.contrastive.points``) over the ``n_i`` samples it covers.
* **degradation-aware adversary** (``adversarial_degradation: true``; off by default): the degradation
  parameters given as ranges (haze ``beta``/``airlight``, rain ``veil``/``veil_airlight``, a noise
  ``sigma`` range) are moved by learned offsets inside their ranges
  (:class:`~kdrestore.distill.generator.DegradationShift`), trained with ``G`` in the generator phase,
  so the adversary searches the degradation too, not only the image content; the student step uses the
  moved parameters; the moved mid-points are logged as ``gen_shift_<label>.<param>``.

G's weights and optimiser are saved with the training state: a resumed run continues exactly. Grids of
G's (clean | degraded) samples for fixed codes go to ``<run>/generator/step_<step>.png`` every
``sample_every`` steps, G's terms to ``<run>/generator/log.csv``.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...config import RunConfig, distill_section, method_options
from ...data.imageio import write_image
from ...data.latent import latent_labels
from ...rundir.logger import RunLogger
from ..method import Method
from ...errors import KdrestoreError
from ..generator import (DegradationAwareGenerator, DegradationShift, Latents, crop_windows, draw_latents,
                         mode_seeking, probe_seeds, sample_grid, synthesis_params, total_variation)
from ..losses import ContrastiveRegularization, HookedFeatures, output_distillation
from ..losses.bnstats import BatchNormStatistics
from ..teacher import FirstBatchRangeCheck, load_teacher


@dataclass
class DataFreeOptions:
    latent_channels: int = 16
    generator_width: int = 32
    chroma: float | None = None  # bound the generated colour (logit deviation; e.g. 0.5 for per-channel teachers)
    generator_lr: float = 1e-3
    generator_betas: tuple[float, float] = (0.5, 0.999)
    context: dict[str, int] = field(default_factory=dict)  # label -> generated size the teacher sees
    generator_every: int = 5  # one generator phase every N student steps (DFAD: 5)
    generator_steps: int = 1  # generator updates per phase
    generator_start: int = 0  # first step with a generator phase
    generator_batch: int | None = None  # default: train.batch_size
    generator_grad_clip: float | None = 5.0
    teacher_grad: bool = True  # the adversarial gradient also flows through the teacher
    adversarial_weight: float = 1.0
    fidelity_weight: float = 1.0  # the teacher restores the generated image to its clean content
    bn_weight: float = 0.01
    tv_weight: float = 0.02
    diversity_weight: float = 0.5
    diversity_cap: float | None = 0.2  # ratio past which diversity is not rewarded (natural pairs: ~0.2)
    contrastive_layers: int = 1
    sample_every: int = 0  # write a sample grid every N steps (0: never)
    sample_count: int = 4  # samples per label in a grid
    adversarial_degradation: bool = False  # the generator phase also moves the degradation parameters


def _is_main() -> bool:
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


class DataFreeDistillation(Method):
    """Adversarial data-free (multi-teacher) distillation; see the module docstring."""

    name = "datafree"

    def __init__(self, cfg: RunConfig, teachers: list[nn.Module] | None = None) -> None:
        super().__init__(cfg)
        self.dcfg, train = distill_section(cfg), cfg.data.train
        if train.kind != "latent":
            raise KdrestoreError(f"distill.method datafree generates its inputs: set data.train.kind: latent "
                                 f"(got {train.kind!r})")
        if self.dcfg.features or (self.dcfg.output is None and self.dcfg.contrastive is None):
            raise KdrestoreError("distill: the datafree method trains with 'output' and/or 'contrastive' terms "
                                 "(no 'features')")
        self.opts: DataFreeOptions = method_options(cfg, DataFreeOptions)
        o = self.opts
        if o.generator_every < 1 or o.generator_steps < 0 or o.sample_every < 0 or o.contrastive_layers < 1:
            raise KdrestoreError("distill.options: generator_every and contrastive_layers must be >= 1, "
                                 "generator_steps and sample_every >= 0")
        if train.crop is None:
            raise KdrestoreError("data.train.crop: the size of the generated images is required (a multiple of 4)")
        self.labels = latent_labels(train.params, train.task or cfg.task)
        self.params = synthesis_params(train.params)
        self.size, self.channels = int(train.crop), 1 if train.mode == "gray" else 3
        bad = {k: v for k, v in o.context.items() if k not in self.labels or not isinstance(v, int) or v % 4}
        if bad:
            raise KdrestoreError(f"distill.options.context: expected {{label: size (a multiple of 4)}} for labels "
                                 f"{self.labels}, got {bad}")
        self.wide = {lab for lab in self.labels if o.context.get(lab, 0) > self.size}
        self.full_size = max([self.size, *(o.context.get(lab, 0) for lab in self.labels)])
        with torch.random.fork_rng(devices=[]):  # its own seed: independent of when the method is built
            torch.manual_seed(zlib.crc32(f"datafree-generator/{cfg.train.seed}".encode()))
            self.generator = DegradationAwareGenerator(self.channels, o.latent_channels, o.generator_width,
                                                       chroma=o.chroma)
        used = {k: v for k, v in self.params.items() if k in self.labels}
        self.shift = DegradationShift(used) if o.adversarial_degradation else None
        if self.shift is not None and not self.shift.ranges:
            raise KdrestoreError("distill.options.adversarial_degradation: no degradation parameter of "
                                 f"{self.labels} is a range to move within (data.train.params)")
        self._given_teachers, self.range_check = teachers, FirstBatchRangeCheck()
        self.updates, self._step, self._log, self._resume_step = 0, 0, None, None

    # ---- set-up -------------------------------------------------------------------------------
    def setup(self, student: nn.Module, device: Any, example: dict[str, Any]) -> None:
        d, o = self.dcfg, self.opts
        specs: list[Any] = self._given_teachers or d.teachers
        if not specs:
            raise KdrestoreError("distill.teachers is empty: name at least one teacher")
        self.student = student
        self.teachers = [load_teacher(s, d.peers, False).to(device) for s in specs]
        self.teacher_weights = [float(getattr(s, "weight", 1.0)) for s in specs]
        self.teacher_degradations = [getattr(s, "degradations", None) for s in specs]
        for label in self.labels:
            if not any(not deg or label in deg for deg in self.teacher_degradations):
                raise KdrestoreError(f"distill.teachers: no teacher covers degradation {label!r} "
                                     f"(give one with degradations: [{label}])")
        self.bn_stats = BatchNormStatistics([t.model for t in self.teachers])
        self.contrastive: list[ContrastiveRegularization] = []
        if d.contrastive is not None:
            for t in self.teachers:
                points = d.contrastive.points or list(getattr(t.model, "feature_points", []))[:o.contrastive_layers]
                if not points:
                    raise KdrestoreError(f"distill.contrastive.points: teacher {t.name} declares no feature_points")
                self.contrastive.append(ContrastiveRegularization(HookedFeatures(t.model, points),
                                                                  d.contrastive.layer_weights).to(device))
        self.generator.to(device)
        if self.shift is not None:
            self.shift.to(device)
        self.g_optimizer = torch.optim.Adam(self.generator_parameters(), lr=o.generator_lr, betas=o.generator_betas)

    def generator_parameters(self) -> list[nn.Parameter]:
        """What the adversarial phase trains: the generator, and the degradation shifts when enabled."""
        extra = list(self.shift.parameters()) if self.shift is not None else []
        return [*self.generator.parameters(), *extra]

    # ---- sampling and routing -----------------------------------------------------------------
    def latents(self, seeds: list[int], labels: list[str], size: int | None = None) -> Latents:
        """The latent codes, windows and degradation draws of the given seeds and labels, on G's device."""
        size = size or self.full_size
        lat = draw_latents(seeds, labels, channels=self.channels, size=size, crop=min(size, self.size),
                           latent_channels=self.opts.latent_channels, params=self.params)
        return lat.to(next(self.generator.parameters()).device)

    def sample(self, lat: Latents) -> tuple[Tensor, Tensor, Tensor]:
        """``(window of x, window of J, whole x)`` of the latents (gradients flow to the generator)."""
        full, clean = self.generator(self.shift(lat) if self.shift is not None else lat)
        return crop_windows(full, lat.window, self.size), crop_windows(clean, lat.window, self.size), full

    def _index(self, i: int, labels: list[str], device: Any) -> Tensor:
        wanted = self.teacher_degradations[i]
        return torch.tensor([j for j, lab in enumerate(labels) if not wanted or lab in wanted],
                            dtype=torch.long, device=device)

    def teacher_targets(self, x: Tensor, labels: list[str], grad: bool = False, full: Tensor | None = None,
                        window: Tensor | None = None) -> Tensor:
        """Each sample's target (for the window ``x``): the weighted mean of the teachers covering its label;
        labels with context are restored from the ``full`` image and cut to ``window``."""
        out, total = None, x.new_zeros(x.shape[0])
        for i, (t, w) in enumerate(zip(self.teachers, self.teacher_weights)):
            idx = self._index(i, labels, x.device).tolist()
            wide = [j for j in idx if full is not None and labels[j] in self.wide]
            for group, src in (([j for j in idx if j not in wide], x), (wide, full)):
                if not group or src is None:
                    continue
                g = torch.tensor(group, dtype=torch.long, device=x.device)
                if grad:
                    y = t.model(src[g])
                else:
                    with torch.no_grad():
                        y = t(src[g])
                if src is full and window is not None:
                    y = crop_windows(y, window[g], self.size)
                out = (x.new_zeros((x.shape[0], *y.shape[1:])) if out is None else out).index_add(0, g, w * y)
                total = total.index_add(0, g, torch.full((len(group),), w, device=x.device, dtype=x.dtype))
        if out is None or bool((total == 0).any()):
            raise KdrestoreError(f"no teacher covers some of the degradations {sorted(set(labels))}")
        return out / total.view(-1, *([1] * (out.ndim - 1)))

    # ---- the generator phase ------------------------------------------------------------------
    def begin_step(self, step: int) -> None:
        o = self.opts
        if o.sample_every and step % o.sample_every == 0:
            self.save_samples(step)
        self._step = step
        stats: dict[str, float] = {}
        if step >= o.generator_start and (step - o.generator_start) % o.generator_every == 0:
            for k in range(o.generator_steps):
                stats = self.generator_step(step, k)
        if stats and self.run_dir is not None and _is_main() and (step + 1) % self.cfg.train.log_every == 0:
            self._write_log(step + 1, stats)

    def generator_terms(self, step: int, k: int = 0) -> dict[str, Tensor]:
        """The generator's loss terms on the batch of ``(step, k)`` (``discrepancy`` is not a term)."""
        o = self.opts
        rng = np.random.default_rng(zlib.crc32(f"datafree/{self.cfg.train.seed}/{step}/{k}".encode()))
        n = o.generator_batch or self.cfg.train.batch_size
        labels = [self.labels[int(j)] for j in rng.permutation(np.arange(n) % len(self.labels))]
        lat = self.latents([int(s) for s in rng.integers(0, 2 ** 62, n)], labels)
        x, clean, full = self.sample(lat)
        was_training = self.student.training
        self.student.eval()
        try:
            s = self.student(x)
            with self.bn_stats.capture():
                t = self.teacher_targets(x, labels, grad=o.teacher_grad, full=full, window=lat.window)
        finally:
            self.student.train(was_training)
        disc = F.l1_loss(s.float(), t.float())
        terms = {"adversarial": -o.adversarial_weight * disc, "tv": o.tv_weight * total_variation(clean),
                 "fidelity": o.fidelity_weight * F.l1_loss(t.float(), clean.float()),
                 "diversity": -o.diversity_weight * mode_seeking(clean, lat.z, o.diversity_cap)}
        bn = self.bn_stats.loss()
        if bn is not None:
            terms["bn"] = o.bn_weight * bn
        return {"discrepancy": disc, **terms}

    def generator_step(self, step: int, k: int = 0) -> dict[str, float]:
        """One update of the generator, maximising the teacher-student discrepancy; returns its terms."""
        o, terms = self.opts, self.generator_terms(step, k)
        disc = terms.pop("discrepancy")
        params = [p for p in self.generator_parameters() if p.requires_grad]
        grads = torch.autograd.grad(sum(terms.values()), params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = torch.zeros_like(p) if g is None else g
        if o.generator_grad_clip:
            nn.utils.clip_grad_norm_(params, o.generator_grad_clip)
        self.g_optimizer.step()
        self.g_optimizer.zero_grad(set_to_none=True)
        self.updates += 1
        moved = {f"shift_{k}": v for k, v in self.shift.midpoints().items()} if self.shift is not None else {}
        return {"discrepancy": float(disc.detach()), **{k: float(v.detach()) for k, v in terms.items()}, **moved}

    def _write_log(self, step: int, stats: dict[str, float]) -> None:
        if self._log is None:
            self._log = RunLogger(self.run_dir / "generator", resume_step=self._resume_step, tensorboard=False)
        self._log.log(step, {f"gen_{k}": v for k, v in stats.items()})

    @torch.no_grad()
    def render(self, count: int | None = None, size: int | None = None) -> np.ndarray:
        """A grid (``H x W x 3``) of (clean | degraded) samples, ``count`` per label, for fixed latent codes."""
        n = count or self.opts.sample_count
        labels = [lab for lab in self.labels for _ in range(n)]
        lat = self.latents(probe_seeds(self.cfg.train.seed, len(labels)), labels, size)
        x, clean = self.generator(self.shift(lat) if self.shift is not None else lat)
        return sample_grid(clean, x, labels)

    def save_samples(self, step: int) -> Path | None:
        """Write the grid of step ``step`` to ``<run>/generator/step_<step>.png`` (main process only)."""
        if self.run_dir is None or not _is_main():
            return None
        return write_image(self.run_dir / "generator" / f"step_{step:08d}.png", self.render())

    # ---- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.state_dict(), "optimizer": self.g_optimizer.state_dict(),
                "updates": self.updates, "step": self._step + 1,
                **({"shift": self.shift.state_dict()} if self.shift is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.generator.load_state_dict(state["generator"])
            if self.shift is not None and "shift" in state:
                self.shift.load_state_dict(state["shift"])
            self.g_optimizer.load_state_dict(state["optimizer"])
            self.updates, self._resume_step = int(state["updates"]), int(state["step"])

    # ---- the student step -----------------------------------------------------------------------
    def forward(self, student: nn.Module, batch: dict[str, Any]) -> Tensor:
        labels, seeds = list(batch["degradation"]), [int(s) for s in batch["seed"]]
        with torch.no_grad():
            lat = self.latents(seeds, labels)
            x, _, full = self.sample(lat)
        self._x, self._labels, self._full, self._window = x, labels, full if self.wide else None, lat.window
        return student(x)

    def losses(self, batch: dict[str, Any], output: Tensor, step: int) -> dict[str, Tensor]:
        d, x, labels = self.dcfg, self._x, self._labels
        target = self.teacher_targets(x, labels, full=self._full, window=self._window)
        firsts = ((t, self._index(i, labels, x.device)[:1]) for i, t in enumerate(self.teachers))
        self.range_check((t, x[idx], output[idx]) for t, idx in firsts if idx.numel())
        terms: dict[str, Tensor] = {}
        if d.output is not None:
            terms["df_output"] = d.output.weight * output_distillation(output, target, criterion=d.output.criterion)
        if self.contrastive and d.contrastive is not None:
            cr = output.new_zeros(())
            for i, reg in enumerate(self.contrastive):
                idx = self._index(i, labels, x.device)
                if idx.numel():
                    cr = cr + idx.numel() / x.shape[0] * reg(output[idx], target[idx], x[idx])
            terms["df_contrastive"] = d.contrastive.weight * cr
        return terms
