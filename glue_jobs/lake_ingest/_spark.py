"""A local SparkSession shaped like a small Glue worker (used off AWS only)."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

#: The HotSpot option that has the JIT compile methods of any size.
COMPILE_HUGE_METHODS = "-XX:-DontCompileHugeMethods"


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
        # HotSpot leaves methods above 8,000 bytes of bytecode to the interpreter unless told to
        # compile them; a wide contract's generated code needs that (see ``huge_methods_compiled``)
        .config("spark.driver.extraJavaOptions", f"-Duser.timezone=UTC {COMPILE_HUGE_METHODS}")
        .config("spark.executor.extraJavaOptions", f"-Duser.timezone=UTC {COMPILE_HUGE_METHODS}")
        .config("spark.sql.warehouse.dir", os.path.join(os.environ.get("TMPDIR", "/tmp"), "lake-spark-warehouse"))
        # Local files without Hadoop's checksum layer: like S3, no ``.crc`` file beside each file
        # written, and raw files whose names hold ':' (a timestamp) can be read.
        .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def huge_methods_compiled(spark: SparkSession) -> bool:
    """Whether the JVMs that run the tasks compile methods above 8,000 bytes of bytecode.

    Only a local session is asked (its driver JVM runs the tasks); on Glue the executors' JVM
    options are Glue's own, so the answer there is no. A JVM that is not HotSpot answers no too.
    """
    jvm = spark.sparkContext._jvm
    if jvm is None or not (spark.sparkContext.master or "").startswith("local"):
        return False
    try:
        bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
            jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean"))
        return str(bean.getVMOption("DontCompileHugeMethods").getValue()) == "false"
    except Exception:  # another JVM, or none reachable: keep the safe limit
        return False
