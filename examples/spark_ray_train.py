"""Spark prepares a CSV, Ray trains on it with 2 TorchTrainer workers, predictions return to Spark.

    python examples/spark_ray_train.py data.csv [--no-barrier]

On a local-cluster Ray-on-Spark context (two executors, one Ray node each); the rows move
between Spark and Ray through the object stores of those nodes, never through files.
"""

from __future__ import annotations

import sys


def train_loop(config):
    import ray.train
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    model = ray.train.torch.prepare_model(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    shard = ray.train.get_dataset_shard("train")
    for _ in range(config["epochs"]):
        for batch in shard.iter_torch_batches(batch_size=32, dtypes=torch.float32):
            x = torch.stack([batch["x1"], batch["x2"]], dim=1)
            loss = torch.nn.functional.mse_loss(model(x).squeeze(1), batch["y"])
            opt.zero_grad()
            loss.backward()
            opt.step()
    import json
    import os
    import tempfile

    weights = (model.module if hasattr(model, "module") else model).state_dict()
    result = {"loss": float(loss), "w": weights["weight"].tolist()[0], "b": float(weights["bias"][0])}
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "model.json"), "w") as out:
            json.dump(result, out)
        checkpoint = ray.train.Checkpoint.from_directory(folder) if ray.train.get_context().get_world_rank() == 0 else None
        ray.train.report(result, checkpoint=checkpoint)


def main(path: str, barrier: bool = True):
    import json
    import os

    import numpy as np
    from pyspark.sql import functions as F
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from orca_core import OrcaContext, init_orca_context, stop_orca_context
    from orca_core.data import ray_to_spark, spark_to_ray

    OrcaContext.barrier_mode = barrier
    init_orca_context(cluster_mode="local", cores=1, memory="1g", conf={"spark.master": "local-cluster[2,1,1024]"},
                      init_ray_on_spark=True, include_webui=False)
    try:
        spark = OrcaContext.get_spark_session()
        rows = (spark.read.csv(path, header=True, inferSchema=True)
                .where(F.col("x1").isNotNull())
                .select(F.col("x1").cast("float"), F.col("x2").cast("float"),
                        (3 * F.col("x1") - 2 * F.col("x2") + 1).cast("float").alias("y")))
        ds = spark_to_ray(rows)
        trainer = TorchTrainer(train_loop, train_loop_config={"epochs": 40}, datasets={"train": ds},
                               scaling_config=ScalingConfig(num_workers=2, use_gpu=False),
                               run_config=RunConfig(storage_path=_storage()))
        with trainer.fit().checkpoint.as_directory() as folder:
            metrics = json.load(open(os.path.join(folder, "model.json")))
        w, b = np.array(metrics["w"], dtype=np.float32), np.float32(metrics["b"])

        def predict(batch):
            batch["prediction"] = batch["x1"] * w[0] + batch["x2"] * w[1] + b
            return batch

        predictions = ray_to_spark(ds.map_batches(predict, batch_format="numpy"))
        error = predictions.select(F.max(F.abs(F.col("prediction") - F.col("y")))).first()[0]
        return {"rows": predictions.count(), "max_error": float(error), "loss": metrics["loss"]}
    finally:
        stop_orca_context()


def _storage() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="orca-train-")


if __name__ == "__main__":
    print(main(sys.argv[1], barrier="--no-barrier" not in sys.argv))
