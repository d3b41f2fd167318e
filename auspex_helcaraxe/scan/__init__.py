"""PDB-scale surveys: ``helcaraxe scan`` over many data sets, resumable, parallel, optionally on Dask.

- :func:`run_scan` analyses files, directories and list files into a SQLite results store;
- :func:`export_parquet` writes the store as Parquet tables for analysis;
- :func:`summary` draws the survey figures (fraction iced, ranges hit, fraction iced per year).
"""

from .discovery import discover, entry_id
from .runner import ScanReport, run_scan
from .store import ScanConfig, Store, export_parquet
from .summary import summary

__all__ = ["run_scan", "ScanReport", "export_parquet", "summary", "discover", "entry_id", "Store", "ScanConfig"]
