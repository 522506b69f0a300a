"""Every folder of the package is a package, and every module imports on its own."""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import kdrestore

SRC = Path(kdrestore.__file__).parent
NOT_PACKAGES = {"pretrained", "__pycache__"}  # shipped weights and cards: package data, not code


def test_every_source_folder_is_a_package():
    folders = [d for d in SRC.rglob("*") if d.is_dir() and not NOT_PACKAGES & set(d.relative_to(SRC).parts)]
    assert [str(d.relative_to(SRC)) for d in folders if not (d / "__init__.py").is_file()] == []


def test_every_module_imports():
    names = [m.name for m in pkgutil.walk_packages(kdrestore.__path__, "kdrestore.")]
    files = [p for p in SRC.rglob("*.py") if not NOT_PACKAGES & set(p.relative_to(SRC).parts)]
    assert len(names) + 1 == len(files)  # + the root __init__.py: discovery reaches every file
    for name in names:
        if name != "kdrestore.__main__":  # the command line itself; importing it would shadow `python -m`
            importlib.import_module(name)
