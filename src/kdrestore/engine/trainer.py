"""The one training loop: every recipe and every distillation method runs through :class:`Trainer`."""
from __future__ import annotations

import io
import math
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import RunConfig, config_differences, parse_duration
from ..data.batched import step_generator
from ..distill.method import Method
from ..distill.methods import build_method, check_method
from ..errors import KdrestoreError
from ..evaluate.metrics import TASK_CONVENTIONS, prepare, psnr_tensor, ssim_tensor
from ..evaluate.profile import count_macs, count_params
from ..fsutil import atomic_write_json, atomic_write_text
from ..models.registry import build_model
from ..models.weights import load_weights
from ..rundir import FINAL_METRICS, LINEAGE_FILE, RunDir, RunLogger
from . import ddp
from .budget import TimeBudget
from .checkpoint import CheckpointManager, rng_state, set_rng_state
from .datasets import KeyedDataset, build_batched, build_dataset
from .ema import EMA
from .init_from import init_model
from .optim import build_optimizer, build_scheduler
from .sampler import GlobalBatchSampler

# keys that may change when a run is resumed (extending a run, moving it, logging more often)
RESUMABLE_CHANGES = ("train.steps", "train.log_every", "train.val_every", "train.ckpt_every",
                     "train.device", "output_dir", "data.num_workers", "train.keep_checkpoints",
                     "train.time_budget")


class TrainingDiverged(KdrestoreError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def cpu_has_bf16_kernels() -> bool:
    """Whether torch's oneDNN has bf16 kernels for this CPU (AVX-512 cores and newer). Where it has native bf16
    (AVX-512 BF16, AMX), ``train.amp: bf16`` trained the RepDN students 1.7x faster than fp32 on one Zen 4 thread,
    the NAFNets 1.0-1.1x (``benchmarks/train_throughput.py --amps none bf16``)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class Trainer:
    """Train ``cfg.model`` with ``method`` (supervised by default) into ``run_dir``."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, *, method: Method | None = None,
                 resume: bool = False, progress: bool = True) -> None:
        self.cfg, self.run_dir, self.resume = cfg, Path(run_dir), resume
        if method is None:
            check_method(cfg)  # a bad distill.method or distill.options fails before the data is read
        t = cfg.train
        self.budget = TimeBudget(parse_duration(t.time_budget)) if t.time_budget else None
        if self.budget is not None:
            self.budget.start()  # the set-up (data, teachers) counts against the budget too
        kind = "cuda" if t.device == "auto" and torch.cuda.is_available() else (t.device if t.device != "auto" else "cpu")
        self.dist = ddp.setup(kind.split(":")[0])
        self.device = torch.device(f"cuda:{self.dist.local_rank}" if kind == "cuda" and self.dist.enabled else kind)
        if t.amp == "fp16" and self.device.type != "cuda":
            raise KdrestoreError("train.amp: fp16 needs CUDA; use bf16 on the CPU")
        if t.amp == "bf16" and self.device.type == "cpu" and not cpu_has_bf16_kernels():
            warnings.warn("train.amp: bf16 on a CPU without oneDNN's bf16 kernels (AVX-512 or newer) is emulated "
                          "and usually slower than fp32; train.amp=none", RuntimeWarning, stacklevel=2)
        if t.batch_size % (t.accum_steps * self.dist.world_size):
            raise KdrestoreError(f"train.batch_size {t.batch_size} must be divisible by accum_steps x processes "
                                 f"({t.accum_steps} x {self.dist.world_size})")
        self.progress = progress and self.dist.is_main
        torch.manual_seed(t.seed)
        self.batched = build_batched(cfg.data.train, cfg.task, self.device) if cfg.data.train.pipeline == "batched" else None
        self.train_set = None if self.batched else build_dataset(cfg.data.train, cfg.task, train=True, seed=t.seed)
        self.val_set = build_dataset(cfg.data.val, cfg.task, train=False, seed=t.seed) if cfg.data.val else None

        self.model = build_model(cfg.model.name, **cfg.model.args).to(self.device)
        if cfg.model.weights:
            load_weights(self.model, cfg.model.weights)
        self.lineage: list[dict[str, Any]] = []
        if cfg.model.init_from and not resume:
            self.lineage = init_model(self.model, cfg.model.init_from, self.run_dir, write=False)
        self.ema = EMA(self.model, t.ema_decay) if t.ema_decay else None
        self.method = method or build_method(cfg)
        self.method.run_dir = self.run_dir
        self.method.setup(self.model, self.device, self.batched.example() if self.batched else self.train_set[0])
        self.extra = self.method.trainable().to(self.device)
        params = list(self.model.parameters()) + list(self.extra.parameters())
        self.optimizer = build_optimizer(cfg.optim, params)
        self.scheduler = build_scheduler(cfg.schedule, self.optimizer, t.steps,
                                         progress=self.budget.progress if self.budget else None)
        self.scaler = torch.amp.GradScaler("cuda", enabled=t.amp == "fp16")
        self.ckpt = CheckpointManager(self.run_dir, keep=t.keep_checkpoints)
        self.step, self.best = 0, -math.inf
        if resume:
            self._resume()
        elif self.dist.is_main and self.ckpt.latest() is not None:
            raise KdrestoreError(f"{self.run_dir} already holds a run: pass --resume, or choose another name")
        self.net: nn.Module = (DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
                               if self.dist.enabled else self.model)

    # ---- set-up helpers -------------------------------------------------------------------------
    def _training_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "extra": self.extra.state_dict(), "rng": rng_state(),
                "method": self.method.state_dict(),
                "ema_updates": self.ema.updates if self.ema is not None else 0,
                "budget": self.budget.state_dict() if self.budget else None}

    def _resume(self) -> None:
        run = RunDir(self.run_dir)
        latest = self.ckpt.latest()
        if latest is None or not run.is_run():
            raise KdrestoreError(f"nothing to resume in {self.run_dir}: no checkpoint found")
        old = run.config_dict()
        diffs = [d for d in config_differences(old, self.cfg.to_dict()) if not d.startswith(RESUMABLE_CHANGES)]
        if diffs:
            raise KdrestoreError(f"refusing to resume {self.run_dir} with a different config: " + "; ".join(diffs))
        self.model.load_state_dict(latest.model_weights())
        state = latest.state()
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.extra.load_state_dict(state["extra"])
        self.method.load_state_dict(state.get("method", {}))
        if self.ema is not None:
            self.ema.shadow.load_state_dict(latest.model_weights(ema=True))
            self.ema.updates = int(state.get("ema_updates", latest.step))
        set_rng_state(state["rng"])
        if self.budget is not None and state.get("budget"):
            self.budget.load_state_dict(state["budget"])
        self.step = latest.step
        self.best = self.ckpt.best_metric() or -math.inf

    def _loader(self, micro_batch: int) -> DataLoader:
        sampler = GlobalBatchSampler(len(self.train_set), micro_batch * self.dist.world_size, self.cfg.train.seed,
                                     self.dist.rank, self.dist.world_size,
                                     start_batch=self.step * self.cfg.train.accum_steps)
        return DataLoader(KeyedDataset(self.train_set, self.cfg.train.seed), batch_sampler=sampler,
                          num_workers=self.cfg.data.num_workers, persistent_workers=self.cfg.data.num_workers > 0)

    def _autocast(self) -> Any:
        amp = self.cfg.train.amp
        if amp == "none":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)

    def _next_batch(self, batches: Any, micro: int, micro_i: int) -> dict[str, Any]:
        """The next micro-batch on the device: drawn there (batched pipeline) or from the DataLoader."""
        if self.batched is not None:
            g = step_generator(self.device, self.cfg.train.seed, self.step, micro_i, self.dist.rank)
            batch = self.batched.batch(micro, g)
        else:
            batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v
                     for k, v in next(batches).items()}
        if self.cfg.train.channels_last and self.device.type == "cuda":
            batch["input"] = batch["input"].contiguous(memory_format=torch.channels_last)
        return batch

    # ---- the loop -------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train to ``train.steps`` (or the time budget); returns (and writes to ``final_metrics.json``)
        the final scores. Loss values are read back to the host only at log, validation and checkpoint
        steps: a finite-loss check there stops a diverged run, keeping the last good checkpoint."""
        t = self.cfg.train
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(RunDir(self.run_dir).config_file, yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
            if self.lineage:
                atomic_write_json(self.run_dir / LINEAGE_FILE, self.lineage)
        logger = RunLogger(self.run_dir, resume_step=self.step if self.resume else None) if self.dist.is_main else None
        micro = t.batch_size // (t.accum_steps * self.dist.world_size)
        batches = None if self.batched is not None else iter(self._loader(micro))
        if self.budget is not None:
            self._plan_budget(logger)
        bar = tqdm(total=None if self.budget else t.steps, initial=self.step, desc=self.cfg.name,
                   disable=not self.progress, dynamic_ncols=True)
        start_step, start_time = self.step, time.perf_counter()
        window = {"start": time.perf_counter(), "steps": 0, "wait": 0.0, "checked": self.step}
        pending: dict[str, torch.Tensor] = {}
        nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        self.model.train()
        done = self.step >= t.steps or (self.budget is not None and self.budget.out_of_time())
        while not done:
            self.method.begin_step(self.step)
            self.optimizer.zero_grad(set_to_none=True)
            for micro_i in range(t.accum_steps):
                wait_start = time.perf_counter()
                batch = self._next_batch(batches, micro, micro_i)
                window["wait"] += time.perf_counter() - wait_start
                sync = nullcontext() if micro_i == t.accum_steps - 1 or not self.dist.enabled else self.net.no_sync()
                with sync:
                    with self._autocast():
                        out = self.method.forward(self.net, batch)
                        terms = self.method.losses(batch, out.float(), self.step)
                    loss = sum(terms.values()) / t.accum_steps
                    nonfinite |= ~torch.isfinite(loss.detach())
                    self.scaler.scale(loss).backward()
                for k, v in terms.items():
                    pending[k] = pending.get(k, 0.0) + v.detach().float() / t.accum_steps
            ddp.average_gradients(self.extra.parameters())  # method parts live outside the DDP wrapper
            if t.grad_clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(list(self.model.parameters()) + list(self.extra.parameters()), t.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update(self.model)
            self.step += 1
            window["steps"] += 1
            bar.update(1)
            done = self.step >= t.steps or (self.budget is not None and self.budget.out_of_time())
            log = self.step % t.log_every == 0 or done
            val = self.val_set is not None and (self.step % t.val_every == 0 or done)
            ckpt = self.step % t.ckpt_every == 0 or done
            if log or val or ckpt:
                self._check_finite(nonfinite, logger, pending, window)
            if log:
                self._log(logger, bar, pending, window)
                pending = {}
                window = {"start": time.perf_counter(), "steps": 0, "wait": 0.0, "checked": self.step}
            if val:
                self._validate(logger)
            if ckpt:
                self._save()
        bar.close()
        wall = time.perf_counter() - start_time
        return self._finish(logger, wall, self.step - start_step)

    def _plan_budget(self, logger: RunLogger | None) -> None:
        """Measure one validation and one checkpoint's serialisation, reserve them in the budget."""
        assert self.budget is not None
        validation_s = 0.0
        if self.val_set is not None:
            t0 = time.perf_counter()
            self.last_val = self.evaluate()
            validation_s = time.perf_counter() - t0
            if logger:
                logger.log(self.step, {**self.last_val, "initial": 1.0})
        t0 = time.perf_counter()
        self._cost()  # measured now, so that the end of the run only reuses it
        buffer = io.BytesIO()
        torch.save({"model": self.model.state_dict(), "state": self._training_state(),
                    "ema": self.ema.shadow.state_dict() if self.ema else None}, buffer)
        checkpoint_s = time.perf_counter() - t0
        self.budget.plan(validation_s, checkpoint_s)

    def _cost(self) -> dict[str, Any]:
        """MACs of the model at the size of the first validation input (computed once)."""
        if not hasattr(self, "_macs") and self.val_set is not None:
            shape = (1, *tuple(self.val_set[0]["input"].shape))
            self._macs = {"macs": count_macs(self.model, shape), "macs_input_shape": list(shape)}
        return getattr(self, "_macs", {})

    def _check_finite(self, flag: torch.Tensor, logger: RunLogger | None, pending: dict[str, torch.Tensor],
                      window: dict[str, Any]) -> None:
        """Stop (keeping the last good checkpoint) when a loss since the last check was not finite."""
        if ddp.broadcast_flag(bool(flag), self.device):
            first = window["checked"] + 1
            where = f"at step {self.step}" if first >= self.step else f"between steps {first} and {self.step}"
            self._diverged(logger, {k: float(v) for k, v in pending.items()}, where)
        window["checked"] = self.step

    def _log(self, logger: RunLogger | None, bar: tqdm, pending: dict[str, torch.Tensor],
             window: dict[str, Any]) -> None:
        """Log the loss terms averaged over the steps since the last log and over all processes
        (every process takes part in the reduction), the throughput and the share of time spent
        waiting for data."""
        keys = sorted(pending)
        steps = max(window["steps"], 1)
        local = [float(pending[k]) / steps for k in keys]  # the one host synchronisation of a log step
        mean = [v / self.dist.world_size for v in ddp.all_reduce_sum(local, self.device)]
        elapsed = max(time.perf_counter() - window["start"], 1e-9)
        rate = self.cfg.train.batch_size * window["steps"] / elapsed
        if logger:
            values = {"loss": sum(mean), **dict(zip(keys, mean)), "lr": self.optimizer.param_groups[0]["lr"],
                      "samples_per_s": rate, "data_wait_share": window["wait"] / elapsed}
            logger.log(self.step, values)
            bar.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{values['lr']:.1e}", sps=f"{rate:.1f}")

    def _diverged(self, logger: RunLogger | None, terms: dict[str, float], where: str) -> None:
        msg = (f"loss is not finite {where} ({', '.join(f'{k}={v}' for k, v in terms.items())}); "
               f"stopped; the last good checkpoint in {self.ckpt.root} is kept")
        if logger:
            logger.log(self.step, {"diverged": 1.0, **terms})
            logger.close()
        raise TrainingDiverged(msg)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """PSNR/SSIM of the (EMA) model on the validation set, shared across processes."""
        model = self.ema.shadow if self.ema is not None else self.model
        model.eval()
        conv = TASK_CONVENTIONS[self.cfg.task]
        sums = [0.0, 0.0, 0.0]
        for i in range(self.dist.rank, len(self.val_set), self.dist.world_size):
            sample = self.val_set[i]
            out = model(sample["input"][None].to(self.device)).float()
            p, t = prepare(out.cpu(), sample["target"][None], conv)
            sums[0] += float(psnr_tensor(p, t)[0])
            sums[1] += float(ssim_tensor(p, t)[0]) if min(p.shape[-2:]) >= 11 else math.nan
            sums[2] += 1
        self.model.train()
        total = ddp.all_reduce_sum(sums, self.device)
        return {"val_psnr": total[0] / max(total[2], 1), "val_ssim": total[1] / max(total[2], 1),
                "val_images": int(total[2])}

    def _validate(self, logger: RunLogger | None) -> None:
        metrics = self.evaluate()
        self.last_val = metrics
        if logger:
            logger.log(self.step, metrics)
        if metrics["val_psnr"] > self.best:
            self.best = metrics["val_psnr"]
            self._save(best=True)

    def _save(self, best: bool = False) -> None:
        if self.dist.is_main:
            meta = {"name": self.cfg.name, "model": self.cfg.model.name, "model_args": self.cfg.model.args,
                    "val": getattr(self, "last_val", None)}
            self.ckpt.save(self.step, self.model, self._training_state(), meta,
                           ema=self.ema.shadow if self.ema else None, best_metric=self.best if best else None)
        ddp.barrier()

    def _finish(self, logger: RunLogger | None, wall: float, steps: int) -> dict[str, Any]:
        final: dict[str, Any] = {"name": self.cfg.name, "model": self.cfg.model.name, "steps": self.step,
                                 "params": count_params(self.model), "wall_s_this_session": wall,
                                 "samples_per_s": steps * self.cfg.train.batch_size / wall if wall > 0 else None,
                                 "processes": self.dist.world_size, "device": str(self.device),
                                 "convention": TASK_CONVENTIONS[self.cfg.task].to_dict(),
                                 "pipeline": self.cfg.data.train.pipeline}
        if self.budget is not None:
            final.update(time_budget_s=self.budget.total_s, time_spent_s=self.budget.spent())
        if self.lineage or self.cfg.model.init_from:
            final["init_from"] = self.cfg.model.init_from
        if self.val_set is not None:
            final.update(getattr(self, "last_val", None) or self.evaluate())
            final["best_val_psnr"] = self.best
            final.update(self._cost())
        if self.dist.is_main:
            atomic_write_json(self.run_dir / FINAL_METRICS, final)
        if logger:
            logger.close()
        return final
