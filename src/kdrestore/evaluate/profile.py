"""Model cost: parameters, MACs (torch's FLOP counter) and CPU latency / throughput."""
from __future__ import annotations

import ctypes
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    """Parameters of a model (buffers such as BatchNorm statistics are not counted)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on an input of ``shape`` (FLOPs / 2)."""
    x = torch.rand(*shape, device=next(iter(model.parameters()), torch.empty(0)).device)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    return counter.get_total_flops() // 2


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory in the process (steadier CPU timings; no-op elsewhere).

    Large conv passes otherwise page-fault fresh buffers on every call and vary 2-8x in time.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, (1 << 31) - 1)


@dataclass(frozen=True)
class Latency:
    median_ms: float
    min_ms: float
    megapixels_per_s: float
    repeats: int
    shape: tuple[int, ...]


@torch.no_grad()
def measure_latency(model: nn.Module, shape: tuple[int, ...], repeats: int = 7, warmup: int = 2) -> Latency:
    """Median wall time of ``repeats`` forward passes after ``warmup`` passes, on the model's device."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    x = torch.rand(*shape, device=device)
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    med = statistics.median(times)
    pixels = shape[0] * shape[-1] * shape[-2]
    return Latency(med * 1e3, min(times) * 1e3, pixels / med / 1e6, repeats, tuple(shape))


@torch.no_grad()
def measure_latencies(fns: Mapping[str, Callable[[torch.Tensor], Any]], shape: tuple[int, ...], repeats: int = 7,
                      warmup: int = 2, seed: int = 0) -> dict[str, Latency]:
    """CPU latency of several models on one input, called in turn (round-robin) ``warmup + repeats`` times.

    Interleaving makes a slow spell of the machine hit every model alike, so their ratios hold even
    when the absolute times drift. ``fns``: models or any ``Tensor -> output`` callables (ONNX runners).
    """
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(seed))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(x)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    pixels = shape[0] * shape[-1] * shape[-2]
    out = {}
    for name, t in times.items():
        med = statistics.median(t)
        out[name] = Latency(med * 1e3, min(t) * 1e3, pixels / med / 1e6, repeats, tuple(shape))
    return out
