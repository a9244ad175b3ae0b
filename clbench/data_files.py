"""Real task data for the full-scale tasks: a local file first, then `datasets`.

One way to point at local data, so that a run never downloads by surprise:
`$CLBENCH_DATA_DIR/<task>/` (or `clbench run --data-dir DIR`, which sets it) holds
the task's rows in their public schema, one file per split named after it
(`train.parquet`, `test.jsonl`, ...) or a single file of any name used as `train`;
`$CLBENCH_DATA_DIR/<task>.parquet|.jsonl|.json` works too. Without a local copy the
rows come from `datasets.load_dataset(hub_id)`: from its cache when offline
(HF_DATASETS_OFFLINE=1), downloaded when online. Missing data is a UserError
(exit 2) that names the task, the variable, the expected path and the hub id.

The environment variable is read here, not threaded through ctx (the one exception to
"settings travel in the run config", like HF_HOME for `datasets`): population workers
and Ray actors inherit it.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from clbench.errors import UserError
from clbench.task import SPLITS, TaskFamily

DATA_ENV = "CLBENCH_DATA_DIR"
SUFFIXES = (".parquet", ".jsonl", ".json")


@dataclass(frozen=True)
class DataSource:
    """Where a task's real rows live and what they must hold."""

    task: str  # clbench task name, also the folder name under $CLBENCH_DATA_DIR
    hub_id: str  # the public data set, e.g. Jiayi-Pan/Countdown-Tasks-3to4
    columns: tuple[str, ...]  # required columns of the public schema
    hub_config: str | None = None  # e.g. gsm8k's "main"

    def how_to_provide(self) -> str:
        root = os.environ.get(DATA_ENV) or "$" + DATA_ENV
        return (f"put the rows (columns {', '.join(self.columns)}) in {root}/{self.task}/train.parquet "
                f"(or .jsonl/.json; one file per split, e.g. test.jsonl) and set {DATA_ENV} or pass "
                f"--data-dir, or fetch {self.hub_id} into the datasets cache while online: HF_DATASETS_OFFLINE=0 python -c "
                f"\"import datasets; datasets.load_dataset('{self.hub_id}'"
                + (f", '{self.hub_config}'" if self.hub_config else "") + ")\"")


def read_file(path: Path) -> list[dict]:
    """Rows of one parquet, JSON-lines or JSON (a list of rows, or {"rows"/split: [...]}) file."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        text = path.read_text()
        try:
            data = json.loads(text)
        except ValueError:  # JSON lines
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise UserError(f"data: cannot read {path} ({e}); give parquet, JSON lines or a JSON list") from None
    if isinstance(data, dict):  # {"rows": [...]}, {"train": [...]}, or one JSON-lines row
        data = next((v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], dict)),
                    [data])
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise UserError(f"data: {path} holds no list of rows (JSON objects)")
    return data


def split_files(folder: Path) -> dict[str, list[Path]]:
    """{split: files} of a data folder, named after the split; the shards of one split
    (train-00000-of-00002, train-00001-of-00002) are read together, none dropped."""
    out: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix in SUFFIXES:
            out.setdefault(p.stem.split("-")[0], []).append(p)
    return out


def _local_files(src: DataSource) -> dict[str, list[Path]] | None:
    root = os.environ.get(DATA_ENV)
    if not root:
        return None
    folder = Path(root).expanduser() / src.task
    if folder.is_dir():
        named = split_files(folder)
        if not named:
            raise UserError(f"data: {folder} holds no .parquet/.jsonl/.json file; {src.how_to_provide()}")
        if len(named) == 1 and not named.keys() & {"train", "test", "validation", "dev"}:
            return {"train": next(iter(named.values()))}
        return named
    for suffix in SUFFIXES:
        single = Path(root).expanduser() / f"{src.task}{suffix}"
        if single.is_file():
            return {"train": [single]}
    return None


def _from_hub(src: DataSource) -> dict[str, list[dict]]:
    import datasets

    try:
        dd = datasets.load_dataset(src.hub_id, src.hub_config)
    except Exception as e:  # offline and not cached, gated, renamed: all the same to the user
        where = f"{DATA_ENV} is not set" if not os.environ.get(DATA_ENV) else \
            f"nothing for it under {os.environ[DATA_ENV]}"
        raise UserError(f"data: task {src.task!r} needs the data set {src.hub_id}, which is neither "
                        f"local ({where}) nor in the datasets cache ({e.__class__.__name__}); "
                        f"{src.how_to_provide()}") from None
    return {name: [dict(r) for r in ds] for name, ds in dd.items()}


def load_rows(src: DataSource, convert) -> tuple[dict[str, list[dict]], str, set[str]]:
    """({split: items}, where they came from, the splits read from local files): every
    row checked and passed through `convert` here, where its file and line are known."""
    files = _local_files(src)
    if files is None:
        parts = {split: [(f"datasets:{src.hub_id}", rows)] for split, rows in _from_hub(src).items()}
    else:
        parts = {split: [(str(p), _nonempty(read_file(p), p)) for p in paths] for split, paths in files.items()}
    items = {split: [it for where, rows in part for it in _convert_rows(src, convert, where, split, rows)]
             for split, part in parts.items()}
    origin = ", ".join(dict.fromkeys(where for part in parts.values() for where, _ in part))
    return items, origin, set(files or ())


def _nonempty(rows: list[dict], path: Path) -> list[dict]:
    """An empty local file is an error, not a split silently carved from train instead."""
    if not rows:
        raise UserError(f"data: {path} holds no rows; fill it or remove it")
    return rows


def _convert_rows(src: DataSource, convert, where: str, split: str, rows: list[dict]) -> list[dict]:
    """Rows -> items; a missing column or a value of the wrong type (a null answer, a
    number that is not one) is a UserError naming the file, split and row, not a
    traceback here or a crash when the item is scored mid-run."""
    out = []
    for i, row in enumerate(rows):
        missing = [c for c in src.columns if c not in row]
        if missing:
            raise UserError(f"data: {where} split {split!r} row {i} lacks column(s) "
                            f"{', '.join(missing)}; task {src.task!r} needs {', '.join(src.columns)}")
        try:
            out.append(convert(row))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"data: {where} split {split!r} row {i}: {e}; fix or drop the row "
                            f"(task {src.task!r} reads {src.hub_id}'s schema)") from None
    return out


def whole_number(v, column: str) -> int:
    """A value of an integer column (an int, or text or a float holding a whole number);
    anything else (null, 24.5, "abc", true) is a ValueError naming the column."""
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    if isinstance(v, float) and v.is_integer() or isinstance(v, int) and not isinstance(v, bool):
        return int(v)
    raise ValueError(f"column {column!r} must be a whole number, got {v!r:.60}")


def text(v, column: str) -> str:
    """A value of a text column; null or a number is a ValueError naming the column."""
    if not isinstance(v, str):
        raise ValueError(f"column {column!r} must be text, got {v!r:.60}")
    return v


class DatasetFamily(TaskFamily):
    """A task family over real rows: the same contract, splits read instead of generated.

    The public split named `test_split` is the test split when present; dev is the
    `dev_split` (e.g. MBPP's validation) or carved from train; a data set with one
    split (Countdown) is carved by a shuffle seeded by (name, version, seed). Items
    whose key is in test or dev are dropped from train, as for generated families.
    """

    source: DataSource
    stop = ()  # full-scale answers span lines: they end at EOS (or the end of the turn)
    chat = True  # written for instruction-tuned models: the prompt goes through the chat template
    test_split: str = "test"
    dev_split: str | None = None
    split_sizes = {"dev": 200, "test": 500}  # carved sizes when the data set has no such split

    def convert(self, row: dict) -> dict:
        """A public row -> an item: at least {"prompt", "target"}. A bad value raises
        ValueError (or TypeError) naming its column: see `whole_number` and `text`."""
        raise NotImplementedError

    def sample(self, rng: random.Random) -> dict:
        raise TypeError(f"task {self.name} reads real data; it has no generator")

    def pretraining_sample(self, rng: random.Random) -> dict:
        raise TypeError(f"task {self.name} is a full-scale task; it is not part of pretraining")

    @cached_property
    def data_origin(self) -> str:
        return self._loaded[1]

    @cached_property
    def _loaded(self):
        return load_rows(self.source, self.convert)

    @cached_property
    def splits(self) -> dict[str, list[dict]]:
        rows, _, local = self._loaded
        self._check_unread(local)
        train = list(rows.get("train", []))
        rng = random.Random(f"{self.name}/v{self.version}/{self.seed}")
        order = list(range(len(train)))
        rng.shuffle(order)
        carved = iter(order)
        take = lambda n: [train[i] for _, i in zip(range(n), carved)]  # noqa: E731
        # a small local copy (tests, quick checks) keeps at least half its rows for training
        quarter = lambda n: min(n, max(1, len(train) // 4))  # noqa: E731
        test = rows.get(self.test_split) or take(quarter(self.split_sizes["test"]))
        dev = (rows.get(self.dev_split) if self.dev_split else None) or take(quarter(self.split_sizes["dev"]))
        rest = [train[i] for i in carved]  # what was not carved, in the seeded order
        out: dict[str, list[dict]] = {}
        seen: set[str] = set()
        for split, part in (("test", test), ("dev", dev), ("train", rest)):
            items = []
            for item in part:
                if self.key(item) in seen:
                    continue
                seen.add(self.key(item))
                items.append({"id": f"{self.name}-{split}-{len(items)}", **item})
            if not items:
                raise UserError(f"data: task {self.name!r} has no {split} items in {self.data_origin}; "
                                f"{self.source.how_to_provide()}")
            out[split] = items
        return {s: out[s] for s in SPLITS}

    def _check_unread(self, local: set[str]) -> None:
        """A local split file the task does not read, while it carves a split from train
        (`tset.jsonl`, gsm8k's `dev.jsonl`), is a UserError: the user's held-out rows would
        silently give way to carved ones."""
        read = {"train", self.test_split, self.dev_split} - {None}
        carves = self.test_split not in local or self.dev_split not in local
        if local and carves and local - read:
            raise UserError(f"data: task {self.name!r} reads the split files {', '.join(sorted(read))} "
                            f"(others are carved from train), not {', '.join(sorted(local - read))}; "
                            f"rename or remove those files under ${DATA_ENV}/{self.source.task}/")

    @cached_property
    def _dataset(self):
        """lm-eval scores dev and test only: no need to build the (large) train split."""
        import datasets

        return datasets.DatasetDict({s: datasets.Dataset.from_list(self.splits[s]) for s in ("dev", "test")})
