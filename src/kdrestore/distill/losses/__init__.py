"""Distillation losses, each a small function or module (see each file for the paper it follows).

``DISTILL_LOSSES`` maps config names to them; ``meta['kind']`` says how a method calls one:
'output' (student image vs teacher image), 'feature' (student map vs teacher map) or 'module'
(an ``nn.Module`` to build first, e.g. with a frozen feature extractor).

>>> from kdrestore.distill.losses import DISTILL_LOSSES
>>> DISTILL_LOSSES.entry("fakd").meta["kind"]
'feature'
"""
from __future__ import annotations

from typing import Any

from ...registry import Registry
from .contrastive import ContrastiveRegularization, HookedFeatures
from .feature import fakd_loss, fitnet_loss, spatial_affinity
from .output import output_distillation, pixel_distance
from .rsd import DecouplingProjector, cross_correlation, rsd_loss, rsd_terms

DISTILL_LOSSES: Registry[Any] = Registry("distillation loss")
DISTILL_LOSSES.register("output", output_distillation, kind="output",
                        summary="pixel distance to the teacher's output, mixed with the GT loss")
DISTILL_LOSSES.register("fitnet", fitnet_loss, kind="feature",
                        summary="FitNet hint: distance between adapted student and teacher maps")
DISTILL_LOSSES.register("fakd", fakd_loss, kind="feature",
                        summary="FAKD: L1 between spatial affinity matrices (no adapter needed)")
DISTILL_LOSSES.register("contrastive", ContrastiveRegularization, kind="module",
                        summary="AECR-Net contrastive regularisation in a frozen feature space")
DISTILL_LOSSES.register("rsd", rsd_loss, kind="feature",
                        summary="RSD: Barlow-Twins-style cross-correlation to identity (needs a projector)")

__all__ = [
    "DISTILL_LOSSES", "ContrastiveRegularization", "DecouplingProjector", "HookedFeatures",
    "cross_correlation", "fakd_loss", "fitnet_loss", "output_distillation", "pixel_distance",
    "rsd_loss", "rsd_terms", "spatial_affinity",
]
