"""The package installs on its own: a wheel in a fresh virtualenv outside the repo imports, finds its data
and calibration, and its console script answers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from conftest import ROOT


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_wheel_installs_and_runs_outside_the_repo(tmp_path: Path) -> None:
    # Build from a copy: an in-tree build leaves build/ behind, and a stale build/ can hide a missing file.
    source = tmp_path / "source"
    for part in ("pyproject.toml", "README.md", "tokenlib", "data"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy2
        source.mkdir(exist_ok=True)
        copy(ROOT / part, source / part)
    wheels = tmp_path / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                  "-w", str(wheels), str(source)], cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    wheel = next(wheels.glob("tokenlib-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("tokenlib/model/calibration.json", "tokenlib/_data/schema.yaml", "tokenlib/_data/chips.csv",
                   "tokenlib/_data/sources/chips.csv", "tokenlib/py.typed"):
        assert needed in names, f"the wheel lacks {needed}"

    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    # The dependencies come from this test's environment (no network here); the package itself only from
    # the wheel: a plain path entry, so the checkout's own .pth (which points at the repo) is not read.
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path)
    Path(purelib.stdout.strip(), "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    where = _run([str(python), "-c", "import tokenlib, tokenlib.data as d; print(tokenlib.__file__); "
                  "print(d.default_data_dir()); print(len(tokenlib.load('chips')))"], cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    module, data_dir, n_chips = where.stdout.split()
    assert Path(module).is_relative_to(venv), f"tokenlib imported from {module}, not the installed wheel"
    assert Path(data_dir).is_relative_to(venv), f"data read from {data_dir}, not the installed copy"
    assert int(n_chips) > 10

    answer = _run([str(venv / "bin" / "tokenlib"), "estimate", "--model", "deepseek-v3", "--chip", "h800",
                   "--phase", "decode", "--batch", "128", "--context", "4096", "--precision", "fp8",
                   "--n-chips", "144", "--json"], cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert result["tokens_per_s_per_chip"]["calibrated"] > 0
