"""The one base class of kdrestore's user-facing errors: the CLI prints these without a traceback."""
from __future__ import annotations


class KdrestoreError(Exception):
    """A problem with the user's input (file, folder, field, name) explained in the message."""
