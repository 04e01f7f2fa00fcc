"""A stage killed by a real signal leaves no output behind, and its re-run resumes from
the last finished epoch and ends with the weights of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


def tiny_params(tmp_path: Path, root: Path) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["root"] = str(root)
    params["data"]["val_fraction"] = 0.25
    params["model"]["width"] = 0.0625
    params["pretrain"].update(epochs=4, batch_size=2, warmup_iters=1)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def pretrain_cmd(params: Path, out: Path, work: Path) -> list[str]:
    return [sys.executable, str(ROOT / "stages/pretrain.py"), "--params", str(params), "--out", str(out),
            "--history", str(out.with_suffix(".csv")), "--work-dir", str(work)]


@pytest.mark.slow
def test_killed_pretrain_resumes_to_the_same_weights(tmp_path, tiny_voc):
    params = tiny_params(tmp_path, tiny_voc)
    out, work = tmp_path / "model.pt", tmp_path / "work"
    proc = subprocess.Popen(pretrain_cmd(params, out, work), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (work / "resume.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not out.exists() and not out.with_suffix(".csv").exists()  # nothing DVC could mistake for a result
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.pt")]  # no stray temporaries

    resumed = subprocess.run(pretrain_cmd(params, out, work), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout + resumed.stderr

    reference = tmp_path / "reference.pt"
    subprocess.run(pretrain_cmd(params, reference, tmp_path / "work_ref"), check=True, capture_output=True)
    a = torch.load(out, weights_only=True)["state_dict"]
    b = torch.load(reference, weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
