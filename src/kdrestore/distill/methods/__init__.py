"""Distillation methods, by name (``distill.method`` of a recipe). Each runs on the one trainer."""
from __future__ import annotations

from typing import Callable

from ...config import RunConfig
from ..method import Method, Supervised
from ...registry import Registry
from .coic import CoICTraining
from .datafree import DataFreeDistillation
from .hmds import MultiLevelDistillation
from .kd import KnowledgeDistillation
from .kddn import HeterogeneousTaskImitation
from .qat import QuantAwareDistillation
from .spdd import SelfParameterDistillation
from .trnr import TaskDrivenMetaLearning

METHODS: Registry[Callable[[RunConfig], Method]] = Registry("distillation method")
METHODS.register("kd", KnowledgeDistillation)
METHODS.register("spdd", SelfParameterDistillation)
METHODS.register("kddn", HeterogeneousTaskImitation)
METHODS.register("hmds", MultiLevelDistillation)
METHODS.register("kd-qat", QuantAwareDistillation)  # kd + INT8 fake-quantisation at the end
METHODS.register("datafree", DataFreeDistillation)  # generator-made inputs, no data
METHODS.register("coic", CoICTraining)  # instance-modulated deraining on mixed data (no teacher)
METHODS.register("trnr", TaskDrivenMetaLearning)  # few-image meta-learning (no teacher)


def build_method(cfg: RunConfig) -> Method:
    """The recipe's method: supervised without a ``distill`` section, else the named distillation method."""
    if not cfg.distill:
        return Supervised(cfg)
    return METHODS.get(str(cfg.distill.get("method", "kd")))(cfg)
