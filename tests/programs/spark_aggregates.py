"""Run SQL queries with Apache Spark (local mode, no configuration of ours) over an exectracer Parquet dataset.

``python spark_aggregates.py DATASET QUERY...`` prints one JSON object: the
column types Spark gives the ``states`` table, and each query's rows. Run as a
process of its own, so that Spark's JVM and its threads end with it.
"""

from __future__ import annotations

import json
import sys
import warnings

from pyspark.sql import SparkSession


def main(dataset: str, queries: list[str]) -> None:
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("exectracer-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    try:
        for table in ("states", "frames"):
            spark.read.parquet(f"{dataset}/table={table}").createOrReplaceTempView(table)
        types = dict(spark.table("states").dtypes)
        results = [[list(row) for row in spark.sql(query).collect()] for query in queries]
    finally:
        spark.stop()
    print(json.dumps({"types": types, "results": results}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
