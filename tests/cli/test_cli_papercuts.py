"""The command line as a new user meets it (issue 12 section 4): verbosity anywhere, --version, a bare
`vaelab`, every default shown, "did you mean", no prefix matching, one list of datasets."""

import argparse
import re

import pytest
from clitools import expect_error

import vaelab
from vaelab.cli.main import build_parser
from vaelab.cli.main import run as cli
from vaelab.config import choices
from vaelab.config import schema as cfg

FAST = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "256", "--device", "cpu", "--no-report"]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _usage_error(args: list[str], capsys) -> str:
    """argparse's refusal: exit code 2, the message on stderr."""
    with pytest.raises(SystemExit) as e:
        cli(args)
    assert e.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("argv, verbosity", [
    (["train"], 0), (["-q", "train"], -1), (["train", "-q"], -1), (["train", "--quiet"], -1),
    (["-v", "evaluate", "RUN"], 1), (["evaluate", "RUN", "-v"], 1), (["evaluate", "RUN", "-vv"], 2),
    (["-q", "sweep", "--seeds", "2"], -1), (["compare", "-q"], -1), (["configs", "-v"], 1),
])
def test_quiet_and_verbose_before_or_after_the_command(argv, verbosity):
    assert build_parser().parse_args(argv).verbosity == verbosity


def test_quiet_after_the_command_turns_the_progress_bars_off(tmp_path, capsys):
    assert cli(["train", "-q", "--epochs", "1", "--out", str(tmp_path / "r"), *FAST]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "it/s" not in err  # tqdm redraws with carriage returns


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"vaelab {vaelab.__version__}"


def test_bare_vaelab_prints_the_help_and_succeeds(capsys):
    assert cli([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: vaelab")
    for name in _subparsers(build_parser()):
        assert re.search(rf"^\s+{re.escape(name)}\b", out, re.M), name


def test_every_flag_shows_its_default():
    parser = build_parser()
    parsers = {"vaelab": parser, **_subparsers(parser)}
    for name, p in parsers.items():
        p.format_help()  # every help string formats (a stray % would raise here)
        for action in p._actions:
            if action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                assert re.search(r"default[ :;]|\(required\)", action.help or ""), (name, action.option_strings)
    # flags backed by the config show the config's own default, not argparse's None
    train = {a.dest: a.help for a in _subparsers(parser)["train"]._actions}
    c = cfg.Config()
    assert f"(default: {c.epochs}, or the --config file's)" in train["epochs"]
    assert f"(default: {c.lr}, or the --config file's)" in train["lr"]
    assert f"(default: {c.data}, or the --config file's)" in train["data"]
    assert "None" not in _subparsers(parser)["train"].format_help()


def test_did_you_mean_for_commands_models_and_plot_kinds(capsys):
    assert "did you mean 'train'?" in _usage_error(["trian"], capsys)
    assert "did you mean 'evaluate'?" in _usage_error(["evalute", "RUN"], capsys)
    assert "did you mean 'vae'?" in _usage_error(["train", "--model", "vea"], capsys)
    assert "did you mean 'manifold'?" in _usage_error(["plot", "RUN", "--kind", "manifod"], capsys)
    assert "did you mean" not in _usage_error(["train", "--model", "transformer"], capsys)  # nothing close


def test_did_you_mean_for_datasets(tmp_path, capsys):
    err = expect_error(["train", "--data", "fashion_mnist", "--out", str(tmp_path / "r"), *FAST], capsys)
    assert "unknown dataset 'fashion_mnist' (did you mean 'fashion-mnist'?)" in err
    assert not (tmp_path / "r").exists()


def test_did_you_mean_for_config_keys(tmp_path, capsys):
    err = expect_error(["train", "--set", "lattent_dim=3", "--out", str(tmp_path / "r"), *FAST], capsys)
    assert "unknown config key 'lattent_dim' (did you mean 'latent_dim'?)" in err and not (tmp_path / "r").exists()


def test_did_you_mean_in_the_library_too(tmp_path):
    with pytest.raises(vaelab.VaelabError, match="did you mean 'conv-vae'"):
        vaelab.train(model="conv_vae", out=tmp_path / "r", finish=False)
    with pytest.raises(vaelab.VaelabError, match="did you mean 'digits'"):
        vaelab.train(data="digit", out=tmp_path / "r", finish=False)
    assert not (tmp_path / "r").exists()


def test_no_prefix_matching(capsys):
    assert "unrecognized arguments: --epoch" in _usage_error(["train", "--epoch", "3"], capsys)
    assert "unrecognized arguments: --lat" in _usage_error(["train", "--lat", "2"], capsys)
    assert "--vers" in _usage_error(["--vers"], capsys)
    for p in (build_parser(), *_subparsers(build_parser()).values()):
        assert p.allow_abbrev is False, p.prog


def test_the_dataset_lists_agree(tmp_path, capsys):
    from vaelab import data, models

    assert choices.DATASETS == data.DATASETS + data.CORPORA
    assert choices.MODELS == tuple(models.MODELS)  # the CLI's choices are the registry's names
    help_text = {a.dest: a.help for a in _subparsers(build_parser())["train"]._actions}["data"]
    listed = help_text.split(" (default")[0].split(" | ")
    assert tuple(listed) == choices.DATASETS
    err = expect_error(["train", "--data", "cifar-99", "--out", str(tmp_path / "r"), *FAST], capsys)
    assert err.endswith("choose from " + ", ".join(choices.DATASETS))


@pytest.mark.parametrize("argv", [[], ["--help"], ["--version"], ["train", "--help"], ["sweep", "--help"],
                                  ["trian"], ["train", "--epoch", "3"]])
def test_help_version_and_usage_errors_import_no_torch(argv):
    """`vaelab --help` stays fast (benchmarks/bench_startup.py times it): nothing heavy is imported to print."""
    from startup import imported_after as _imported_after

    code = ("import sys, runpy\n"
            f"sys.argv = ['vaelab', *{argv!r}]\n"
            "try:\n    runpy.run_module('vaelab', run_name='__main__')\nexcept SystemExit:\n    pass\n")
    assert _imported_after(code) == []


def test_a_usage_error_is_two_lines_not_the_whole_usage(capsys):
    for argv, says in ((["train", "--epochs", "x"], "vaelab train: error: argument --epochs: invalid int value: 'x'"),
                       (["sweep", "--seeds"], "vaelab sweep: error: argument --seeds: expected one argument"),
                       (["trian"], "vaelab: error: argument COMMAND: invalid choice: 'trian' (did you mean 'train'?)")):
        lines = _usage_error(argv, capsys).splitlines()
        assert len(lines) == 2 and lines[0].startswith(says), lines  # the train usage alone is 20 lines
        assert lines[1] == f"run `{says.split(':')[0]} --help` for the usage"
