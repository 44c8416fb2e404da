"""Several nodes that do not see the same folders: one error line, exit 2, nothing written, no process left waiting.

Two torchrun launchers of one process each meet at a c10d rendezvous on localhost as two nodes would; the second
runs in its own mount namespace (`unshare -m`) with an empty tmpfs over tmp_path/shared, so what the first node
keeps there is missing on the second (or replaced by the copy the test puts there), as on a node without the
shared filesystem. Before runtime/same_folder.py and parallel.settle, the node that failed ended and the other
waited in the rendezvous of the process group for its 10-minute timeout: the launchers' timeout below would fail.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from paths import ROOT

import vaelab
from vaelab.runtime.parallel import World

SRC = str(ROOT / "src")


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


pytestmark = pytest.mark.skipif(not _can_unshare(), reason="needs `unshare -m` (root, or a user namespace)")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_nodes(tmp_path: Path, args: list[str], setup: str = "") -> list[subprocess.CompletedProcess]:
    """`vaelab ARGS` on two "nodes" of one process each; the second sees an empty tmp_path/shared, after `setup`
    (shell commands run there once the tmpfs is mounted). Both launchers must end within the timeout."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    port = _free_port()
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
              "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "same-folder",
              "-m", "vaelab", "-q", *args]
    shared = tmp_path / "shared"
    apart = ["unshare", "-m", "--propagation", "private", "sh", "-c",
             f'mount -t tmpfs none "$1" && {setup or "true"} && shift && exec "$@"', "sh", str(shared), *launch]
    nodes = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd in (launch, apart)]
    try:
        done = [node.communicate(timeout=180) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    return [subprocess.CompletedProcess(n.args, n.returncode, out, err) for n, (out, err) in zip(nodes, done)]


def _errors(p: subprocess.CompletedProcess) -> list[str]:
    return [s for s in p.stderr.splitlines() if "vaelab: error:" in s]


def _refused(nodes: list[subprocess.CompletedProcess], words: str) -> None:
    """Each node printed one error line holding `words`; torchrun names exit code 2 and exits 1 on both."""
    for node in nodes:
        assert node.returncode == 1, node.stderr[-3000:]
        lines = _errors(node)
        assert len(lines) == 1 and words in lines[0], node.stderr[-3000:]
        assert "exitcode  : 2" in node.stderr


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small digits run, in a staging folder; each test copies it under its own tmp_path/shared."""
    run = tmp_path_factory.mktemp("stage") / "run"
    vaelab.train(data="digits", hidden=(32,), latent_dim=3, batch_size=64, epochs=2, device="cpu", precision="fp32",
                 out=run, finish=False, log=lambda s: None)
    return run


def _run_in(tmp_path: Path, trained: Path) -> Path:
    run = tmp_path / "shared" / "run"
    shutil.copytree(trained, run)
    return run


EVALUATE = ["evaluate", "{run}", "--k", "20", "--device", "cpu"]


def _evaluate(run: Path) -> list[str]:
    return [a.replace("{run}", str(run)) for a in EVALUATE]


def test_evaluate_refuses_a_run_one_node_does_not_have(tmp_path, trained):
    run = _run_in(tmp_path, trained)
    before = _files(run)
    nodes = _two_nodes(tmp_path, _evaluate(run))
    _refused(nodes, f"{run} is not the same on every node: process 1")
    assert "lacks config.toml" in _errors(nodes[0])[0]
    assert _files(run) == before  # no evals/, no eval.json


def test_evaluate_refuses_a_copy_with_other_weights(tmp_path, trained):
    run = _run_in(tmp_path, trained)
    other = tmp_path / "other"
    shutil.copytree(trained, other)
    weights = bytearray((other / "model.safetensors").read_bytes())
    weights[-1] ^= 1  # one bit of the last weight
    (other / "model.safetensors").write_bytes(bytes(weights))
    before = _files(run)
    nodes = _two_nodes(tmp_path, _evaluate(run), setup=f'cp -r "{other}" "{run}"')
    _refused(nodes, "holds another model.safetensors than process 0")
    assert _files(run) == before


@pytest.mark.precision(kind="fp32")
def test_evaluate_takes_the_same_copy_on_each_node_and_scores_like_one_process(tmp_path, trained):
    run = _run_in(tmp_path, trained)
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    nodes = _two_nodes(tmp_path, _evaluate(run), setup=f'cp -r "{copy}" "{run}"')
    assert [n.returncode for n in nodes] == [0, 0], [n.stderr[-2000:] for n in nodes]
    two = json.loads((run / "eval.json").read_text())
    one = vaelab.evaluate(copy, k=20, device="cpu", write=False, world=World())
    assert two["processes"] == 2
    for name in ("elbo", "iwae", "nll"):
        assert two[name] == one[name], name  # bit for bit: the points' streams do not depend on the split


def test_resume_refuses_a_run_one_node_does_not_have(tmp_path, trained):
    run = _run_in(tmp_path, trained)
    before = _files(run)
    nodes = _two_nodes(tmp_path, ["train", "--resume", str(run), "--epochs", "3"])
    _refused(nodes, "lacks config.toml")
    assert _files(run) == before


def test_a_new_run_stops_every_node_when_one_lacks_the_data(tmp_path):
    import numpy as np

    data = tmp_path / "shared" / "rows.npz"
    data.parent.mkdir()
    rng = np.random.default_rng(0)
    np.savez(data, x_train=(rng.random((64, 8)) < 0.5).astype(np.float32),
             x_test=(rng.random((16, 8)) < 0.5).astype(np.float32))
    out = tmp_path / "run"
    nodes = _two_nodes(tmp_path, ["train", "--data", f"npz:{data}", "--epochs", "1", "--device", "cpu",
                                  "--out", str(out)])
    _refused(nodes, "(process 1 of 2, on ")  # the second node's own error, named on both
    assert "rows.npz" in _errors(nodes[0])[0]
    assert not out.exists()


def test_a_sweep_refuses_a_folder_the_nodes_do_not_share(tmp_path):
    root = tmp_path / "shared" / "sweep"
    root.parent.mkdir()
    nodes = _two_nodes(tmp_path, ["sweep", "--seeds", "2", "--epochs", "1", "--hidden", "16", "--latent-dim", "2",
                                  "--device", "cpu", "--out", str(root)])
    _refused(nodes, f"{root} is not shared between the nodes: process 1")
    assert list(root.parent.iterdir()) == []  # neither the sweep folder nor the marker is left
