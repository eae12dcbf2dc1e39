"""A local SparkSession shaped like a small Glue worker (used off AWS only)."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession


def local_spark(app_name: str = "lake-ingest", cores: int | None = None, driver_memory: str | None = None,
                shuffle_partitions: int | None = None, progress_bar: bool = False) -> SparkSession:
    """Create (or return) a local session: all cores, UI off, few shuffle partitions.

    ``LAKE_SPARK_DRIVER_MEMORY`` overrides the driver memory (default 4g).
    """
    cores = cores or os.cpu_count() or 2
    memory = driver_memory or os.environ.get("LAKE_SPARK_DRIVER_MEMORY", "4g")
    builder = (
        SparkSession.builder.appName(app_name)
        .master(f"local[{cores}]")
        .config("spark.driver.memory", memory)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or max(4, cores * 2)))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", str(progress_bar).lower())
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.warehouse.dir", os.path.join(os.environ.get("TMPDIR", "/tmp"), "lake-spark-warehouse"))
        # Local files without Hadoop's checksum layer: like S3, no ``.crc`` file beside each file
        # written, and raw files whose names hold ':' (a timestamp) can be read.
        .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
