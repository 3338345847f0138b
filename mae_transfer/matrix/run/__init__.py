"""Run room: a cell's life (``state``, the one owner of cell state), its runner (``cell``), its
``result.json``, and the executors that decide where and how cells run (local, torchrun, SLURM).
"""
