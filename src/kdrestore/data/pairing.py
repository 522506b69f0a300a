"""Pair degraded images with their clean references by file-name rules.

A rule maps the *stem* of a degraded file (name without extension) to the stem of its clean
partner; the clean file may have any image extension (a same-extension file is preferred).
Every rule is a regular expression applied with ``re.fullmatch`` plus an expansion template
(``\\1``, ``\\g<name>``); nothing is evaluated.

=============  =========================================  ==================================
rule           degraded -> clean                          e.g.
=============  =========================================  ==================================
``same``       same stem                                  ``input/7.png -> target/7.png``
``rain100l``   ``rain-N`` -> ``norain-N``                 ``rain/rain-001 -> norain/norain-001``
``rain100h``   same stem, a trailing ``x2`` removed       ``inputcrop/1 -> cleancrop/1``
``sots``       ``ID_anything`` -> ``ID``                  ``hazy/1400_7 -> gt/1400``
``regex:P=>T`` ``re.fullmatch(P, stem).expand(T)``        ``regex:(\\d+)_\\d+=>\\1``
=============  =========================================  ==================================
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import KdrestoreError
from .imageio import PathLike, list_images

# (degraded subfolder, clean subfolder, preferred rule), checked in this order (case-insensitive)
LAYOUTS: tuple[tuple[str, str, str], ...] = (
    ("hazy", "gt", "sots"),
    ("hazy", "clear", "sots"),
    ("rain", "norain", "rain100l"),
    ("inputcrop", "cleancrop", "rain100h"),
    ("input", "target", "same"),
    ("degraded", "clean", "same"),
    ("lq", "gt", "same"),
    ("lq", "hq", "same"),
    ("noisy", "clean", "same"),
)


class PairingError(KdrestoreError, ValueError):
    """No image pairs could be formed (unknown layout, or a rule that matches nothing)."""


class UnpairedWarning(UserWarning):
    """Some degraded images have no clean partner under the chosen rule."""


@dataclass(frozen=True)
class PairingRule:
    """A named stem mapping: ``re.fullmatch(pattern, stem).expand(template)``."""

    name: str
    pattern: re.Pattern[str]
    template: str

    def clean_stem(self, stem: str) -> str | None:
        """The clean stem for a degraded stem, or None when the pattern does not match."""
        m = self.pattern.fullmatch(stem)
        if m is None:
            return None
        try:
            return m.expand(self.template)
        except (re.error, IndexError) as exc:
            raise PairingError(f"rule '{self.name}': bad template {self.template!r}: {exc}") from None


BUILTIN_RULES: dict[str, PairingRule] = {
    "same": PairingRule("same", re.compile(r"(.*)", re.S), r"\1"),
    "rain100l": PairingRule("rain100l", re.compile(r"rain-(.*)", re.S), r"norain-\1"),
    "rain100h": PairingRule("rain100h", re.compile(r"(.*?)(?:x2)?", re.S), r"\1"),
    "sots": PairingRule("sots", re.compile(r"([^_]+)_.*", re.S), r"\1"),
}


def get_rule(rule: str | PairingRule) -> PairingRule:
    """A built-in rule by name, or a custom ``"regex:PATTERN=>TEMPLATE"`` rule."""
    if isinstance(rule, PairingRule):
        return rule
    key = rule.strip()
    if key.lower() in BUILTIN_RULES:
        return BUILTIN_RULES[key.lower()]
    if key.startswith("regex:"):
        body = key[len("regex:"):]
        if "=>" not in body:
            raise PairingError(f"custom rule {rule!r} must look like 'regex:PATTERN=>TEMPLATE'")
        pattern, template = body.rsplit("=>", 1)
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise PairingError(f"custom rule {rule!r}: invalid pattern: {exc}") from None
        return PairingRule(key, compiled, template)
    known = ", ".join(list(BUILTIN_RULES) + ["auto", "regex:PATTERN=>TEMPLATE"])
    raise PairingError(f"unknown pairing rule {rule!r}; known rules: {known}")


def _subdir(root: Path, name: str) -> Path | None:
    for p in sorted(root.iterdir()):
        if p.is_dir() and p.name.lower() == name:
            return p
    return None


def detect_layout(root: PathLike) -> tuple[Path, Path, str] | None:
    """``(degraded_dir, clean_dir, rule)`` for a folder with a known pair of subfolders."""
    r = Path(root)
    if not r.is_dir():
        return None
    for deg, clean, rule in LAYOUTS:
        d, c = _subdir(r, deg), _subdir(r, clean)
        if d is not None and c is not None:
            return d, c, rule
    return None


def _examples(files: list[Path]) -> str:
    names = ", ".join(p.name for p in files[:3])
    return f"{len(files)} images" + (f", e.g. {names}" if files else "")


def _match(degraded: list[Path], clean: list[Path], rule: PairingRule
           ) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Pairs and unpaired degraded files; in a shared folder, clean partners are not degraded."""
    by_stem: dict[str, list[Path]] = {}
    for c in clean:
        by_stem.setdefault(c.stem, []).append(c)
    pairs, missing = [], []
    for d in degraded:
        stem = rule.clean_stem(d.stem)
        cands = [c for c in by_stem.get(stem, []) if c != d] if stem is not None else []
        if not cands:
            missing.append(d)
            continue
        same_ext = [c for c in cands if c.suffix.lower() == d.suffix.lower()]
        pairs.append((d, (same_ext or cands)[0]))
    targets = {c for _, c in pairs} & set(degraded)
    if targets:
        pairs = [(d, c) for d, c in pairs if d not in targets]
        missing = [d for d in missing if d not in targets]
    return pairs, missing


def find_pairs(root_or_degraded_dir: PathLike, clean_dir: PathLike | None = None,
               rule: str | PairingRule = "auto", *, strict: bool = False) -> list[tuple[Path, Path]]:
    """Pair every degraded image with its clean image; returns ``[(degraded, clean), ...]``.

    With one folder, it must hold a known pair of subfolders (``hazy/gt``, ``rain/norain``,
    ``inputcrop/cleancrop``, ``input/target``, ``degraded/clean``, ``lq/gt``, ...). With two,
    they are the degraded and the clean folder (they may be the same folder, e.g. Rain100L's
    ``rain-N``/``norain-N`` files side by side: clean-side files are then not paired again).
    ``rule="auto"`` tries every built-in rule and keeps the one pairing the most images (ties go
    to the rule the layout suggests). Order follows the degraded folder (natural sort).

    Raises :class:`PairingError` when nothing pairs (naming the rule, both folders and example
    names). Degraded images without a partner are listed in an :class:`UnpairedWarning`
    (``strict=True`` raises instead).
    """
    root = Path(root_or_degraded_dir)
    preferred = "same"
    if clean_dir is None:
        if not root.is_dir():
            raise PairingError(f"image folder not found: {root}")
        found = detect_layout(root)
        if found is None:
            subs = sorted(p.name for p in root.iterdir() if p.is_dir())
            known = ", ".join(f"{d}/{c}" for d, c, _ in LAYOUTS)
            raise PairingError(f"no known paired layout in {root} (subfolders: {subs or 'none'}); "
                               f"expected one of {known}, or pass the clean folder explicitly")
        deg_dir, cln_dir, preferred = found
    else:
        deg_dir, cln_dir = root, Path(clean_dir)
        name = deg_dir.name.lower()
        preferred = next((r for d, _, r in LAYOUTS if d == name), "same")
    for d in (deg_dir, cln_dir):
        if not d.is_dir():
            raise PairingError(f"image folder not found: {d}")
    degraded, clean = list_images(deg_dir), list_images(cln_dir)
    order = [preferred] + [r for r in BUILTIN_RULES if r != preferred]
    if rule == "auto":
        best = max(order, key=lambda r: (len(_match(degraded, clean, BUILTIN_RULES[r])[0]),
                                         -order.index(r)))
        chosen = BUILTIN_RULES[best]
    else:
        chosen = get_rule(rule)
    pairs, missing = _match(degraded, clean, chosen)
    if not pairs:
        tried = "rules " + ", ".join(order) if rule == "auto" else f"rule '{chosen.name}'"
        example = ""
        if degraded:
            target = chosen.clean_stem(degraded[0].stem)
            example = (f"; rule '{chosen.name}' maps '{degraded[0].stem}' -> "
                       f"{repr(target) if target is not None else 'no match'}")
        raise PairingError(f"pairing rule '{chosen.name}' matched no images ({tried} tried): "
                           f"degraded folder {deg_dir} ({_examples(degraded)}); "
                           f"clean folder {cln_dir} ({_examples(clean)}){example}")
    if missing:
        names = ", ".join(p.name for p in missing[:10]) + (" ..." if len(missing) > 10 else "")
        msg = (f"{len(missing)} of {len(degraded)} degraded images in {deg_dir} have no clean "
               f"partner in {cln_dir} under rule '{chosen.name}': {names}")
        if strict:
            raise PairingError(msg)
        warnings.warn(msg, UnpairedWarning, stacklevel=2)
    return pairs
