"""Data parallel on one node: N engine replicas (``--data-parallel N``), each of ``--tensor-parallel`` GPUs.

Each replica is its own process, started with ``CUDA_VISIBLE_DEVICES`` set to its slice of the node's GPUs before
torch or vLLM is imported, because vLLM's offline engine cannot run several data-parallel ranks in one process
(``LLM(data_parallel_size=N)`` refuses). Calls go to the replica with the fewest calls in flight; every call's answer
is returned to the call that asked, so the run file is identical to ``--data-parallel 1`` under greedy decoding.
The served alternative is ``vllm serve --data-parallel-size N`` behind ``--backend openai``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import queue as queue_module
import threading
from dataclasses import replace
from typing import Any, Mapping

from harness.errors import HarnessError
from harness.llm import Backend, Generation, GenerationRequest

LOCAL_ENGINES = ("vllm", "hf")
_POLL_S = 0.5


def device_slices(replicas: int, tensor_parallel: int, visible: str | None, gpu_count: int) -> list[dict[str, str]]:
    """The ``CUDA_VISIBLE_DEVICES`` of each replica (empty dicts on a machine without GPUs)."""
    if visible is not None and visible.strip():
        ids = [d.strip() for d in visible.split(",") if d.strip()]
    else:
        ids = [str(i) for i in range(gpu_count)]
    if not ids:
        return [{} for _ in range(replicas)]
    need = replicas * tensor_parallel
    if need > len(ids):
        raise HarnessError(f"--data-parallel {replicas} × --tensor-parallel {tensor_parallel} needs {need} GPUs; this "
                           f"machine shows {len(ids)} ({','.join(ids)}). Lower --data-parallel, or run the cells of a "
                           "sweep on more nodes (harness sweep --ray).")
    return [{"CUDA_VISIBLE_DEVICES": ",".join(ids[i * tensor_parallel:(i + 1) * tensor_parallel])}
            for i in range(replicas)]


def _portable(exc: BaseException) -> BaseException:
    """An exception that survives pickling back to the parent."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return HarnessError(f"{type(exc).__name__}: {exc}")


def _replica_main(index: int, env: Mapping[str, str], name: str, model: str, revision: str | None, execution,
                  engine: Mapping[str, Any], head: str, requests, results) -> None:
    os.environ.update(env)
    try:
        from harness.backends import BACKENDS
        from harness.models import resolve_model_revision

        backend = BACKENDS.get(name)(model, revision, execution, dict(engine), head=head)
        if backend.revision is None:
            backend.revision = resolve_model_revision(model)
        info = {"model_id": backend.model_id, "revision": backend.revision, "describe": backend.describe(),
                "hardware": backend.hardware(), "capabilities": backend.capabilities(),
                "cache_identity": backend.cache_identity()}
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        results.put(("failed", index, _portable(exc)))
        return
    results.put(("ready", index, info))
    try:
        asyncio.run(_serve(backend, requests, results))
    finally:
        backend.close()


async def _serve(backend: Backend, requests, results) -> None:
    loop = asyncio.get_running_loop()
    running: set[asyncio.Task] = set()

    async def answer(call_id: int, request: GenerationRequest) -> None:
        try:
            results.put(("done", call_id, await backend.agenerate(request)))
        except Exception as exc:  # noqa: BLE001 - the caller in the parent gets it
            results.put(("error", call_id, _portable(exc)))

    while True:
        item = await loop.run_in_executor(None, requests.get)
        if item is None:
            break
        task = asyncio.create_task(answer(*item))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.gather(*running)


class DataParallelBackend(Backend):
    """``replicas`` copies of one local engine, each in its own process on its own GPUs."""

    def __init__(self, name: str, model: str, revision: str | None, execution, engine: Mapping[str, Any], *,
                 head: str = "causal-lm", replicas: int):
        import multiprocessing

        from harness.provenance import gpu_info

        if name not in LOCAL_ENGINES:
            raise HarnessError(f"--data-parallel {replicas} applies to the local engines ({', '.join(LOCAL_ENGINES)}); "
                               f"with --backend {name} the server does data parallel: start it with "
                               f"`vllm serve MODEL --data-parallel-size {replicas}` and keep --data-parallel 1.")
        device = str(engine.get("device") or "")
        if ":" in device:
            raise HarnessError(f"--device {device} names one GPU, but --data-parallel {replicas} gives each replica "
                               "its own GPUs; pass --device cuda (or cpu).")
        gpus = gpu_info()
        slices = device_slices(replicas, execution.tensor_parallel, os.environ.get("CUDA_VISIBLE_DEVICES"),
                               gpus["count"] if isinstance(gpus, dict) else 0)
        self.name = name
        self.model_id = model
        self.replicas = replicas
        self.calls_per_replica = [0] * replicas
        self._ctx = multiprocessing.get_context("spawn")  # CUDA and vLLM do not survive fork
        self._results = self._ctx.Queue()
        self._requests = [self._ctx.Queue() for _ in range(replicas)]
        single = replace(execution, data_parallel=1)
        self._procs = [self._ctx.Process(target=_replica_main, name=f"harness-replica-{i}", daemon=True,
                                         args=(i, slices[i], name, model, revision, single, dict(engine), head,
                                               self._requests[i], self._results))
                       for i in range(replicas)]
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future, int]] = {}
        self._in_flight = [0] * replicas
        self._ids = itertools.count()
        self._closed = False
        for proc in self._procs:
            proc.start()
        try:
            self._infos = self._wait_ready()
        except BaseException:
            self.close()
            raise
        first = self._infos[0]
        self.model_id, self.revision = first["model_id"], first["revision"]
        self._reader = threading.Thread(target=self._read, name="harness-replica-reader", daemon=True)
        self._reader.start()

    def _wait_ready(self) -> list[dict[str, Any]]:
        infos: dict[int, dict[str, Any]] = {}
        while len(infos) < self.replicas:
            try:
                kind, index, payload = self._results.get(timeout=_POLL_S)
            except queue_module.Empty:
                dead = [i for i, p in enumerate(self._procs) if i not in infos and not p.is_alive()]
                if dead:
                    raise HarnessError(f"Data-parallel replica {dead[0]} exited (code {self._procs[dead[0]].exitcode}) "
                                       "while loading the model; run with --data-parallel 1 to see its error.")
                continue
            if kind == "failed":
                raise payload
            infos[index] = payload
        return [infos[i] for i in range(self.replicas)]

    # -- calls ---------------------------------------------------------------------------------------------------

    async def agenerate(self, request: GenerationRequest) -> Generation:
        if self._closed:
            raise HarnessError("The data-parallel backend is closed.")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            call_id = next(self._ids)
            replica = min(range(self.replicas), key=lambda i: (self._in_flight[i], i))
            self._in_flight[replica] += 1
            self.calls_per_replica[replica] += 1
            self._pending[call_id] = (loop, future, replica)
        self._requests[replica].put((call_id, request))
        return await future

    def _settle(self, call_id: int, result: Any, failed: bool) -> None:
        with self._lock:
            entry = self._pending.pop(call_id, None)
            if entry is None:
                return
            loop, future, replica = entry
            self._in_flight[replica] -= 1

        def resolve() -> None:
            if not future.done():
                future.set_exception(result) if failed else future.set_result(result)

        loop.call_soon_threadsafe(resolve)

    def _read(self) -> None:
        while not self._closed:
            try:
                kind, call_id, payload = self._results.get(timeout=_POLL_S)
            except queue_module.Empty:
                self._fail_dead_replicas()
                continue
            except (EOFError, OSError):
                return
            self._settle(call_id, payload, failed=(kind == "error"))

    def _fail_dead_replicas(self) -> None:
        for index, proc in enumerate(self._procs):
            if proc.is_alive():
                continue
            with self._lock:
                lost = [cid for cid, (_, _, replica) in self._pending.items() if replica == index]
            for call_id in lost:
                self._settle(call_id, HarnessError(
                    f"Data-parallel replica {index} died (exit code {proc.exitcode}) with calls in flight; finished "
                    "calls are in the model-call cache: run the same command again to resume."), failed=True)

    # -- description ---------------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {**self._infos[0]["describe"], "data_parallel": self.replicas}

    def hardware(self) -> dict[str, Any]:
        first = dict(self._infos[0]["hardware"])
        first["count"] = sum(int(info["hardware"].get("count") or 0) for info in self._infos)
        first["data_parallel"] = self.replicas
        return first

    def capabilities(self) -> frozenset[str]:
        return frozenset.intersection(*(frozenset(info["capabilities"]) for info in self._infos))

    def cache_identity(self) -> str:
        return self._infos[0]["cache_identity"]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for requests in self._requests:
            try:
                requests.put(None)
            except (OSError, ValueError):
                pass
        for proc in self._procs:
            if proc.pid is None:
                continue
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)
        self._fail_dead_replicas()
