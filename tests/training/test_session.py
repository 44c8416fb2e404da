"""One training session: the resume rule holds for the library and the command line alike."""

import pytest
from clitools import expect_error, snapshot

import vaelab
from vaelab.cli.main import run as cli
from vaelab.errors import VaelabError
from vaelab.runs.folder import RunFolder

TINY = ["--hidden", "8", "--latent-dim", "2", "--batch-size", "256", "--device", "cpu", "--eval-k", "5"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    assert cli(["-q", "train", "--epochs", "1", "--no-report", "--out", str(out), *TINY]) == 0
    return out


@pytest.mark.parametrize("call, flags, got", [
    (dict(latent_dim=5), ["--latent-dim", "5"], "latent_dim"),
    (dict(lr=0.5, hidden=(4,), epochs=3), ["--lr", "0.5", "--hidden", "4", "--epochs", "3"], "hidden, lr"),
])
def test_resume_refuses_a_changed_run_in_the_library_as_on_the_command_line(trained, capsys, call, flags, got):
    before = snapshot(trained)
    err = expect_error(["-q", "train", "--resume", str(trained), *flags], capsys)
    with pytest.raises(VaelabError) as e:
        vaelab.train(resume=trained, finish=False, **call)
    assert err == f"vaelab: error: {e.value}"  # one rule, one message
    assert str(e.value) == ("resume continues a run as configured; only device, epochs, eval_k, max_minutes, "
                            f"patience, precision, save_every may change (got {got})")
    assert snapshot(trained) == before  # refused before the folder is locked or anything in it touched


def test_resume_refuses_a_config_beside_the_run(trained, tmp_path, capsys):
    before = snapshot(trained)
    err = expect_error(["-q", "train", "--resume", str(trained), "--config", "seed-mlp-vae"], capsys)
    assert err.endswith("(got config)")
    with pytest.raises(VaelabError, match=r"\(got config\)"):
        vaelab.train(vaelab.Config(), out=trained, resume=True, finish=False)
    assert snapshot(trained) == before


def test_resume_may_change_what_leaves_the_model_alone(trained, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    vaelab.train(run, resume=True, epochs=2, patience=1, finish=False, log=lambda s: None)  # train(RUN, resume=True)
    assert [r["epoch"] for r in RunFolder(run).read_metrics()] == [1, 2]
