"""A run folder: the one owner of its file names, and of reading and writing them.

    config.toml                    the resolved config (runs/resolve.py)
    metrics.jsonl                  one line per epoch (metric names: runs/metrics.py)
    model.safetensors              the weights to use (best validation bound)
    checkpoint.safetensors         the full training state of the last finished epoch (for --resume)
    epochs/epoch-NNN.safetensors   every save_every-th epoch's weights
    provenance.json                command line, versions, machine and wall times of each training session
    evals/<split>-k<k>.json        every evaluation kept, one file per split and k, each stamped with the
                                   SHA-256 of the weights it scored
    eval.json                      the most accurate evaluation of the current weights: the test split's
                                   largest k (another split's when test has none); "stale": true once the
                                   run has been trained on since (`--resume`) and no evaluation is current
    data.npz                       the arrays of vaelab.train(data=x), when the data was given as arrays
    plots/, report.html, explorer.html, other *.json (comparison.json, amortization_gap.json)
    tensorboard/                   TensorBoard event files (--log tensorboard)
    .vaelab-starting               vaelab's mark on a run it starts (claims.py); gone at the first checkpoint

Every file is written atomically (atomic.py), so a crash leaves the old file or the new one (and
a temporary, removed when the run is next opened). The checkpoint commits an epoch: a folder with
vaelab's start mark and no checkpoint is a failed start (an error or a kill before the first epoch
was saved), which the original command claims again and `--resume` trains from epoch 0. Without
the mark a folder is never a failed start: a run whose checkpoint was deleted is still a run.
The subfolders (plots/, evals/, epochs/, tensorboard/) are refused when they are symbolic links:
vaelab reads and writes only inside the run.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..atomic import atomic_write, remove_temporaries, temporaries
from ..config import schema as cfg
from ..errors import FolderInUse, VaelabError
from .evals import EvalHistory
from .folder_lock import locked
from .json_text import dumps, read_json, write_json

CONFIG = "config.toml"
METRICS = "metrics.jsonl"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"
EVAL = "eval.json"
EVALS = "evals"
DATA_ARRAYS = "data.npz"  # arrays given to vaelab.train(data=x), kept with the run (runs/user_arrays.py)
DATA_SOURCE = "data-source.json"  # the data's files, fingerprinted (runs/kept_data.py)
DATA_VIEW = "data-view.npz"  # what plots, the explorer and topics read without the data (runs/kept_data.py)
TEXT_READING = "text-reading.json"  # how a document run reads new text (topics/normalise.py's recipe)
REPORT = "report.html"
EXPLORER = "explorer.html"  # explorer/page.py
PLOTS = "plots"
EPOCHS = "epochs"
TENSORBOARD = "tensorboard"  # event files of --log tensorboard (training/tensorboard_log.py)
GAP = "amortization_gap.json"  # estimators/amortization_gap.py
COMPARISON = "comparison.json"  # reports/compare.py
PROVENANCE = "provenance.json"  # runs/provenance.py: how each training session was run
DOC_TOPICS = "doc_topics.csv"  # `vaelab topics RUN --docs PATH` (topics/encode.py)
STARTING = ".vaelab-starting"  # claims.py: JSON, {"replaces": SIBLING} while an overwrite keeps the old run
LIVE_WRITE_SECONDS = 60  # a temporary younger than this may be another process's write in progress
# keys every saved config.toml has held: a file without them was cut short or emptied, never read as defaults
SAVED_KEYS = ("data", "model", "hidden", "latent_dim", "epochs", "seed")


def epoch_weights(epoch: int) -> str:
    """The weights file (relative to the run) kept for one epoch by save_every."""
    return f"{EPOCHS}/epoch-{epoch:03d}.safetensors"


def epoch_of(weights: str) -> int | None:
    """The epoch in an epoch_weights() name; None for any other file."""
    prefix = f"{EPOCHS}/epoch-"
    return int(weights.removeprefix(prefix).removesuffix(".safetensors")) if weights.startswith(prefix) else None


class RunFolder:
    """One run's folder; paths are properties, files are read and written through methods (the evaluations
    through `history`, runs/evals.py)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.history = EvalHistory(self)  # evals/ and eval.json

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def plots(self) -> Path:
        return self.subfolder(PLOTS)

    @property
    def tensorboard(self) -> Path:
        return self.subfolder(TENSORBOARD)

    @property
    def report(self) -> Path:
        return self.path / REPORT

    @property
    def explorer(self) -> Path:
        return self.path / EXPLORER

    @property
    def data_arrays(self) -> Path:
        return self.path / DATA_ARRAYS

    @property
    def evals(self) -> Path:
        return self.subfolder(EVALS)

    @property
    def eval_path(self) -> Path:
        return self.path / EVAL

    def subfolder(self, name: str) -> Path:
        """RUN/name, refused when it is a symbolic link: whatever vaelab writes there (or deletes: temporaries)
        would land outside the run, and what it reads (plots for the report) would come from outside."""
        path = self.path / name
        if path.is_symlink():
            raise VaelabError(f"{path} is a symbolic link; a run's {name}/ must be a folder inside the run "
                              f"(vaelab never reads or writes through links there): remove the link")
        return path

    def make_subfolder(self, name: str) -> Path:
        """RUN/name, made if missing; never a symbolic link (subfolder), never through one planted meanwhile."""
        path = self.subfolder(name)
        try:
            path.mkdir()
        except FileExistsError:
            pass
        if not path.is_dir() or path.is_symlink():  # a file of that name, or a link planted since the check
            raise VaelabError(f"{path} is not a folder; {name}/ must be a folder inside the run")
        return path

    def is_run(self) -> bool:
        return (self.path / CONFIG).is_file()

    @property
    def start_mark(self) -> Path:
        return self.path / STARTING

    def is_failed_start(self) -> bool:
        """A run vaelab started that stopped (error or kill) before its first checkpoint: nothing in it is worth
        keeping. Only vaelab's own start mark says so (claims.py)."""
        return self.start_mark.is_file() and not self.checkpoint.exists()

    def in_use(self) -> bool:
        """Whether another process trains in this folder now (it holds training()'s lock)."""
        try:
            with self.training():
                return False
        except FolderInUse:
            return True

    def training(self) -> AbstractContextManager[None]:
        """Hold the folder's exclusive lock (folder_lock.py), as a process training in it does; FolderInUse while
        another process holds it."""
        return locked(self.path)

    def remove_temporaries(self, older_than: float = 0.0) -> int:
        """Delete what writes killed midway left (atomic.py); older_than spares a live writer's files. Never
        through a symbolic link (subfolder refuses one)."""
        self.subfolder(TENSORBOARD)  # every subfolder checked before anything is removed (or, on resume, written)
        folders = [self.path, *(self.subfolder(sub) for sub in (PLOTS, EPOCHS, EVALS))]
        return sum(remove_temporaries(folder, older_than=older_than) for folder in folders)

    # config.toml
    def read_config(self) -> cfg.Config:
        """The resolved config saved in the folder."""
        if not self.is_run():
            if temporaries(self.path, CONFIG):
                raise VaelabError(f"{self.path} holds only a half-written {CONFIG} (its run was stopped at its "
                                  f"first write); run its original command again")
            raise VaelabError(f"{self.path} is not a vaelab run folder (no {CONFIG})")
        values = cfg.read_values(self.path / CONFIG)
        missing = [k for k in SAVED_KEYS if k not in values]
        if missing:
            raise VaelabError(f"{self.path / CONFIG} is {'empty' if not values else 'damaged'} (no "
                              f"{', '.join(missing)}); its settings are lost, so it cannot be used. Train it again "
                              f"with its original command and overwrite")
        return cfg.from_dict(values)

    def read_config_table(self) -> dict | None:
        """config.toml as a plain table (for display), or None when unreadable."""
        try:
            return tomllib.loads((self.path / CONFIG).read_text())
        except (OSError, tomllib.TOMLDecodeError):
            return None

    def write_config(self, c: cfg.Config, notes: dict[str, str] | None = None) -> None:
        """config.toml; notes[key] (why this precision, say) becomes a comment on that key's line."""
        lines = cfg.to_toml(c).splitlines()
        for i, line in enumerate(lines):
            note = (notes or {}).get(line.split(" = ", 1)[0])
            if note:  # one line of printable text: TOML ends a comment at a newline and refuses control characters
                lines[i] += "  # " + " ".join("".join(ch if ch.isprintable() else " " for ch in note).split())
        atomic_write(self.path / CONFIG, ("\n".join(lines) + "\n").encode())

    def config_note(self, key: str) -> str | None:
        """The comment write_config put on key's line, or None."""
        try:
            text = (self.path / CONFIG).read_text()
        except OSError:
            return None
        found = re.search(rf'^{re.escape(key)} = (?:"[^"\n]*"|[^#\s]+) +# (.*)$', text, re.MULTILINE)
        return found.group(1) if found else None

    # metrics.jsonl
    def read_metrics(self, upto_epoch: int | None = None) -> list[dict]:
        """Per-epoch dicts (an integer epoch each), skipping blank, half-written or damaged lines."""
        try:
            lines = (self.path / METRICS).read_bytes().decode("utf-8", errors="replace").splitlines()
        except OSError:
            return []
        rows = []
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            epoch = row.get("epoch") if isinstance(row, dict) else None
            if type(epoch) is int and (upto_epoch is None or epoch <= upto_epoch):
                rows.append(row)
        return rows

    def weights_sha256(self) -> str | None:
        """SHA-256 of model.safetensors: the stamp that ties an evaluation to the weights it scored."""
        try:
            with self.weights.open("rb") as f:
                return hashlib.file_digest(f, "sha256").hexdigest()
        except OSError:
            return None

    def weights_stamp(self, sha256: str | None) -> dict:
        """What ties an evaluation to the weights it scored: the SHA-256 of the bytes loaded (never of whatever
        the file holds when the result is written: training may replace it meanwhile) and the epochs trained
        by then (read right after loading, so never fewer than the weights have seen)."""
        rows = self.read_metrics()
        return {"sha256": sha256, "epochs_trained": rows[-1]["epoch"] if rows else 0}

    def write_metrics(self, rows: list[dict]) -> None:
        """The whole metrics log, replaced atomically (the writer keeps the rows; they are small)."""
        path = self.path / METRICS
        atomic_write(path, "".join(dumps(r, str(path)) + "\n" for r in rows).encode())

    # the other JSON files
    def read_json(self, name: str) -> Any:
        return read_json(self.path / name)

    def write_json(self, name: str, data: Any) -> None:
        write_json(self.path / name, data)

    def json_files(self) -> list[Path]:
        """Every *.json in the folder but eval.json and provenance.json, sorted by name."""
        return sorted(p for p in self.path.glob("*.json") if p.name not in (EVAL, PROVENANCE))

    def read_provenance(self) -> list[dict]:
        """The training sessions recorded in provenance.json, oldest first ([] when none)."""
        data = read_json(self.path / PROVENANCE)
        sessions = data.get("sessions") if isinstance(data, dict) else None
        return [s for s in sessions if isinstance(s, dict)] if isinstance(sessions, list) else []

    def write_provenance(self, sessions: list[dict]) -> None:
        self.write_json(PROVENANCE, {"sessions": sessions})

    def write_report(self, page: str) -> Path:
        atomic_write(self.report, page.encode("utf-8"))
        return self.report

    def write_explorer(self, page: str) -> Path:
        atomic_write(self.explorer, page.encode("utf-8"))
        return self.explorer

    # weights kept per epoch
    def epoch_path(self, epoch: int) -> Path:
        self.subfolder(EPOCHS)  # refuses a link
        return self.path / epoch_weights(epoch)

    def weights_for(self, epoch: int | None) -> str:
        """The weights file (relative to the run) of an epoch kept by save_every, or model.safetensors for None."""
        if epoch is None:
            return WEIGHTS
        name = epoch_weights(epoch)
        if not self.epoch_path(epoch).is_file():
            kept = self.kept_epochs()
            hint = f"kept epochs: {', '.join(map(str, kept))}" if kept else "train with --save-every N to keep them"
            raise VaelabError(f"{self.path} has no weights for epoch {epoch} ({hint})")
        return name

    def kept_epochs(self) -> list[int]:
        return sorted(int(p.stem.removeprefix("epoch-")) for p in self.subfolder(EPOCHS).glob("epoch-*.safetensors"))
