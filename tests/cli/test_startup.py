"""`vaelab --help` and `import vaelab` must not import torch, scikit-learn or matplotlib (seconds of start-up)."""

from paths import ROOT
from startup import imported_after as _imported_after


def test_help_does_not_import_torch():
    code = ("import sys, runpy\nsys.argv = ['vaelab', '--help']\n"
            "try:\n    runpy.run_module('vaelab', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code == 0\n")
    assert _imported_after(code) == []


def test_every_subcommand_help_is_torch_free():
    code = ("from vaelab.cli.main import build_parser\np = build_parser()\n"
            "for name in p._subparsers._group_actions[0].choices.values():\n    name.format_help()\n")
    assert _imported_after(code) == []


def test_import_vaelab_is_lazy_but_the_names_still_work():
    assert _imported_after("import vaelab") == []
    assert "torch" in _imported_after("import vaelab\nassert vaelab.train.__module__ == 'vaelab.api'")
    # no submodule shares a public function's name, so importing the modules behind them changes nothing
    code = ("import vaelab.sweeps.sweep, vaelab.estimators.evaluation, vaelab.training.loop\nimport vaelab\n"
            "assert vaelab.evaluate.__module__ == 'vaelab.api' and vaelab.sweep.__module__ == 'vaelab.sweeps.sweep'\n"
            "assert callable(vaelab.sweep) and callable(vaelab.evaluate)")
    assert "torch" in _imported_after(code)


def test_no_module_or_folder_at_the_top_shares_a_public_name():
    top = {p.stem for p in (ROOT / "src" / "vaelab").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    import vaelab
    assert top & set(vaelab.__all__) == set()
