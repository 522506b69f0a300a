"""Image IO, folder pairing and datasets (paired folders, on-the-fly synthesis, built-in images)."""
from __future__ import annotations

from .builtin import (TEST_NAMES, TRAIN_NAMES, available_names, builtin_dataset, builtin_depth,
                      builtin_images, split_names)
from .imageio import (IMAGE_EXTENSIONS, ImageReadError, list_images, read_image, to_uint8,
                      to_uint16, write_image)
from .paired import Failed, PairedDataset, SafeLoader, collate_skip, iter_pairs_safe
from .pairing import (BUILTIN_RULES, LAYOUTS, PairingError, PairingRule, UnpairedWarning,
                      detect_layout, find_pairs, get_rule)
from .synth import SynthDataset

__all__ = [
    "BUILTIN_RULES", "Failed", "IMAGE_EXTENSIONS", "ImageReadError", "LAYOUTS", "PairedDataset",
    "PairingError", "PairingRule", "SafeLoader", "SynthDataset", "TEST_NAMES", "TRAIN_NAMES",
    "UnpairedWarning", "available_names", "builtin_dataset", "builtin_depth", "builtin_images",
    "collate_skip", "detect_layout", "find_pairs", "get_rule", "iter_pairs_safe", "list_images",
    "read_image", "split_names", "to_uint16", "to_uint8", "write_image",
]
