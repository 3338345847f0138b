"""Probe protocols in a matrix: spec checks naming the key, the planned options (per-process batch,
the shared feature cache, no lr), and the leaderboard's probe table (k-NN k=20, the linear sweep's
chosen point) apart from the paper's tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mae_transfer.leaderboard import build_leaderboard
from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.spec.matrix_spec import SpecError, load_spec

MATRIX = """
name: probes
backbones:
  - {name: mine_b, checkpoint: b.pth, arch: vit_base_patch16}
resources: {gpus_per_cell: 8}
tasks:
  - {task: imagenet, protocol: knn}
  - {task: imagenet, protocol: linear-sweep}
  - {task: inat2018, protocol: attentive}
  - {task: inat2018, protocol: finetune}
"""


def _plan(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    (tmp_path / "m.yaml").write_text(text)
    (tmp_path / "b.pth").write_bytes(b"")
    return plan_matrix(load_spec(tmp_path / "m.yaml"))


@pytest.mark.parametrize(("task", "message"), [
    ("{task: digits, recipe: smoke, protocol: finetune}", r"tasks\[0\]\.protocol: 'finetune': digits runs the frozen "
                                                          r"probes only"),
    ("{task: inat2017, recipe: smoke, protocol: knn}", r"tasks\[0\]\.protocol: 'knn': inat2017 has no probe config "
                                                       r"for recipe 'smoke'"),
])
def test_spec_refuses_a_probe_where_there_is_no_probe_config(tmp_path, monkeypatch, task, message):
    with pytest.raises(SpecError, match=message):
        _plan(tmp_path, f"name: x\nbackbones: [{{name: b, checkpoint: b.pth, arch: vit_base_patch16}}]\n"
                        f"tasks: [{task}]\n", monkeypatch)


def test_generate_photos_is_for_the_pretraining_imagenet_only(tmp_path, monkeypatch):
    with pytest.raises(SpecError, match=r"datasets\.coco\.generate: 'photos' is not allowed; allowed values: true, "
                                        r"false\Z"):
        _plan(tmp_path, "name: x\nbackbones: [{name: b, checkpoint: b.pth, arch: vit_base_patch16}]\n"
                        "datasets: {coco: {generate: photos}}\ntasks: [{task: coco-maskrcnn}]\n", monkeypatch)


def test_probe_cells_plan_and_the_leaderboard_shows_them_apart(tmp_path, monkeypatch):
    plan = _plan(tmp_path, MATRIX, monkeypatch)
    cells = {cell.label: cell for cell in plan.cells}
    knn = cells["imagenet.paper.knn.mine_b.s0"]
    assert knn.config.endswith("configs/imagenet/vit-base-p16_probes-amp_in1k-224.py")
    assert knn.cfg_options["probe.protocol"] == "knn"
    assert knn.cfg_options["probe.cache_root"] == str(plan.spec.work_root / "features")
    assert knn.cfg_options["train_dataloader.batch_size"] == 128  # DINOv2/CAPI: 128 per GPU, no accumulation
    assert "optim_wrapper.accumulative_counts" not in knn.cfg_options and knn.lr is None
    assert (knn.effective_batch, knn.per_gpu_batch, knn.accumulation, knn.off_recipe) == (1024, 128, 1, False)
    attentive = cells["inat2018.paper.attentive.mine_b.s0"]
    assert attentive.config.endswith("configs/inat/vit-base-p16_probes-amp_inat2018-224.py")
    values = {"imagenet.paper.knn.mine_b.s0": {"knn_k20": 61.25},
              "imagenet.paper.linear-sweep.mine_b.s0": {"linear_sweep": 67.5},
              "inat2018.paper.finetune.mine_b.s0": {"top1": 70.0, "top5": 90.0}}
    for label, metrics in values.items():
        cell = cells[label]
        probe = {"chosen": {"name": "both/last4/lr0.001"}} if "sweep" in label else {}
        payload = {"schema": 1, "cell": {"id": cell.id, "backbone": "mine_b", "task": cell.task, "recipe": "paper",
                                         "seed": 0}, "metrics": metrics, "probe": probe,
                   "provenance": {"eval_mode": "ss", "checkpoint_policy": "last", "effective_batch": 1024, "gpus": 8}}
        Path(cell.work_dir).mkdir(parents=True)
        (Path(cell.work_dir) / "result.json").write_text(json.dumps(payload))
    markdown = build_leaderboard(plan).render("md")
    sections = {part.split("\n", 1)[0]: part for part in markdown.split("\n## ")}
    probes = next(body for title, body in sections.items() if title.startswith("imagenet: frozen-feature probes"))
    row = next(line for line in probes.splitlines() if line.startswith("| mine_b"))
    assert "| 61.25 (n=1) | 67.50 (n=1) @both/last4/lr0.001 |" in row and "missing" not in row
    assert "reference" not in probes  # no published MAE number under these protocols
    inat_probes = next(body for title, body in sections.items() if title.startswith("inat2018: frozen-feature"))
    assert "0 planned" not in inat_probes and "| - | - |" in inat_probes  # attentive not run yet: its cell only
    table6 = next(body for title, body in sections.items() if title.startswith("Table 6"))
    assert "attentive" not in table6 and "70.00 (n=1)" in table6
    assert not any(title.startswith("ImageNet-1K") for title in sections)  # no fine-tuning cell: no Table 3 rows
