"""Train a small PyTorch model from a Spark DataFrame, with the training data on disk (DISK_2).

Each Spark task receives its partition through mapInArrow, keeps it in a DISK_2 store (half of it
in memory at a time) and trains a linear model on it for a few epochs; the driver averages the
learned weights. Run: python examples/train_torch_disk.py
"""

import numpy as np

from orca_core import OrcaContext, init_orca_context, stop_orca_context

FEATURES, TRUE_WEIGHTS = 4, [2.0, -1.0, 0.5, 3.0]


def train_partition(batches):
    import pyarrow as pa
    import torch

    from orca_core.data import open_training_data

    torch.manual_seed(0)
    model = torch.nn.Linear(FEATURES, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with open_training_data(batches) as data:  # store=None: the driver's OrcaContext.train_data_store
        loader = torch.utils.data.DataLoader(data.torch_dataset(batch_size=256, seed=0), batch_size=None)
        for _ in range(5):
            for batch in loader:
                features = torch.stack([batch[f"x{i}"] for i in range(FEATURES)], dim=1).float()
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(features).squeeze(1), batch["y"].float())
                loss.backward()
                optimizer.step()
        rows, store = data.num_rows, data.setting
    yield pa.record_batch({
        "store": [store], "rows": [rows], "loss": [loss.item()], "weights": [model.weight.detach()[0].tolist()],
    })


def main():
    OrcaContext.train_data_store = "DISK_2"  # set before init: Spark tasks inherit it
    init_orca_context(cluster_mode="local", cores=2, memory="2g")
    try:
        spark = OrcaContext.get_spark_session()
        target = " + ".join(f"{w} * x{i}" for i, w in enumerate(TRUE_WEIGHTS))
        df = (
            spark.range(0, 40_000, numPartitions=2)
            .selectExpr(*(f"randn({i}) as x{i}" for i in range(FEATURES)))
            .selectExpr("*", f"{target} + 0.1 * randn(42) as y")
        )
        schema = "store string, rows long, loss double, weights array<double>"
        results = df.mapInArrow(train_partition, schema).collect()
    finally:
        stop_orca_context()
    for r in results:
        print(f"task trained on {r.rows} rows in {r.store}: final batch loss {r.loss:.4f}")
    weights = np.mean([r.weights for r in results], axis=0)
    print("learned weights", np.round(weights, 2).tolist(), "true weights", TRUE_WEIGHTS)
    return weights


if __name__ == "__main__":
    main()
