"""Terminal output: control characters from data (words, names, paths) are printed as escapes, never obeyed."""

from __future__ import annotations

import logging

import pytest
from clitools import expect_error
from corpora import two_topic_lines, write_tsv

import vaelab
from vaelab import logs
from vaelab.cli.main import run as cli
from vaelab.runs import inputs, loading
from vaelab.terminal import printable

PWNED = "\x1b]0;PWNED\x07\x1b[2J"  # retitles the terminal window and clears the screen (issue 27, item 4)
SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J"  # what the user sees instead: the sequence spelled out


def _raw(text: str) -> bool:
    """Whether text holds a control character a terminal would act on (other than line breaks)."""
    return any(ord(c) < 32 and c != "\n" or 0x7f <= ord(c) < 0xa0 for c in text)


def test_printable_spells_out_every_control_character():
    assert printable(PWNED) == SHOWN
    assert printable("a\nb\rc\td\x7fe\x9bf") == "a\\x0ab\\x0dc\\x09d\\x7fe\\x9bf"  # one data string: one line
    assert printable("run\n" + PWNED, keep_lines=True) == "run\n" + SHOWN  # vaelab's own line breaks stay
    # the bidirectional override that reverses what follows, the line separator, a file name's undecodable byte
    assert printable("a\u202eb\u2028c\udcff") == "a\\u202eb\\u2028c\\udcff"
    assert printable("naïve 東京 ✓") == "naïve 東京 ✓"  # printable text is untouched
    assert printable(SHOWN) == SHOWN  # escaping twice changes nothing


def test_topics_prints_a_hostile_vocabulary_word_spelled_out(tmp_path, capsys):
    root = write_tsv(tmp_path / "corpus", two_topic_lines(60),
                     vocab=[f"{t}{i}" for t in "ab" for i in range(10)] + [PWNED])
    run = vaelab.train(out=tmp_path / "run", data=f"corpus:{root}", model="prodlda", likelihood="multinomial",
                       hidden=(8,), latent_dim=2, epochs=1, batch_size=16, device="cpu", log=lambda s: None,
                       finish=False)
    assert PWNED in inputs.load_data(loading.load_config(run)).vocabulary  # the word reached the model's vocabulary
    assert cli(["topics", str(run), "--top", "21"]) == 0  # every word of the vocabulary, in each topic's line
    out = capsys.readouterr().out
    assert not _raw(out) and out.count(SHOWN) == 2, out  # two topics, each listing all 21 words


def test_an_error_line_escapes_a_path(tmp_path, capsys):
    err = expect_error(["evaluate", str(tmp_path / PWNED)], capsys)  # a path from the user, in the error line
    assert not _raw(err) and SHOWN in err


def test_a_usage_error_escapes_what_it_echoes(capsys):
    with pytest.raises(SystemExit) as e:
        cli(["configs", PWNED])  # argparse echoes the stray argument
    err = capsys.readouterr().err
    assert e.value.code == 2 and not _raw(err) and SHOWN in err


def test_log_lines_escape_data(capsys):
    logs.configure_logging(0)
    logging.getLogger("vaelab").info(f"run folder: {PWNED}")  # e.g. a run's name in a training log line
    assert capsys.readouterr().err == f"run folder: {SHOWN}\n"
