"""Experiments above the engine and the deploy layer: the benches (``kdrestore bench``: distillation,
data-free, methods, CoIC, TRNR, and their leak guard), the ship bench of a student against its targets,
and the HTML report (``kdrestore report``) with its SVG charts. Nothing below imports this package."""
