"""How knowledge moves: hooks, adapters, teachers, losses and methods (all on the one trainer)."""
