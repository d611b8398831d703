"""Background loops that ``conveyor serve`` runs: each one small class with ``run_once``."""
