"""Restoration networks, one file per architecture (students, teachers, peers), found by name in
:mod:`.registry` (``build_model``, ``list_models``)."""
