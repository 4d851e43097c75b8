"""``harness sweep SWEEP.yaml``: the leaderboard matrix, one experiment per cell, locally or on a Ray cluster.

A sweep file's keys are ``harness run`` option names::

    base: {first_stage: reasonir-published, backend: vllm}
    matrix:                 # the cross product; each cell = base + one combination
      task: [bright, r2med]
      reranker: [reasonrank, rank1]
      window_size: [20, 10]
    cells:                  # optional extra cells, verbatim
      - {task: bright, reranker: rankzephyr}
    exclude:                # optional: drop combinations
      - {reranker: rank1, window_size: 10}
    resources: {num_gpus: 1}   # optional: what each cell asks a Ray node for [default: from the cell's engine]

A cell is an experiment: its group id is the experiment identity (``harness.runner.plan_experiment``), so a cell
whose records are already in ``--results-dir`` is done and never runs again. Cells run through
``harness.runner.run_experiment`` — in this process, in ``harness run`` subprocesses (``--max-parallel``), or in Ray
tasks that request the cell's GPUs (tensor parallel × data parallel). A Ray worker writes the cell into a private
directory and hands the finished record directories to the driver (through an actor on the driver's node), which
moves them into ``--results-dir`` atomically, so no shared filesystem is needed and a finished cell is never lost
with its node. The placement logic is all here; the runner stays the one place that runs an experiment.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from harness.errors import HarnessError, MissingExtraError
from harness.run_options import ALL_KEYS, build_specs, read_yaml_mapping, unknown_key_error

SWEEP_KEYS = ("base", "matrix", "cells", "exclude", "resources")
RESOURCE_KEYS = ("num_gpus", "num_cpus")
# options a sweep sets for every cell itself (one results tree, the sweep's own progress display)
_SWEEP_OWNED = ("results_dir", "quiet", "save_traces")


@dataclass
class Cell:
    name: str  # the combination that makes this cell, e.g. "task=bright reranker=rank1 window_size=10"
    values: dict[str, Any]  # harness run options (base + combination), without results_dir
    resources: dict[str, float] = field(default_factory=dict)  # explicit Ray resources (the sweep's `resources`)
    group: str = ""
    subsets: tuple[str, ...] = ()
    finished: tuple[str, ...] = ()
    num_gpus: float = 0.0
    num_cpus: float = 1.0
    status: str = "pending"  # pending | partial | done | running | failed | unplaceable
    node: str | None = None
    node_id: str | None = None
    attempts: int = 0
    seconds: float | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status == "done"


# --------------------------------------------------------------------------------------------------------------------
# The sweep file
# --------------------------------------------------------------------------------------------------------------------

def _check_keys(mapping: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = {}
    for key, value in mapping.items():
        name = str(key).replace("-", "_")
        if name not in ALL_KEYS:
            raise unknown_key_error(name, where)
        if name in _SWEEP_OWNED:
            raise HarnessError(f"{where}: {name!r} is set by the sweep for every cell (harness sweep "
                               f"--{name.replace('_', '-')}); remove it from the sweep file.")
        out[name] = value
    return out


def _label(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def load_sweep(path: str | os.PathLike) -> list[Cell]:
    """The cells of a sweep file, in matrix order then the extra cells; an unknown key is a clear error."""
    path = Path(path)
    data = read_yaml_mapping(path, "Sweep file", ", ".join(SWEEP_KEYS))
    for key in data:
        if key not in SWEEP_KEYS:
            raise HarnessError(f"Sweep file {path}: unknown key {key!r}; a sweep has {', '.join(SWEEP_KEYS)} (run "
                               "options go under base:, matrix: or cells:).")
    base = _check_keys(data.get("base") or {}, f"Sweep file {path}, base")
    matrix = data.get("matrix") or {}
    if not isinstance(matrix, dict):
        raise HarnessError(f"Sweep file {path}: matrix must map option names to lists of values.")
    matrix = _check_keys(matrix, f"Sweep file {path}, matrix")
    for key, values in matrix.items():
        if not isinstance(values, list) or not values:
            raise HarnessError(f"Sweep file {path}, matrix: {key!r} must be a non-empty list (got {values!r}); "
                               f"a single value goes under base:.")
    excludes = data.get("exclude") or []
    if not isinstance(excludes, list) or not all(isinstance(e, dict) for e in excludes):
        raise HarnessError(f"Sweep file {path}: exclude must be a list of mappings of option values.")
    excludes = [_check_keys(e, f"Sweep file {path}, exclude") for e in excludes]
    extra = data.get("cells") or []
    if not isinstance(extra, list) or not all(isinstance(c, dict) for c in extra):
        raise HarnessError(f"Sweep file {path}: cells must be a list of mappings of option values.")
    resources = data.get("resources") or {}
    if not isinstance(resources, dict) or any(k not in RESOURCE_KEYS for k in resources) or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in resources.values()):
        raise HarnessError(f"Sweep file {path}: resources must map {' / '.join(RESOURCE_KEYS)} to numbers ≥ 0 "
                           f"(got {resources!r}).")

    cells: list[Cell] = []
    keys = list(matrix)
    for combination in itertools.product(*(matrix[k] for k in keys)) if keys else []:
        chosen = dict(zip(keys, combination))
        if any(all(chosen.get(k, base.get(k)) == v for k, v in e.items()) for e in excludes):
            continue
        cells.append(Cell(" ".join(f"{k}={_label(v)}" for k, v in chosen.items()), {**base, **chosen},
                          dict(resources)))
    for i, entry in enumerate(extra):
        given = _check_keys(entry, f"Sweep file {path}, cells[{i}]")
        cells.append(Cell(" ".join(f"{k}={_label(v)}" for k, v in given.items()), {**base, **given},
                          dict(resources)))
    if not cells:
        raise HarnessError(f"Sweep file {path} has no cells: give a matrix: or cells: (and check exclude:).")
    return cells


# --------------------------------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------------------------------

def _default_gpus(values: Mapping[str, Any], needs_model: bool) -> float:
    """GPUs a cell occupies: TP × DP for local engines on GPUs, none for servers, replays and model-free cells."""
    if not needs_model:
        return 0.0
    from harness.backends import resolve_backend_name

    name, _ = resolve_backend_name(values.get("backend"))
    tp, dp = int(values.get("gpus") or 1), int(values.get("data_parallel") or 1)
    if name == "vllm":
        return float(tp * dp)
    if name == "hf":
        device = str(values.get("device") or (values.get("backend_args") or {}).get("device") or "")
        if device.startswith("cpu"):
            return 0.0
        from harness.provenance import gpu_info

        return float(dp) if device.startswith("cuda") or gpu_info() != "cpu" else 0.0
    return 0.0


def plan_cells(cells: list[Cell], results_dir: str | os.PathLike) -> list[Cell]:
    """Each cell's group id, subsets, finished subsets and resources; duplicates (one experiment twice) merged."""
    from harness.runner import plan_experiment

    planned: dict[str, Cell] = {}
    for cell in cells:
        values = {**cell.values, "results_dir": str(results_dir), "quiet": True}
        try:
            experiment, execution = build_specs(values, f"sweep cell [{cell.name}]")
            plan = plan_experiment(experiment, execution)
        except HarnessError as exc:
            if f"[{cell.name}]" in str(exc):
                raise
            raise HarnessError(f"sweep cell [{cell.name}]: {exc}") from exc
        try:
            cell.group = plan.group
            cell.subsets = tuple(t.subset for t in plan.tasks)
            cell.finished = tuple(plan.finished_subsets())
            needs_model = bool(plan.reranker.needs_model)
        finally:
            plan.reranker.close()
        cell.num_gpus = float(cell.resources.get("num_gpus", _default_gpus(values, needs_model)))
        cell.num_cpus = float(cell.resources.get("num_cpus", 1))
        cell.status = "done" if len(cell.finished) == len(cell.subsets) else ("partial" if cell.finished else
                                                                               "pending")
        if cell.group in planned:  # the same experiment reached twice (e.g. a cells: entry equal to a combination)
            continue
        planned[cell.group] = cell
    return list(planned.values())


# --------------------------------------------------------------------------------------------------------------------
# Display
# --------------------------------------------------------------------------------------------------------------------

def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def cells_table(cells: list[Cell], title: str, started: float | None = None, parallel: int = 1):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("cell", "group", "status", "node", "GPUs", "time"):
        table.add_column(column, overflow="fold")
    for cell in cells:
        status = cell.status
        if status == "partial":
            status = f"partial {len(cell.finished)}/{len(cell.subsets)}"
        elif status == "failed" and cell.error:
            status = f"failed: {cell.error.splitlines()[0][:120]}"
        table.add_row(cell.name, cell.group, status, cell.node or "", f"{cell.num_gpus:g}", _fmt_seconds(cell.seconds))
    if started is not None:
        finished = [c.seconds for c in cells if c.done and c.seconds is not None]
        left = sum(1 for c in cells if c.status in ("pending", "partial", "running"))
        eta = "—" if not finished or not left else _fmt_seconds(sum(finished) / len(finished) * left / max(parallel, 1))
        table.caption = (f"{sum(c.done for c in cells)}/{len(cells)} done · {sum(c.status == 'failed' for c in cells)} "
                         f"failed · elapsed {_fmt_seconds(time.monotonic() - started)} · ETA {eta}")
    return table


class _Display:
    """A live table on a terminal; one line per change otherwise (CI logs, --quiet)."""

    def __init__(self, cells: list[Cell], title: str, quiet: bool, parallel: int):
        from rich.console import Console

        self.cells, self.title, self.parallel = cells, title, parallel
        self.console = Console(stderr=True, soft_wrap=True)
        self.started = time.monotonic()
        self.live = None
        self.quiet = quiet
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()
        if not quiet and self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, refresh_per_second=2, transient=False)

    def _table(self):
        return cells_table(self.cells, self.title, self.started, self.parallel)

    def __enter__(self):
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self) -> None:
        with self._lock:
            if self.live is not None:
                self.live.update(self._table())
                return
            if self.quiet:
                return
            for cell in self.cells:
                state = f"{cell.status} {cell.node or ''}".strip()
                if self._last.get(cell.group) != state:
                    self._last[cell.group] = state
                    extra = f" ({_fmt_seconds(cell.seconds)})" if cell.done and cell.seconds is not None else ""
                    error = f": {cell.error.splitlines()[0]}" if cell.status == "failed" and cell.error else ""
                    self.console.print(f"[{cell.name}] {state}{extra}{error}", highlight=False, markup=False)


# --------------------------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class SweepOutcome:
    cells: list[Cell]
    summary_path: Path | None
    ran: int

    @property
    def failed(self) -> list[Cell]:
        return [c for c in self.cells if c.status in ("failed", "unplaceable")]


def run_cell_here(values: Mapping[str, Any], results_dir: str | os.PathLike) -> str:
    """Run one cell in this process through the runner (what ``harness run`` does); returns its group id."""
    from harness.runner import run_experiment

    experiment, execution = build_specs({**values, "results_dir": str(results_dir), "quiet": True}, "sweep cell")
    outcome = run_experiment(experiment, execution, argv=["harness", "sweep"], log=lambda message: None)
    return outcome.group_id


def _local_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip()]
    from harness.provenance import gpu_info

    info = gpu_info()
    return [str(i) for i in range(info["count"])] if isinstance(info, dict) else []


def run_sweep(cells: list[Cell], results_dir: str | os.PathLike, *, retries: int = 2, max_parallel: int = 1,
              ray_address: str | None = None, quiet: bool = False, name: str = "sweep",
              on_change: Callable[[list[Cell]], None] | None = None) -> SweepOutcome:
    """Run every cell that is not done; returns the cells with their final status and writes the sweep summary."""
    from harness.records import ensure_writable

    if retries < 0 or max_parallel < 1:
        raise HarnessError("--retries must be ≥ 0 and --max-parallel ≥ 1.")
    root = ensure_writable(results_dir)
    todo = [c for c in cells if not c.done]
    if not todo:
        return SweepOutcome(cells, None, 0)
    to_run = len(todo)
    started_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.monotonic()
    parallel = max_parallel if ray_address is None else len(todo)
    with _Display(cells, f"harness sweep {name}", quiet, parallel) as display:
        def changed() -> None:
            display.update()
            if on_change is not None:
                on_change(cells)

        if ray_address is not None:
            _run_on_ray(todo, root, retries, ray_address, changed)
        else:
            gpus = len(_local_gpus())
            for cell in todo:
                if cell.num_gpus > gpus:
                    cell.status = "unplaceable"
                    cell.error = (f"needs {cell.num_gpus:g} GPUs; this machine has {gpus}. Run it on a cluster "
                                  "(--ray ADDRESS) or lower --tensor-parallel / --data-parallel / resources:.")
            placeable = [c for c in todo if c.status != "unplaceable"]
            if max_parallel == 1:
                _run_in_process(placeable, root, retries, changed)
            else:
                _run_in_subprocesses(placeable, root, retries, max_parallel, changed)
        changed()
    summary = _write_summary(cells, root, name, started_utc, time.monotonic() - t0,
                             "ray" if ray_address is not None else "local")
    return SweepOutcome(cells, summary, to_run)


def _run_in_process(todo: list[Cell], root: Path, retries: int, changed: Callable[[], None]) -> None:
    import socket

    for cell in todo:
        for attempt in range(retries + 1):
            cell.status, cell.node, cell.attempts = "running", socket.gethostname(), cell.attempts + 1
            changed()
            start = time.monotonic()
            try:
                run_cell_here(cell.values, root)
            except KeyboardInterrupt:
                cell.status = "pending"
                raise
            except Exception as exc:  # noqa: BLE001 - one failed cell must not stop the sweep
                cell.status, cell.error = "failed", _message(exc)
                continue
            finally:
                cell.seconds = time.monotonic() - start
            cell.status, cell.error = "done", None
            break
        changed()


def _run_in_subprocesses(todo: list[Cell], root: Path, retries: int, max_parallel: int,
                         changed: Callable[[], None]) -> None:
    """``harness run --config CELL.yaml`` per cell, up to ``max_parallel`` at once, each on its own GPUs."""
    import yaml

    free = _local_gpus()
    has_gpus = bool(free)  # a machine without GPUs runs CPU cells side by side; with GPUs a cell waits for its own
    queue = [c for c in todo if c.status != "unplaceable"]
    running: list[tuple[Cell, subprocess.Popen, list[str], float, Path]] = []
    work = Path(tempfile.mkdtemp(prefix=".sweep-", dir=root))
    try:
        while queue or running:
            for entry in list(running):
                cell, proc, gpus, start, log_path = entry
                if proc.poll() is None:
                    continue
                running.remove(entry)
                free.extend(gpus)
                cell.seconds = time.monotonic() - start
                if proc.returncode in (0, 1):  # 1: finished but degenerate (records written and flagged)
                    cell.status, cell.error = "done", None
                elif cell.attempts <= retries:
                    cell.status = "pending"
                    queue.append(cell)
                else:
                    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
                    cell.status, cell.error = "failed", (tail[-1] if tail else f"exit code {proc.returncode}")
                changed()
            while queue and len(running) < max_parallel:
                cell = next((c for c in queue if not has_gpus or c.num_gpus <= len(free)), None)
                if cell is None:
                    break
                queue.remove(cell)
                gpus = [free.pop(0) for _ in range(int(cell.num_gpus))] if has_gpus else []
                config = work / f"{cell.group}-{cell.attempts}.yaml"
                config.write_text(yaml.safe_dump({**cell.values, "results_dir": str(root)}), encoding="utf-8")
                env = dict(os.environ)
                if gpus:
                    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
                log_path = work / f"{cell.group}-{cell.attempts}.log"
                with open(log_path, "w", encoding="utf-8") as log:
                    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "--config", str(config),
                                             "--quiet"], stdout=log, stderr=subprocess.STDOUT, env=env)
                cell.status, cell.node, cell.attempts = "running", "local" + (f" GPU {','.join(gpus)}" if gpus else
                                                                              ""), cell.attempts + 1
                running.append((cell, proc, gpus, time.monotonic(), log_path))
                changed()
            time.sleep(0.2)
    finally:
        for _, proc, *_ in running:
            proc.terminate()
        shutil.rmtree(work, ignore_errors=True)


def _message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


# -- Ray --------------------------------------------------------------------------------------------------------------

def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError("ray", "ray", "harness sweep --ray") from exc
    return ray


def pack_group(group_dir: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(group_dir, arcname=group_dir.name)
    return buffer.getvalue()


def unpack_group(payload: bytes, root: Path) -> Path:
    """Move a worker's record directories into ``root/<group>`` (each subset and the aggregate atomically)."""
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
            tar.extractall(staging, filter="data")
        [group_src] = [p for p in staging.iterdir() if p.is_dir()]
        target = root / group_src.name
        target.mkdir(exist_ok=True)
        for item in sorted(group_src.iterdir()):
            dest = target / item.name
            if item.is_dir():
                if dest.exists():
                    old = dest.with_name(f".replaced-{uuid.uuid4().hex[:8]}-{dest.name}")
                    os.replace(dest, old)
                    os.replace(item, dest)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.replace(item, dest)
        for item in sorted(group_src.iterdir()):  # the aggregate record last: it describes the subsets above
            if item.is_file():
                os.replace(item, target / item.name)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_RAY_DEFS: dict[str, Any] = {}


def _ray_defs(ray):
    """The Ray actor and task of a sweep, defined once per process (Ray pickles them by reference)."""
    if _RAY_DEFS:
        return _RAY_DEFS["ledger"], _RAY_DEFS["cell"]

    @ray.remote(num_cpus=0)
    class Ledger:
        """Lives on the driver's node: who runs what, and the finished cells' record directories."""

        def __init__(self):
            self.starts: dict[str, list[str]] = {}
            self.running: dict[str, str] = {}
            self.payloads: dict[str, bytes] = {}

        def start(self, group: str, node: str) -> bool:
            if group in self.payloads:  # finished already: a retry after the node died on the way back
                return False
            self.starts.setdefault(group, []).append(node)
            self.running[group] = node
            return True

        def finish(self, group: str, payload: bytes) -> None:
            self.payloads[group] = payload
            self.running.pop(group, None)

        def state(self) -> dict[str, Any]:
            return {"running": dict(self.running), "starts": {k: list(v) for k, v in self.starts.items()}}

        def take(self, group: str) -> bytes | None:
            return self.payloads.pop(group, None)

    def cell_task(values: dict[str, Any], group: str, ledger) -> str:
        node = ray.get_runtime_context().get_node_id()
        if not ray.get(ledger.start.remote(group, node)):
            return "already finished"
        with tempfile.TemporaryDirectory(prefix="harness-cell-") as tmp:
            got = run_cell_here(values, tmp)
            if got != group:
                raise HarnessError(f"the worker resolved this cell to group {got}, the driver to {group}: the worker's "
                                   "harness, data or models differ from the driver's.")
            ray.get(ledger.finish.remote(group, pack_group(Path(tmp) / group)))
        return "ran"

    _RAY_DEFS["ledger"], _RAY_DEFS["cell"] = Ledger, ray.remote(cell_task)
    return _RAY_DEFS["ledger"], _RAY_DEFS["cell"]


def _check_reachable(address: str) -> None:
    """A ``HOST:PORT`` head that does not answer fails at once (Ray itself retries for minutes)."""
    import socket

    if address in ("auto", "local") or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except (OSError, ValueError) as exc:
        raise HarnessError(f"--ray {address}: nothing answers there ({exc}). Start the head with `ray start --head "
                           "--port PORT` (workers: `ray start --address HEAD:PORT`), or use --ray local for a "
                           "one-machine Ray.") from exc


def _node_names(ray) -> dict[str, str]:
    names = {}
    for node in ray.nodes():
        gpus = node.get("Resources", {}).get("GPU", 0)
        names[node["NodeID"]] = f"{node.get('NodeManagerAddress', '?')}:{node['NodeID'][:6]} ({gpus:g} GPU)"
    return names


def _run_on_ray(todo: list[Cell], root: Path, retries: int, address: str, changed: Callable[[], None]) -> None:
    ray = _import_ray()
    if not ray.is_initialized():
        _check_reachable(address)
        try:
            ray.init(address=None if address == "local" else address, include_dashboard=False,
                     logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise HarnessError(f"--ray {address}: no Ray cluster to join ({exc}). Start one with `ray start --head` "
                               "(and `ray start --address HEAD:6379` on each worker), or use --ray local for a "
                               "one-machine Ray.") from exc
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    alive = [n for n in ray.nodes() if n.get("Alive")]
    biggest_gpu = max((n.get("Resources", {}).get("GPU", 0) for n in alive), default=0)
    biggest_cpu = max((n.get("Resources", {}).get("CPU", 0) for n in alive), default=0)
    for cell in todo:
        if cell.num_gpus > biggest_gpu or cell.num_cpus > biggest_cpu:
            cell.status = "unplaceable"
            cell.error = (f"needs {cell.num_gpus:g} GPUs and {cell.num_cpus:g} CPUs on one node; the largest node of "
                          f"this cluster has {biggest_gpu:g} GPUs and {biggest_cpu:g} CPUs (add a bigger node or "
                          "lower --tensor-parallel / --data-parallel / resources:).")
    changed()
    Ledger, cell_task = _ray_defs(ray)
    here = ray.get_runtime_context().get_node_id()
    ledger = Ledger.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False)).remote()
    refs = {}
    for cell in todo:
        if cell.status == "unplaceable":
            continue
        ref = cell_task.options(num_gpus=cell.num_gpus, num_cpus=cell.num_cpus, max_retries=retries,
                                retry_exceptions=True).remote(cell.values, cell.group, ledger)
        refs[ref] = cell
    names = _node_names(ray)
    starts: dict[str, float] = {}
    while refs:
        ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
        state = ray.get(ledger.state.remote())
        for cell in refs.values():
            node = state["running"].get(cell.group)
            if node is not None:
                if node not in names:
                    names = _node_names(ray)
                cell.status, cell.node, cell.node_id = "running", names.get(node, node[:8]), node
                cell.attempts = len(state["starts"].get(cell.group, []))
                starts.setdefault(cell.group, time.monotonic())
        for ref in ready:
            cell = refs.pop(ref)
            cell.attempts = len(state["starts"].get(cell.group, []))
            try:
                ray.get(ref)
                payload = ray.get(ledger.take.remote(cell.group))
                if payload is None:
                    raise HarnessError("the worker finished but its records did not reach the driver")
                unpack_group(payload, root)
                cell.status, cell.error = "done", None
            except Exception as exc:  # noqa: BLE001 - a failed cell is reported, the others go on
                cause = getattr(exc, "cause", None)
                cell.status, cell.error = "failed", _message(cause if cause is not None else exc)
            cell.seconds = time.monotonic() - starts.get(cell.group, time.monotonic())
        changed()
    attempts = ray.get(ledger.state.remote())["starts"]
    for cell in todo:
        cell.attempts = len(attempts.get(cell.group, [])) or cell.attempts
    ray.kill(ledger)


def _write_summary(cells: list[Cell], root: Path, name: str, started_utc: str, seconds: float, where: str) -> Path:
    from harness.files import atomic_write_text

    gpu_hours = sum((c.seconds or 0.0) * c.num_gpus for c in cells if c.seconds is not None) / 3600
    summary = {
        "sweep": name, "started_utc": started_utc, "seconds": round(seconds, 2), "execution": where,
        "gpu_hours": round(gpu_hours, 4),
        "cells": [{"cell": c.name, "group_id": c.group, "status": c.status, "node": c.node, "attempts": c.attempts,
                   "seconds": None if c.seconds is None else round(c.seconds, 2), "num_gpus": c.num_gpus,
                   "subsets": list(c.subsets), "error": c.error, "options": c.values} for c in cells],
    }
    path = root / f"sweep-{name}.json"
    atomic_write_text(path, json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    return path


__all__ = ["Cell", "SweepOutcome", "cells_table", "load_sweep", "pack_group", "plan_cells", "run_cell_here",
           "run_sweep", "unpack_group"]
