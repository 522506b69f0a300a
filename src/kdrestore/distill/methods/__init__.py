"""Distillation methods, by name (``distill.method`` of a recipe). Each runs on the one trainer.

A method's own settings (``distill.options``) are a dataclass beside it, named here as ``options`` so a
recipe's options are checked before any data is read (:func:`check_method`).
"""
from __future__ import annotations

from typing import Callable

from ...config import RunConfig, distill_section, method_options
from ...registry import Registry
from ..method import Method, Supervised
from .coic import CoICOptions, CoICTraining
from .datafree import DataFreeDistillation, DataFreeOptions
from .hmds import HMDSOptions, MultiLevelDistillation
from .kd import KnowledgeDistillation
from .kddn import HeterogeneousTaskImitation, KDDNOptions
from .qat import QATOptions, QuantAwareDistillation
from .spdd import SelfParameterDistillation, SPDDOptions
from .trnr import TaskDrivenMetaLearning, TRNROptions

METHODS: Registry[Callable[[RunConfig], Method]] = Registry("distillation method")
METHODS.register("kd", KnowledgeDistillation)
METHODS.register("spdd", SelfParameterDistillation, options=SPDDOptions)
METHODS.register("kddn", HeterogeneousTaskImitation, options=KDDNOptions)
METHODS.register("hmds", MultiLevelDistillation, options=HMDSOptions)
METHODS.register("kd-qat", QuantAwareDistillation, options=QATOptions)  # kd + INT8 fake-quantisation at the end
METHODS.register("datafree", DataFreeDistillation, options=DataFreeOptions)  # generator-made inputs, no data
METHODS.register("coic", CoICTraining, options=CoICOptions)  # instance-modulated deraining on mixed data (no teacher)
METHODS.register("trnr", TaskDrivenMetaLearning, options=TRNROptions)  # few-image meta-learning (no teacher)


def check_method(cfg: RunConfig) -> None:
    """Check the recipe's method name and its ``distill.options`` (file, dotted field, did-you-mean)
    without building anything: the trainer calls it before it reads data."""
    if not cfg.distill:
        return
    options = METHODS.entry(distill_section(cfg).method).meta.get("options")
    if options is not None:
        method_options(cfg, options)


def build_method(cfg: RunConfig) -> Method:
    """The recipe's method: supervised without a ``distill`` section, else the named distillation method."""
    if not cfg.distill:
        return Supervised(cfg)
    return METHODS.get(distill_section(cfg).method)(cfg)
