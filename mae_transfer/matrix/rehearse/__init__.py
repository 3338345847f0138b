"""Rehearse room: ``run --rehearse``, every planned cell for a few steps at its real shapes, here,
with generated inputs in the real label spaces and depth cuts that keep every shape.
"""
