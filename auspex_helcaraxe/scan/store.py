"""The survey results store: one SQLite file (WAL mode, no server), written by one process.

Tables:

- ``datasets``: one row per data set and configuration (file, content sha256, networks, detectors,
  verdict, flagged ranges, size, resolution, status ``ok``/``failed``, error, timings), unique on
  ``(sha256, config)``; a data set is written with its ranges in one transaction, so a killed scan
  leaves whole data sets or nothing.
- ``ranges``: one row per (data set, detector, observable, range): index, d_max, d_min, status,
  value (Helcaraxe probability or Icefinder score), flagged.
- ``configs``: what a configuration key stands for (detectors, network sha256s and card settings,
  threshold, cutoff).
- ``file_stats``: path, size and mtime → sha256, so that a resumed scan skips finished files without
  reading them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .. import __version__
from ..errors import InputError
from .discovery import entry_id

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS configs (
    config TEXT PRIMARY KEY,
    detectors TEXT NOT NULL,
    networks TEXT NOT NULL,
    threshold REAL,
    icefinder_cutoff REAL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY,
    file TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    sha256 TEXT,
    size INTEGER,
    config TEXT NOT NULL REFERENCES configs(config),
    detectors TEXT NOT NULL,
    network_I TEXT, network_I_sha256 TEXT,
    network_F TEXT, network_F_sha256 TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT,
    iced INTEGER,
    flagged_ranges TEXT,
    n_reflections INTEGER,
    d_min REAL,
    space_group TEXT,
    observables TEXT,
    t_hash REAL, t_read REAL, t_helcaraxe REAL, t_icefinder REAL, t_total REAL,
    timings TEXT,
    worker TEXT,
    version TEXT NOT NULL,
    finished TEXT NOT NULL,
    UNIQUE (sha256, config)
);
CREATE INDEX IF NOT EXISTS datasets_config ON datasets (config, status);
CREATE INDEX IF NOT EXISTS datasets_file ON datasets (file);
CREATE TABLE IF NOT EXISTS ranges (
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    detector TEXT NOT NULL,
    observable TEXT NOT NULL,
    range_index INTEGER NOT NULL,
    d_max REAL NOT NULL,
    d_min REAL NOT NULL,
    status TEXT NOT NULL,
    value REAL,
    flagged INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, detector, observable, range_index)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS file_stats (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
"""

DATASET_COLUMNS = (
    "file", "entry_id", "sha256", "size", "config", "detectors", "network_I", "network_I_sha256", "network_F",
    "network_F_sha256", "status", "error", "iced", "flagged_ranges", "n_reflections", "d_min", "space_group",
    "observables", "t_hash", "t_read", "t_helcaraxe", "t_icefinder", "t_total", "timings", "worker", "version",
    "finished",
)


@dataclass(frozen=True)
class ScanConfig:
    """What makes results comparable: the detectors, the networks (sha256 per observable) and the
    decision settings. Its :attr:`key` is part of every data set's unique key."""

    detectors: tuple[str, ...]
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # observable -> name, version, sha256, card settings
    threshold: float | None = None
    icefinder_cutoff: float | None = None
    combiner: str | None = None  # sha256 of the joint I+F combiner card in force (None: no joint rule)

    def as_dict(self) -> dict[str, Any]:
        return {
            "detectors": list(self.detectors),
            "networks": {k: self.networks[k] for k in sorted(self.networks)},
            "threshold": self.threshold,
            "icefinder_cutoff": self.icefinder_cutoff,
            "combiner": self.combiner,
        }

    @property
    def key(self) -> str:
        # a network's decisions depend on its file and on its card's threshold, control windows and
        # pair rule; defaults are left out so that keys made before those existed stay valid
        canonical = {**self.as_dict(), "networks": {
            k: [v.get("sha256"), v.get("threshold"), v.get("control_baseline")]
            + ([v["control_aggregate"]] if v.get("control_aggregate", "mean") != "mean" else [])
            + ([v["pair_threshold"]] if v.get("pair_threshold") is not None else [])
            + ([v["pair_steps"]] if v.get("pair_steps") is not None else [])
            for k, v in sorted(self.networks.items())}}
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:16]


def _flagged_text(flagged) -> str | None:
    return None if flagged is None else ",".join(str(i) for i in flagged)


class Store:
    """The SQLite results store at ``path`` (created on first use). Use from one process only."""

    def __init__(self, path: str | os.PathLike, timeout: float = 60.0):
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.executescript(SCHEMA)
            self.conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: not a usable results store ({exc})") from None
        version = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        if int(version) != SCHEMA_VERSION:
            raise InputError(f"{self.path}: results store schema {version}, this version reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- configuration and resume ---------------------------------------------------------------
    def register(self, config: ScanConfig) -> str:
        d = config.as_dict()
        self.conn.execute(
            "INSERT OR IGNORE INTO configs VALUES (?, ?, ?, ?, ?, ?)",
            (config.key, ",".join(config.detectors), json.dumps(d["networks"], sort_keys=True),
             config.threshold, config.icefinder_cutoff, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        )
        return config.key

    def done(self, config: str) -> set[str]:
        """Content sha256s already finished (ok or failed) under ``config``."""
        rows = self.conn.execute("SELECT sha256 FROM datasets WHERE config=? AND sha256 IS NOT NULL", (config,))
        return {r[0] for r in rows}

    def known_files(self) -> dict[str, tuple[int, int, str]]:
        """path → (size, mtime_ns, sha256) of every file hashed before."""
        return {p: (s, m, h) for p, s, m, h in self.conn.execute("SELECT path, size, mtime_ns, sha256 FROM file_stats")}

    def forget_failed(self, config: str) -> int:
        """Delete the failed data sets of ``config`` (to retry them); returns how many."""
        cur = self.conn.execute("DELETE FROM datasets WHERE config=? AND status='failed'", (config,))
        return cur.rowcount

    # -- writing -----------------------------------------------------------------------------------
    def write(self, record: dict[str, Any], config: ScanConfig) -> bool:
        """Store one worker record (see ``worker.analyse_file``) with its ranges in one transaction.

        Returns False (and writes nothing) when a data set with the same content is already stored
        under this configuration.
        """
        key = config.key
        nets = dict(config.networks)
        for r in record["results"]:
            if r.get("network"):
                nets[r["observable"]] = r["network"]
        helcaraxe = "helcaraxe" in config.detectors
        t = record["timings"]

        def net(kind: str, item: str) -> str | None:
            n = nets.get(kind) if helcaraxe else None
            if not n:
                return None
            return n.get("sha256") if item == "sha256" else f"{n.get('name')} {n.get('version')}"

        row = (
            record["file"], entry_id(record["file"]), record["sha256"], record["size"], key,
            ",".join(config.detectors), net("I", "name"), net("I", "sha256"), net("F", "name"), net("F", "sha256"),
            record["status"], record["error"], None if record["iced"] is None else int(record["iced"]),
            _flagged_text(record["flagged_ranges"]), record["n_reflections"], record["d_min"],
            record["space_group"], record["observables"], t.get("hash"), t.get("read"), t.get("helcaraxe"),
            t.get("icefinder"), t.get("total"), json.dumps(t, sort_keys=True), record["worker"], __version__,
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if record["sha256"] is None:  # unreadable file: keep only its latest failure
                conn.execute("DELETE FROM datasets WHERE file=? AND config=? AND sha256 IS NULL", (record["file"], key))
            cur = conn.execute(
                f"INSERT INTO datasets ({', '.join(DATASET_COLUMNS)}) VALUES ({', '.join('?' * len(DATASET_COLUMNS))}) "
                "ON CONFLICT (sha256, config) DO NOTHING",
                row,
            )
            written = cur.rowcount == 1
            if written:
                dataset_id = cur.lastrowid
                conn.executemany(
                    "INSERT INTO ranges VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (dataset_id, r["detector"], r["observable"], idx, d_max, d_min, status, value, int(flagged))
                        for r in record["results"]
                        for idx, d_max, d_min, status, value, flagged in r["ranges"]
                    ],
                )
            if record["sha256"] is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO file_stats VALUES (?, ?, ?, ?)",
                    (record["file"], record["size"], record["mtime_ns"], record["sha256"]),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return written

    # -- reading -----------------------------------------------------------------------------------
    def failures(self, config: str | None = None) -> list[tuple[str, str]]:
        """(file, one-line reason) of every failed data set (of ``config``, or all)."""
        sql = "SELECT file, error FROM datasets WHERE status='failed'"
        args: tuple = ()
        if config is not None:
            sql += " AND config=?"
            args = (config,)
        return [(f, e or "") for f, e in self.conn.execute(sql + " ORDER BY file", args)]

    def latest_config(self) -> str | None:
        """The configuration of the most recently finished data set."""
        row = self.conn.execute("SELECT config FROM datasets ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def flagged_by_observable(self, config: str) -> list[tuple]:
        """(detector, observable, data sets assessed, data sets flagged) over analysed data sets."""
        return self.query(
            "SELECT r.detector, r.observable, COUNT(DISTINCT r.dataset_id), "
            "COUNT(DISTINCT CASE WHEN r.flagged THEN r.dataset_id END) "
            "FROM ranges r JOIN datasets d ON d.id = r.dataset_id "
            "WHERE d.config=? AND d.status='ok' AND r.value IS NOT NULL "
            "GROUP BY r.detector, r.observable ORDER BY r.detector, r.observable", (config,)).fetchall()

    def flagged_by_range(self, config: str) -> list[tuple]:
        """(detector, range, d_max, d_min, data sets assessed, data sets flagged) per ice range."""
        return self.query(
            "SELECT r.detector, r.range_index, MIN(r.d_max), MIN(r.d_min), COUNT(DISTINCT r.dataset_id), "
            "COUNT(DISTINCT CASE WHEN r.flagged THEN r.dataset_id END) "
            "FROM ranges r JOIN datasets d ON d.id = r.dataset_id "
            "WHERE d.config=? AND d.status='ok' AND r.value IS NOT NULL "
            "GROUP BY r.detector, r.range_index ORDER BY r.detector, r.range_index", (config,)).fetchall()

    def query(self, sql: str, args: tuple = ()) -> Iterator[tuple]:
        return self.conn.execute(sql, args)


def export_parquet(db: str | os.PathLike, out: str | os.PathLike, batch_rows: int = 200_000) -> list[Path]:
    """Write ``datasets.parquet`` and ``ranges.parquet`` (ranges joined with file, sha256 and config)
    from the store ``db`` into the directory ``out``; returns the paths. Needs ``pyarrow``."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("Parquet export needs pyarrow: pip install 'auspex-helcaraxe[parquet]'") from None
    if not Path(db).is_file():
        raise InputError(f"{db}: no such results store")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    queries = {
        "datasets": "SELECT id, " + ", ".join(DATASET_COLUMNS) + " FROM datasets ORDER BY id",
        "ranges": "SELECT r.dataset_id, d.file, d.entry_id, d.sha256, d.config, r.detector, r.observable, "
                  "r.range_index, r.d_max, r.d_min, r.status, r.value, r.flagged "
                  "FROM ranges r JOIN datasets d ON d.id = r.dataset_id ORDER BY r.dataset_id, r.detector, "
                  "r.observable, r.range_index",
    }
    types = {
        "id": pa.int64(), "dataset_id": pa.int64(), "size": pa.int64(), "n_reflections": pa.int64(),
        "range_index": pa.int16(), "iced": pa.bool_(), "flagged": pa.bool_(),
        "d_min": pa.float64(), "d_max": pa.float64(), "value": pa.float64(),
    }
    written = []
    with Store(db) as store:
        for name, sql in queries.items():
            cur = store.conn.execute(sql)
            cols = [c[0] for c in cur.description]
            schema = pa.schema([(c, types.get(c, pa.float64() if c.startswith("t_") else pa.string())) for c in cols])
            path = out / f"{name}.parquet"
            with pq.ParquetWriter(path, schema) as writer:
                first = True
                while True:
                    rows = cur.fetchmany(batch_rows)
                    if not rows and not first:
                        break
                    first = False
                    columns = list(zip(*rows)) if rows else [()] * len(cols)
                    arrays = {}
                    for c, values in zip(cols, columns):
                        kind = schema.field(c).type
                        if kind == pa.bool_():
                            values = [None if v is None else bool(v) for v in values]
                        arrays[c] = pa.array(values, type=kind)
                    writer.write_table(pa.table(arrays, schema=schema))
                    if not rows:
                        break
            written.append(path)
    return written

