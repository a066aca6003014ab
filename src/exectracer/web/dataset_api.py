"""The viewer of a Parquet dataset (``exectracer view DIR``): its Query page only, over the dataset's tables.

A dataset holds tables, not a trace: the timeline and the other pages need
a trace file. ``/api/info`` says what the directory is (``dataset: true``,
its tables, its schema version); ``/api/sql`` runs the page's queries,
read-only, reading no file outside the dataset's directory (see
:mod:`exectracer.web.query`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..sql.dataset import read_schema
from .query import QueryAPI

Params = dict[str, str]


class DatasetAPI:
    """Answers the viewer's requests about the dataset in ``directory``; the database is opened here, so that a
    directory DuckDB cannot read as a dataset is refused before the viewer starts (ValueError, one line)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.schema = read_schema(directory)
        self.query = QueryAPI(directory)
        self.query.open()
        self.routes: dict[str, Callable[[Params], Any]] = {"/api/info": self.info, "/api/sql": self.sql}

    def info(self, p: Params) -> dict[str, Any]:
        return {
            "name": os.path.basename(os.path.normpath(self.directory)) or self.directory,
            "dataset": True,
            "schema_version": self.schema["schema_version"],
            "tables": list(self.schema["tables"]),
            "warnings": [],
        }

    def sql(self, p: Params) -> dict[str, Any]:
        return self.query.run(p.get("q", ""))
