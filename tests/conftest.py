"""Makes tests/ importable for the shared helpers (training_helpers.py)."""
