"""benchmarks/paper_table.py and benchmarks/zip_ablation.py as a user runs them, on the built-in
unbounded scene with few steps."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAST = ["--config.pose_refine=False", "--config.appearance_dim=0", "--config.appearance_affine=False",
        "--config.eval_lpips=False", "--config.log_every=10"]


def run_benchmark(name, *flags):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *flags], capture_output=True, text=True,
                          cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_paper_table_trains_and_scores_the_built_in_scene_beside_the_published_figures(tmp_path):
    out = run_benchmark("paper_table.py", "--config=configs/demo360_grid.py", "--config.max_steps=20",
                        "--config.checkpoint_every=20", f"--config.exp_dir={tmp_path}", *FAST)
    results = json.loads(out.strip().splitlines()[-1])
    assert set(results) == {"demo360"} and results["demo360"]["psnr"] > 10
    assert (tmp_path / "demo360" / "eval" / "metrics.json").is_file()
    assert "| demo360 |" in out and "Zip-NeRF PSNR / SSIM / LPIPS" in out


def test_paper_table_finds_the_scene_folders_and_trains_indoor_ones_at_factor_2(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT))
    from benchmarks import paper_table

    for name, layout in (("garden", "sparse/0"), ("room", "sparse/0"), ("fern", None), ("notes", None)):
        (tmp_path / name / "images").mkdir(parents=True)
        if layout:
            (tmp_path / name / layout).mkdir(parents=True)
    (tmp_path / "fern" / "poses_bounds.npy").write_bytes(b"")
    (tmp_path / "notes" / "images").rmdir()
    assert [d.name for d in paper_table.scene_dirs(tmp_path)] == ["fern", "garden", "room"]
    means = paper_table.PUBLISHED["Zip-NeRF"]["mean"]
    assert means == pytest.approx((28.54, 0.828, 0.189), abs=6e-3)
    assert paper_table.PUBLISHED["mip-NeRF 360"]["mean"] == pytest.approx((27.69, 0.792, 0.237), abs=6e-3)


def test_zip_ablation_reports_every_variant_and_the_flicker(tmp_path):
    out = run_benchmark("zip_ablation.py", "--seeds=1", "--variants=all,-interlevel", "--flicker_frames=3",
                        "--config.max_steps=10", "--config.eval_lpips=False")
    variants = json.loads(out.strip().splitlines()[-1])["variants"]
    assert set(variants) == {"all", "-interlevel"}
    for row in variants.values():
        assert row["psnr"]["min"] <= row["psnr"]["mean"] <= row["psnr"]["max"]
        assert row["flicker_rgb"] >= 0 and row["change_rgb"] > 0 and row["s_per_step"]["mean"] > 0
