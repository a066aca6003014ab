"""SQL over traces on an embedded DuckDB (docs/sql.md): ``exectracer sql`` and ``Trace.sql``.

::

    trace = exectracer.load("out.xtrace")
    trace.sql("SELECT state, sum(end_ns - start_ns) FROM states GROUP BY state")  # a pandas DataFrame

    from exectracer.sql import Database
    db = Database([(t, t.analysis, name) for t, name in ...])           # several traces at once

    from exectracer.sql import read_dataset
    read_dataset("fleet").df("SELECT * FROM traces")                    # a Parquet dataset, in place

DuckDB (and pandas, for DataFrames) are imported only when a database is
opened: ``pip install 'exectracer[sql]'``.
"""

from .database import TABLE_NAMES, Database, QueryError
from .dataset import DatasetError, read_dataset

__all__ = ["TABLE_NAMES", "Database", "DatasetError", "QueryError", "read_dataset"]
