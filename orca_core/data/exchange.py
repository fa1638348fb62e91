"""Spark DataFrames to Ray Datasets and back, in memory, through the Ray node beside each executor.

    from orca_core.data import ray_to_spark, spark_to_ray

    ds = spark_to_ray(spark.read.csv(path, header=True).where("y > 0"))   # a ray.data.Dataset
    df = ray_to_spark(ds.map_batches(predict))                           # a Spark DataFrame

`spark_to_ray`: each Spark task connects to the Ray node of its own executor (Ray on Spark) or
to the head (local mode), and hands its partition, as Arrow tables of about
`DataContext.target_max_block_size`, to a keeper actor on that node, which puts them into the
node's object store. The keeper owns the blocks, so they outlive the Spark job and its Python
workers; the driver only receives references. `ray_to_spark`: the Dataset is materialized in
Ray; Spark tasks (two per core) fetch its blocks from the object store. No row passes through the driver.
"""

from __future__ import annotations

import os
import threading
import uuid
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orca_core.data.sessions import MADE_HERE, SESSION_KEY, ExchangeError, live_session, session_of
from orca_core.data.sessions import check as check_session
from orca_core.errors import ConfigTypeError, NotRunning

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ExchangeError", "ray_to_spark", "spark_to_ray"]

NAMESPACE = "orca-exchange"
MEMORY_HINT = (
    "raise the Ray nodes' object store (init_orca_context(..., object_store_memory=\"4g\")) or free "
    "disk space in the Ray nodes' temp dir, where Ray spills what does not fit"
)


def spark_to_ray(df) -> Any:
    """The rows of Spark DataFrame `df` as a `ray.data.Dataset`, one or more blocks per partition.

    The Dataset stays valid after the Spark job that made it, until `stop_orca_context()`;
    using it after that raises `ExchangeError`.
    """
    link = _link()
    schema = _arrow_schema_of_spark(df)
    import ray
    import ray.data

    key = uuid.uuid4().hex
    keepers = _keepers(link)
    put = _PutPartition(link, key, ray.data.DataContext.get_current().target_max_block_size)
    try:
        df.mapInArrow(put, "rows long").collect()
        parts: dict[int, list] = {}
        for handle in keepers.values():
            parts.update(ray.get(handle.take.remote(key)))
    except Exception as error:
        for handle in keepers.values():
            handle.discard.remote(key)
        raise _exchange_error("Spark DataFrame -> Ray Dataset", error) from error
    refs = [ref for part in sorted(parts) for ref in parts[part]]
    ds = ray.data.from_arrow_refs(refs) if refs else ray.data.from_arrow(schema.empty_table())
    _guard(ds, link.session)
    return ds


def ray_to_spark(ds, spark=None):
    """A Spark DataFrame of the rows of `ray.data.Dataset` `ds` (materialized in Ray first).

    Spark reads the blocks from Ray's object store whenever it computes the DataFrame; Orca holds
    them while the returned DataFrame object is referenced and the context runs. A DataFrame
    derived from it (`select`, `join`, ...) reads through it: keep the returned one, or `cache()`
    and count it, while you use them. `spark`: the SparkSession (default: the context's).
    """
    import ray.data

    if not isinstance(ds, ray.data.Dataset):
        raise ConfigTypeError(f"ray_to_spark() takes a ray.data.Dataset, got {type(ds).__name__}")
    check_session(ds.context)
    link = _link()
    if spark is None:
        from orca_core import OrcaContext

        spark = OrcaContext.get_spark_session()
    spark_schema, arrow_schema = _spark_schema_of_arrow(_dataset_schema(ds))
    try:
        refs = ds.materialize().to_arrow_refs()
    except Exception as error:
        raise _exchange_error("Ray Dataset -> Spark DataFrame", error) from error
    key = uuid.uuid4().hex
    holder = _keepers(link)[link.driver_node]
    import ray

    ray.get(holder.hold.remote(key, refs))
    n = len(refs)
    tasks = max(1, min(n, 2 * spark.sparkContext.defaultParallelism))  # a task per block costs more than it reads
    df = spark.range(0, n, 1, tasks).mapInArrow(_FetchBlocks(link, key, arrow_schema), spark_schema)
    weakref.finalize(df, _release, link.session, link.driver_node, key)
    return df


# --- the driver side -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Link:
    """What a Spark task needs to reach the Ray node beside it (pickled into the task)."""

    head: str
    token: str
    session: str
    driver_node: str
    nodes: tuple[tuple[str, int, str], ...]  # (ip, executor JVM pid, the node's temp dir)

    def temp_dir_here(self) -> tuple[str, str] | None:
        """(ip, temp dir) of a Ray node of this executor, else of this host; None: use the head."""
        if not self.nodes:
            return None
        from orca_core.engines.ray_node import executor_pid, routable_ip

        ip = routable_ip(self.head)
        here = [n for n in self.nodes if n[0] == ip]
        try:
            pid = executor_pid()
        except RuntimeError:
            pid = None
        mine = [n for n in here if n[1] == pid] or here
        if not mine:
            raise ExchangeError(
                f"this Spark executor's host {ip} runs no Ray node, so its rows cannot enter Ray without "
                "crossing the network: start one Ray node per executor (num_ray_nodes = executors)"
            )
        return ip, mine[0][2]


_state: dict[str, Any] = {}
_state_lock = threading.Lock()


def _link() -> _Link:
    """The running context's Ray head, token and nodes, or an error saying what is missing."""
    from orca_core.state import current

    context = current()
    if context is None:
        raise NotRunning("no Orca context runs: call init_orca_context(..., init_ray_on_spark=True) first")
    if context.ray_context is None:
        raise NotRunning(
            "this Orca context runs no Ray: pass init_ray_on_spark=True to init_orca_context() to exchange "
            "data between Spark and Ray"
        )
    if context.spark is None:
        raise NotRunning("this Orca context runs no Spark (runtime=\"ray\"): start it with runtime=\"spark\"")
    owner = context.ray_context._owner
    head = getattr(owner, "head", owner)
    token = getattr(head, "token", None)
    if not token:
        raise NotRunning(
            "Spark/Ray exchange needs a Ray cluster Orca started (local, or Ray on Spark), not an attached one"
        )
    import ray

    nodes = tuple((n["ip"], n["executor"], n["temp_dir"]) for n in getattr(owner, "nodes", ()) if "temp_dir" in n)
    return _Link(head=head.address, token=token, session=session_of(token),
                 driver_node=ray.get_runtime_context().get_node_id(), nodes=nodes)


def _keepers(link: _Link) -> dict[str, Any]:
    """One keeper actor per alive Ray node of this context (created on first use)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    with _state_lock:
        if _state.get("session") != link.session:
            _state.clear()
            _state.update(session=link.session, keepers={})
        keepers = _state["keepers"]
        alive = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        actor = ray.remote(num_cpus=0, max_concurrency=16)(_Keeper)
        for node in alive:
            if node not in keepers:
                keepers[node] = actor.options(
                    name=f"keeper-{node}", namespace=NAMESPACE, get_if_exists=True,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                ).remote()
        ray.get([keepers[n].ready.remote() for n in alive])
        return {n: keepers[n] for n in alive}


def _release(session: str, node: str, key: str) -> None:
    """Drop the blocks a DataFrame of `ray_to_spark` read (when it is garbage-collected)."""
    with _state_lock:
        keeper = _state.get("keepers", {}).get(node) if _state.get("session") == session else None
    if keeper is not None and live_session() == session:
        try:
            keeper.release.remote(key)
        except Exception:  # Ray is shutting down
            pass


def _guard(ds, session: str) -> None:
    """Make every execution of `ds`, and of Datasets derived from it, check its context runs."""
    from orca_core.data.ray_guard import ContextGuard

    MADE_HERE.add(session)
    context = ds.context
    context.set_config(SESSION_KEY, session)
    if ContextGuard not in context.custom_execution_callback_classes:
        context.custom_execution_callback_classes = [*context.custom_execution_callback_classes, ContextGuard]




def _exchange_error(what: str, error: Exception) -> ExchangeError:
    text = _message(error)
    if any(marker in text for marker in ("ObjectStoreFullError", "OutOfDiskError", "object store is full")):
        return ExchangeError(f"{what}: the Ray object store is full and Ray could not spill: {MEMORY_HINT}. "
                             f"Ray said: {text[:1500]}")
    return ExchangeError(f"{what} failed: {text[:3000]}")


def _message(error: Exception) -> str:
    java = getattr(error, "java_exception", None)
    text = str(java.getMessage()) if java is not None else str(error)
    return text or repr(error)


# --- types -----------------------------------------------------------------------------------


def _arrow_schema_of_spark(df) -> pa.Schema:
    """The Arrow schema Spark gives `df` in mapInArrow; an unsupported column raises, naming it."""
    try:
        from pyspark.sql import DataFrame
    except ImportError as error:  # pragma: no cover - orca-core runs Spark with pyspark
        raise NotRunning("spark_to_ray() needs pyspark") from error
    if not isinstance(df, DataFrame):
        hint = " (ray_to_spark() converts the other way)" if type(df).__module__.startswith("ray.") else ""
        raise ConfigTypeError(f"spark_to_ray() takes a pyspark.sql.DataFrame, got {type(df).__name__}{hint}")
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_type

    fields = []
    for field in df.schema.fields:
        _refuse_udt(field.name, field.dataType)
        try:
            arrow = to_arrow_type(field.dataType, timezone="UTC")
        except Exception as error:
            raise ConfigTypeError(_type_message(field.name, field.dataType.simpleString(), "Spark", "Arrow",
                                                error)) from error
        fields.append(pa.field(field.name, arrow, field.nullable))
    return pa.schema(fields)


def _refuse_udt(name: str, data_type) -> None:
    """User-defined and variant types reach Arrow as their storage structs: refuse them by name."""
    from pyspark.sql.types import ArrayType, MapType, StructType, UserDefinedType, VariantType

    if isinstance(data_type, (UserDefinedType, VariantType)):
        hint = ("pyspark.ml.functions.vector_to_array() turns ML vectors into arrays"
                if isinstance(data_type, UserDefinedType) else "to_json() turns a variant into a string")
        raise ConfigTypeError(
            f'column "{name}" has type {data_type.simpleString()}, which Ray cannot hold as such: {hint}; '
            "convert or drop the column first"
        )
    children = (
        [data_type.elementType] if isinstance(data_type, ArrayType)
        else [data_type.keyType, data_type.valueType] if isinstance(data_type, MapType)
        else [f.dataType for f in data_type.fields] if isinstance(data_type, StructType) else []
    )
    for child in children:
        _refuse_udt(name, child)


def _dataset_schema(ds) -> pa.Schema:
    import pyarrow as pa

    schema = ds.schema()
    base = getattr(schema, "base_schema", schema)
    if isinstance(base, pa.Schema):
        return base
    names, types = schema.names, schema.types
    try:
        return pa.schema([pa.field(n, t if isinstance(t, pa.DataType) else pa.from_numpy_dtype(t))
                          for n, t in zip(names, types, strict=True)])
    except Exception as error:
        raise ConfigTypeError(f"the Dataset's schema {schema} has no Arrow equivalent: {error}") from error


def _spark_schema_of_arrow(schema: pa.Schema):
    """The Spark schema of Arrow `schema` and the Arrow schema Spark expects for it."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_type, to_arrow_type
    from pyspark.sql.types import StructField, StructType

    spark_fields, arrow_fields = [], []
    for field in schema:
        try:
            if isinstance(field.type, pa.ExtensionType):
                raise TypeError(f"{field.type} is an Arrow extension type")
            spark_type = from_arrow_type(field.type)
            arrow_type = to_arrow_type(spark_type, timezone="UTC")
        except Exception as error:
            raise ConfigTypeError(_type_message(field.name, str(field.type), "Arrow", "Spark", error)) from error
        spark_fields.append(StructField(field.name, spark_type, True))
        arrow_fields.append(pa.field(field.name, arrow_type, True))
    return StructType(spark_fields), pa.schema(arrow_fields)


def _type_message(column: str, type_name: str, source: str, target: str, error: Exception) -> str:
    return (
        f'column "{column}" has {source} type {type_name}, which has no {target} equivalent ({error}); cast '
        "the column to a supported type (numbers, strings, binary, booleans, dates, timestamps, decimals, "
        "and arrays, maps and structs of them) or drop it"
    )


# --- what runs in the Spark tasks and on the Ray nodes ---------------------------------------

_connected: dict[str, str] = {}


def _connect(link: _Link) -> None:
    """Connect this Spark Python worker to the Ray node of its executor (once per worker)."""
    import ray

    if ray.is_initialized() and _connected.get("session") == link.session:
        return
    if ray.is_initialized():
        ray.shutdown()
    from orca_core.engines.ray import _reload_auth, auth_env

    os.environ.update(auth_env(link.token))
    _reload_auth()
    here = link.temp_dir_here()
    where = {"_node_ip_address": here[0], "_temp_dir": here[1]} if here else {}
    ray.init(address=link.head, log_to_driver=False, configure_logging=False, **where)
    _connected["session"] = link.session


class _PutPartition:
    """mapInArrow function: put this partition into the keeper of the local Ray node."""

    def __init__(self, link: _Link, key: str, block_bytes: int):
        self.link, self.key, self.block_bytes = link, key, block_bytes

    def __call__(self, batches):
        import pyarrow as pa
        import ray
        from pyspark import TaskContext

        _connect(self.link)
        task = TaskContext.get()
        part, attempt = task.partitionId(), task.attemptNumber()
        keeper = ray.get_actor(f"keeper-{ray.get_runtime_context().get_node_id()}", namespace=NAMESPACE)
        pending, size, rows, calls = [], 0, 0, []

        def flush():
            table = pa.Table.from_batches(pending)
            calls.append(keeper.adopt.remote(self.key, part, attempt, table))
            ray.get(calls[-1])
            pending.clear()

        for batch in batches:
            if batch.num_rows == 0:
                continue
            pending.append(batch)
            size += batch.nbytes
            rows += batch.num_rows
            if size >= self.block_bytes:
                flush()
                size = 0
        if pending:
            flush()
        ray.get(keeper.commit.remote(self.key, part, attempt))
        yield pa.RecordBatch.from_pydict({"rows": [rows]}, schema=pa.schema([("rows", pa.int64())]))


class _FetchBlocks:
    """mapInArrow function over ids: yield the rows of block `id` of a held Dataset."""

    def __init__(self, link: _Link, key: str, schema: pa.Schema):
        self.link, self.key, self.schema = link, key, schema

    def __call__(self, ids):
        import ray

        _connect(self.link)
        holder = ray.get_actor(f"keeper-{self.link.driver_node}", namespace=NAMESPACE)
        for batch in ids:
            for block in batch.column(0).to_pylist():
                found = ray.get(holder.block.remote(self.key, block))
                if not found:
                    raise ExchangeError(
                        "the Ray blocks of this DataFrame were released (the DataFrame ray_to_spark() returned "
                        "was garbage-collected): keep it referenced while DataFrames derived from it are used"
                    )
                table = ray.get(found[0])
                yield from (table if table.schema == self.schema else table.cast(self.schema)).to_batches()


class _Keeper:
    """A Ray actor on one node: owns the blocks Spark tasks put there, and holds blocks Spark reads."""

    def __init__(self):
        self._pending: dict[tuple[str, int, int], list] = {}
        self._done: dict[str, dict[int, list]] = {}
        self._held: dict[str, list] = {}
        self._lock = threading.Lock()

    def ready(self) -> bool:
        return True

    def adopt(self, key: str, part: int, attempt: int, table) -> None:
        import ray

        ref = ray.put(table)  # owned by this actor: outlives the Spark worker that sent it
        with self._lock:
            self._pending.setdefault((key, part, attempt), []).append(ref)

    def commit(self, key: str, part: int, attempt: int) -> None:
        with self._lock:
            self._done.setdefault(key, {})[part] = self._pending.pop((key, part, attempt), [])

    def take(self, key: str) -> dict[int, list]:
        with self._lock:
            self._drop_pending(key)
            return self._done.pop(key, {})

    def discard(self, key: str) -> None:
        with self._lock:
            self._drop_pending(key)
            self._done.pop(key, None)

    def _drop_pending(self, key: str) -> None:
        for pending in [p for p in self._pending if p[0] == key]:
            del self._pending[pending]

    def hold(self, key: str, refs: list) -> None:
        with self._lock:
            self._held[key] = refs

    def block(self, key: str, index: int):
        with self._lock:
            refs = self._held.get(key)
        return [refs[index]] if refs is not None else []

    def release(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)
