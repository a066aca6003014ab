"""SQL over traces on an embedded DuckDB (docs/sql.md): ``exectracer sql`` and ``Trace.sql``.

::

    trace = exectracer.load("out.xtrace")
    trace.sql("SELECT state, sum(end_ns - start_ns) FROM states GROUP BY state")  # a pandas DataFrame

DuckDB (and pandas, for DataFrames) are imported only here, when a query
runs: ``pip install 'exectracer[sql]'``.
"""
