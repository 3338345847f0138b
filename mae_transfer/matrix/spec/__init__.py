"""Spec room: a matrix YAML file -> a typed, validated ``MatrixSpec`` (strict YAML, backbones, tasks,
recipes, pre-training stages); the vocabulary tables (``TASKS``, ``RECIPES``) the rooms above read.
"""

from mae_transfer.matrix.spec.matrix_spec import (
    CLASSIFICATION_TASKS,
    TRANSFER_CLASSIFICATION_TASKS,
    Backbone,
    MatrixSpec,
    Resources,
    SpecError,
    TaskEntry,
    load_spec,
)
from mae_transfer.matrix.spec.pretrain_stage import PRETRAIN_TASK, PretrainStage
from mae_transfer.matrix.spec.recipes import Recipe, RecipeError, recipe_for
from mae_transfer.matrix.spec.strict_yaml import load_yaml_file
from mae_transfer.matrix.spec.tasks import TASKS, TaskProfile

__all__ = ["CLASSIFICATION_TASKS", "PRETRAIN_TASK", "TASKS", "TRANSFER_CLASSIFICATION_TASKS", "Backbone", "MatrixSpec",
           "PretrainStage", "Recipe", "RecipeError", "Resources", "SpecError", "TaskEntry", "TaskProfile",
           "load_spec", "load_yaml_file", "recipe_for"]
