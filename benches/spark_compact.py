"""The same job in Spark (local[2]), as a Glue job would run it: a baseline of `benches/compact.rs`.

Reads every raw object, drops malformed lines, keeps the first copy of each event_id per
(team, dt) by received_at, and writes team/dt-partitioned ZSTD Parquet.

usage: python3 spark_compact.py <lake> <out-dir>
"""

import sys

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

lake, out = sys.argv[1], sys.argv[2]
spark = (
    SparkSession.builder.master("local[2]")
    .config("spark.driver.memory", "4g")
    .config("spark.sql.shuffle.partitions", "8")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.session.timeZone", "UTC")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
context = StructType([StructField(n, StringType()) for n in ["ip", "user_agent", "locale", "app_version"]])
schema = StructType(
    [StructField(n, StringType()) for n in ["event_id", "event_type", "event_time", "received_at", "user_id", "session_id", "source", "team"]]
    + [StructField("schema_version", IntegerType()), StructField("properties", StringType()), StructField("context", context)]
)
raw = (
    spark.read.schema(schema)
    .option("mode", "DROPMALFORMED")
    .option("recursiveFileLookup", "true")
    .json(f"{lake}/raw")
)
rows = (
    raw.withColumn("event_time", F.expr("try_to_timestamp(event_time)"))
    .withColumn("received_at", F.expr("try_to_timestamp(received_at)"))
    .where(
        F.col("event_id").isNotNull()
        & (F.col("event_id") != "")
        & F.col("event_time").isNotNull()
        & F.col("received_at").isNotNull()
        & F.col("event_type").rlike("^[a-z0-9_.:-]{1,64}$")
    )
    .withColumn("dt", F.date_format(F.col("received_at"), "yyyy-MM-dd"))
    .withColumn("rn", F.row_number().over(Window.partitionBy("team", "dt", "event_id").orderBy("received_at")))
    .where(F.col("rn") == 1)
    .select(
        "event_id", "event_type", "event_time", "received_at", "user_id", "session_id", "source",
        "schema_version", "properties",
        F.col("context.ip").alias("context_ip"), F.col("context.user_agent").alias("context_user_agent"),
        F.col("context.locale").alias("context_locale"), F.col("context.app_version").alias("context_app_version"),
        "team", "dt",
    )
)
rows.write.mode("overwrite").option("compression", "zstd").partitionBy("team", "dt").parquet(out)
print(f"spark rows {spark.read.parquet(out).count()}")
