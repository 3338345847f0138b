"""Makes tests/ importable for the shared helpers (training_helpers.py); marks the heavy tests.

Tiers: ``slow`` (decorated in place) trains for real; ``heavy`` (listed here) launches a CLI or
trainer subprocess, or builds full-size (ViT-B/L/H) models or datasets, without training for
long. ``make test-fast`` runs neither (the edit loop); ``make test`` runs everything.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# (test file relative to tests/, test function): seconds each on 2 cores, measured with --durations
HEAVY = {
    ("checkpoints/test_cli.py", "test_subprocess_inspect_and_main_convert"),
    ("checkpoints/test_load.py", "test_vit_large_checkpoint_into_vit_base"),
    ("classification/test_classification_configs.py", "test_config_builds_on_cpu"),
    ("classification/test_classification_protocols.py", "test_linear_probe_training_leaves_backbone_bit_identical"),
    ("classification/test_classification_recipes.py", "test_partial_cells_stay_on_the_finetuning_recipe"),
    ("classification/test_classification_recipes.py", "test_linear_cell_model_has_the_bn_head_and_trains_only_the_head"),
    ("classification/test_classification_recipes.py", "test_linear_cells_run_the_linear_probe_recipe"),
    ("detection/test_coco_configs.py", "test_detector_builds_and_extracts_a_pyramid"),
    ("detection/test_coco_metric.py", "test_same_twelve_stats_within_1e_4"),
    ("detection/test_detector_layer_decay.py", "test_audit_of_a_built_detector"),
    ("detection/test_detector_layer_decay.py", "test_paper_recipe_has_no_layer_decay"),
    ("detection/test_mmdet_entry.py", "test_runner_from_cfg_and_mmdet_apis"),
    ("distributed/test_cpu_fallbacks.py", "test_ade20k_configs_lose_every_sync_bn"),
    ("imagenet/test_imagenet_configs.py", "test_config_builds_on_generated_imagenet"),
    ("integrations/test_engine_resume.py", "test_runner_resumes_from_its_checkpoint_with_weights_only_loading"),
    ("matrix/test_batch.py", "test_refused_cell_makes_plan_exit_non_zero_and_is_listed"),
    ("matrix/test_batch.py", "test_paper_matrix_plan_json_has_every_cell_at_its_recipe_batch"),
    ("matrix/test_plan.py", "test_checkpoint_content_changes_only_its_cells"),
    ("matrix/test_plan.py", "test_changing_one_override_changes_exactly_the_affected_ids"),
    ("matrix/test_recipes.py", "test_config_trains_with_its_recipe_lr_and_length"),
    ("matrix/test_rehearse.py", "test_missing_checkpoint_and_refused_cell_fail_while_others_rehearse"),
    ("matrix/test_rehearse.py", "test_minimal_cut_of_a_real_config_builds_with_both_attention_kinds"),
    ("matrix/test_reliability.py", "test_run_refuses_a_cell_with_an_override_typo_before_training"),
    ("matrix/test_reliability.py", "test_non_utf8_matrix_and_references_are_one_line_errors"),
    ("matrix/test_reliability.py", "test_status_is_not_done_when_result_is_corrupt_or_deleted"),
    ("matrix/test_reliability.py", "test_read_only_work_root_is_a_one_line_error"),
    ("matrix/test_tasks.py", "test_override_keys_exist_in_config"),
    ("models/test_vit_vs_timm.py", "test_forward_features_equal_timm_at_224"),
    ("models/test_vit_vs_timm.py", "test_forward_features_equal_timm_at_non_square_size"),
    ("pretrain/test_checkpoint.py", "test_inspect_reads_it_as_official_mae_with_decoder"),
    ("pretrain/test_pretrain_configs.py", "test_config_builds_on_cpu"),
    ("pretrain/test_purity.py", "test_importing_the_pretrain_package_loads_no_openmmlab_module"),
    ("segmentation/test_configs.py", "test_model_builds_on_cpu"),
    ("slurm/test_cluster_doctor.py", "test_doctor_plan_and_run_refuse_what_the_cluster_cannot_hold"),
    ("slurm/test_cluster_doctor.py", "test_a_partition_name_with_a_newline_is_one_message_naming_the_key"),
    ("slurm/test_pending_cancel.py", "test_a_job_cancelled_while_pending_leaves_its_cell_interrupted_and_resubmittable"),
    ("segmentation/test_configs.py", "test_config_matches_its_name"),
    ("segmentation/test_configs.py", "test_ms_flip_short_side_never_below_512"),
    ("segmentation/test_mmseg_equivalence.py", "test_tapped_maps_equal_mmseg_mae"),
    ("segmentation/test_linear_probe.py", "test_config_builds_and_says_what_it_does"),
    ("probes/test_probe_configs.py", "test_probe_config_builds"),
    ("probes/test_probe_runner.py", "test_two_process_ddp_equals_one_process"),
    ("test_core_without_openmmlab.py", "test_core_runs_with_openmmlab_blocked"),
    ("test_every_config_is_built.py", "test_every_shipped_config_is_built_by_a_family_test"),
    ("test_recipes_page.py", "test_every_table_value_is_the_configs"),
    ("leaderboard/test_all_results.py", "test_all_results_through_the_cli"),
    ("checkpoints/test_reader_bounds.py", "test_a_zip_directory_the_size_check_cannot_read_is_refused_before_torch_reads_it"),
    ("matrix/test_hostile_matrix.py", "test_hostile_yaml_is_refused_within_two_seconds_and_200_mb"),
}


@pytest.fixture(autouse=True)
def _default_scope_left_as_found():
    """mmengine's default scope and current logger after each test are what they were before: a
    Runner built in a test (mmseg, mmdet) leaves its scope and its MMLogger current. Registries then
    build from that scope's registry, and ``BaseModule.init_weights`` writes into that logger's log
    file (seen failing once its file handler was closed: "'NoneType' object has no attribute
    'write'"), so a later test in the same worker would depend on which files ran before it."""
    # only if imported: the core tests run without mmengine (imported by the test: nothing before)
    before = {manager: dict(manager._instance_dict) for manager in _mmengine_managers()}
    yield
    for manager in _mmengine_managers():
        kept = before.get(manager, {})
        if list(manager._instance_dict) != list(kept):
            manager._instance_dict.clear()
            manager._instance_dict.update(kept)


def _mmengine_managers() -> list:
    """mmengine's ``DefaultScope`` and ``MMLogger`` (their instance registries), once imported."""
    registry, logging_ = sys.modules.get("mmengine.registry"), sys.modules.get("mmengine.logging")
    return [registry.DefaultScope, logging_.MMLogger] if registry is not None and logging_ is not None else []


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection imported (torch, mmengine, mmdet, mmseg, timm, the test modules) lives for the
    session: frozen out of the cyclic collector, as ``mae_transfer.train`` does in each training
    process, so that the collections the in-process runs trigger do not walk it again and again."""
    gc.freeze()


SLURM_TESTS = "tests/slurm/"


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadgroup``, one test file per unit and every SLURM test in one unit, in the order
    of the collection (longest first, :func:`pytest_collection_modifyitems`).

    A file is one unit so that its module fixtures (a trained run several tests read) are built
    once: with a test per unit, three workers each trained the same fixture. The SLURM tests share
    one cluster, so they run one at a time on one worker. Each worker is given one unit beyond the
    one it runs (xdist's default keeps up to three tests pending, which held short units behind a
    35-minute test). pytest-xdist's own ``xdist_group`` mark does not work with pytest 9: it renames
    ``item._nodeid``, which pytest 9 no longer reads.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FilesTogether(LoadGroupScheduling):
        def __init__(self, config: pytest.Config, log=None) -> None:
            super().__init__(config, log)
            config.option.loadscopereorder = False  # the collection's order, not the units' sizes

        def _split_scope(self, nodeid: str) -> str:
            return "slurm" if nodeid.startswith(SLURM_TESTS) else nodeid.split("::", 1)[0]

        def _reschedule(self, node) -> None:
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            # a worker runs a test once it holds the next one: one queued test is the least that works
            if self._pending_of(self.assigned_work[node]) <= 1:
                self._assign_work_unit(node)

    return FilesTogether(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the HEAVY tests; a HEAVY entry whose file was collected but names no test is an error."""
    seen_files, matched = set(), set()
    for item in items:
        relative = Path(item.fspath).resolve().relative_to(TESTS).as_posix()
        seen_files.add(relative)
        key = (relative, getattr(item, "originalname", item.name))
        if key in HEAVY:
            item.add_marker(pytest.mark.heavy)
            matched.add(key)
    # longest first, so that the xdist workers end together: the whole-matrix runs, the SLURM
    # cluster's tests, the other training runs, then the heavy tests, then the fast ones
    items.sort(key=lambda item: _start_rank(item))
    stale = sorted(key for key in HEAVY if key[0] in seen_files and key not in matched and not config.option.keyword
                   and not config.option.markexpr)
    if stale and len(seen_files) > 1:
        raise pytest.UsageError(f"tests/conftest.py HEAVY names tests that do not exist: {stale}")


# The longest units, longest first (cicheck.xml durations beside two other workers): the SLURM
# tests (one unit, ~40 min), the demo's matrix, the families' matrix, the paper rehearsal, then
# the files of several training runs each. They start first so that the workers end together.
LONGEST = ("slurm/test_multinode.py", "matrix/test_smoke_matrix.py", "matrix/test_families_smoke_matrix.py",
           "matrix/test_rehearse.py", "matrix/test_fault_injection.py", "matrix/test_run_local.py",
           "segmentation/test_smoke_training.py", "classification/test_classification_digits.py")


def _start_rank(item: pytest.Item) -> tuple[int, int]:
    relative = Path(item.fspath).resolve().relative_to(TESTS).as_posix()
    if relative in LONGEST and item.get_closest_marker("slow"):
        return 0, LONGEST.index(relative)
    if relative.startswith("slurm/"):
        return 1, 0
    return (2 if item.get_closest_marker("slow") else 3 if item.get_closest_marker("heavy") else 4), 0
