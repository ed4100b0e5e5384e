"""Many LoRA adapter versions on one loaded base model, each row of a batch on its own adapter.

A LoRA adapter changes each adapted projection from `W x` to `W x + s (x A) B` with a rank r
far below the layer's width. Loading an adapter as a full copy of its base multiplies memory by
the number of versions and decodes each as a batch of its own. Here an adapter is only its A
and B matrices (`Adapter`, read by `read_adapter` off the engine thread); `Router.attach` puts a
`RoutedLoRALinear` in place of each base projection that some attached adapter adapts; and
before every model call the batch says which adapter each of its rows uses
(`Router.route`). The base projection then runs once for the whole batch and each row adds its
own low-rank term; rows on the base add nothing, so they decode exactly as without adapters.

Three ways to add the per-row terms, chosen by `Router.mode`. `STACK` (the default) keeps the A
of every attached adapter side by side (in, n*r) and their B one under another (n*r, out), per
group of layers that read the same input (q/k/v, gate/up): a `Pack`, built when an adapter
attaches or detaches, which is the adapters' storage, not a copy of it: each adapter's matrices
are views into it (its columns of A, its rows of B), so base + adapters hold every matrix once,
also while a batch mixes them. `x A` is one matmul for a layer and its siblings, a per-row mask
keeps the row's own adapter's columns times its scale (zero for base rows), and one matmul by B
adds the term; the columns of attached adapters that no row uses cost that matmul's width. A
detach builds the pack again without the adapter, points the others into the new one and
empties the adapter's matrices, so the old pack's memory goes with the last reference to it
(routes and masks are dropped with it). A build copies the attached adapters' matrices once, on
the engine thread (9 SmolLM2 rank-8 adapters, 45 MB: 20-55 ms per attach or detach at load 20,
a fraction of one 8-row decode step there). `GATHER` takes each row's A and B from a per-layer stack
(`mx.take`: a padded working copy, held only while that mode is on and counted in
`Router.working_bytes`) and runs one batched matmul pair; `GROUP` runs one matmul pair per
adapter on its rows and scatters the result back.
`python -m bench.adapters` measures all three. On a 2-core x86 CPU (SmolLM2, 8 rows on 8 rank-8
adapters of 16 layers x 7 projections, one decode step, alternating with 8 base rows) STACK ran
at 0.88 of the base step's speed, GATHER at 0.80 and GROUP at 0.59 at load 2 (wall and CPU time
alike); at load 4-23, in this process's CPU time, STACK 0.84, GATHER 0.43-0.59 (its batched small
matmuls), GROUP 0.35-0.46, and in wall time STACK 0.57-0.91 (its extra small BLAS calls can wait
for a busy core). A batch whose rows all use one adapter (an adapter served alone) computes exactly what
mlx-lm's `LoRALinear` computes, `y + (s * ((x @ A) @ B)).astype(x.dtype)` (a view's values are
its matrices'); in a mixed batch STACK scales `x A` before B instead of after, which changes the
sums by rounding only (tests/test_multi_lora.py checks every row's greedy tokens against its
adapter alone through mlx-lm).

The adapter format is mlx-lm's: `adapter_config.json` (`fine_tune_type`, `num_layers`,
`lora_parameters` with `rank` and `scale`) and `adapters.safetensors` whose names are the adapted
modules' paths with a `lora_a` / `lora_b` leaf, as `mlx_lm.tuner.utils.load_adapters` reads them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
from mlx import nn

from inference_svc.cpu.swap import swap_modules
from mlxhub.errors import FailedPrecondition

STACK, GATHER, GROUP = "stack", "gather", "group"
LEAVES = ("lora_a", "lora_b")
# Projections of one module that read the same input: in STACK mode one matmul computes `x A` for all of them.
SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


@dataclass(eq=False)
class Adapter:
    """One adapter version's low-rank matrices: module path -> (A (in, r), B (r, out))."""

    version: str
    scale: float
    matrices: dict[str, tuple[mx.array, mx.array]]
    nbytes: int = 0
    slot: int = 0  # its index in the router's per-layer stacks while attached (0: no adapter)

    @property
    def rank(self) -> int:
        return max((a.shape[1] for a, _ in self.matrices.values()), default=0)


def read_adapter(adapter_path: str, version: str = "") -> Adapter:
    """The LoRA matrices of the mlx-lm adapter directory `adapter_path` (any thread)."""
    directory = Path(adapter_path)
    try:
        config = json.loads((directory / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise FailedPrecondition(f"cannot read {directory / 'adapter_config.json'}: {exc}",
                                 resource_type="adapter", resource_name=version or str(directory)) from None
    kind = config.get("fine_tune_type", "lora")
    if kind != "lora":
        raise FailedPrecondition(f"{version or directory} is a {kind!r} adapter; only LoRA adapters can be served "
                                 "on a shared base", resource_type="adapter", resource_name=version or str(directory))
    parameters = config.get("lora_parameters") or {}
    if "scale" not in parameters:
        raise FailedPrecondition(f"{directory / 'adapter_config.json'} has no lora_parameters.scale",
                                 resource_type="adapter", resource_name=version or str(directory))
    weights = mx.load(str(directory / "adapters.safetensors"))
    halves: dict[str, dict[str, mx.array]] = {}
    for name, value in weights.items():
        module, _, leaf = name.rpartition(".")
        if leaf not in LEAVES:
            raise FailedPrecondition(f"{directory / 'adapters.safetensors'} holds {name}, which is not a LoRA "
                                     "matrix (lora_a / lora_b)", resource_type="adapter",
                                     resource_name=version or str(directory))
        halves.setdefault(module, {})[leaf] = value
    matrices = {}
    for module, pair in halves.items():
        if set(pair) != set(LEAVES) or pair["lora_a"].shape[1] != pair["lora_b"].shape[0]:
            raise FailedPrecondition(f"{directory / 'adapters.safetensors'}: {module} needs lora_a (in, r) and "
                                     "lora_b (r, out)", resource_type="adapter", resource_name=version or str(directory))
        matrices[module] = (pair["lora_a"], pair["lora_b"])
    mx.eval(list(weights.values()))
    return Adapter(version, float(parameters["scale"]), matrices, sum(v.nbytes for v in weights.values()))


@dataclass
class Route:
    """Which adapter each row of one model call uses, in the forms the layers read."""

    rows: tuple[Adapter | None, ...]
    index: mx.array  # (rows,) slot per row, 0 for the base
    uniform: Adapter | None  # the adapter every row uses, if they all use one
    groups: list[tuple[Adapter, mx.array]] = field(default_factory=list)  # adapter, its rows
    scales: mx.array | None = None  # (rows,) each row's adapter's scale, 0 for the base
    masks: dict[tuple, mx.array] = field(default_factory=dict)  # (column owners, ndim, dtype) -> (rows, 1, columns)
    paths: frozenset[str] = frozenset()  # the layers some row's adapter adapts

    @property
    def nbytes(self) -> int:
        arrays = [self.index, *(rows for _, rows in self.groups), *self.masks.values()]
        return sum(a.nbytes for a in arrays) + (self.scales.nbytes if self.scales is not None else 0)


@dataclass
class Columns:
    """In a `Pack`, one group of sibling layers: the adapters' A side by side (in, k), and per layer its
    columns of `x A` and its B rows (k_layer, out); `owner` says which adapter each column belongs to."""

    a: mx.array
    owner: tuple[int, ...]  # slot of the adapter each column belongs to
    layers: dict[str, tuple[int, int, mx.array]]  # path -> (first column, end column, B)
    last: tuple[mx.array, mx.array] | None = None  # (x, its masked x A) of the current call

    @property
    def nbytes(self) -> int:
        return self.a.nbytes + sum(b.nbytes for _, _, b in self.layers.values())


@dataclass
class Pack:
    """The matrices of every attached adapter, concatenated per group of sibling layers: their only
    copy (each `Adapter.matrices` holds views into it), built again when an adapter attaches or detaches."""

    groups: dict[str, Columns] = field(default_factory=dict)  # path -> its group

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in {id(c): c for c in self.groups.values()}.values())

    def forget_calls(self) -> None:
        """Drop each group's `x A` of the last call (it holds that call's activations)."""
        for columns in self.groups.values():
            columns.last = None


def _own(blocks: list[mx.array], axis: int) -> mx.array:
    """`blocks` joined along `axis` into a buffer of their own (one block too: a view would keep the
    pack it points into alive)."""
    return mx.concatenate(blocks, axis=axis) if len(blocks) > 1 else mx.array(blocks[0])


class RoutedLoRALinear(nn.Module):
    """A base projection plus, per row, the low-rank term of that row's adapter (if it adapts this layer)."""

    def __init__(self, linear: nn.Module, name: str, router: Router) -> None:
        super().__init__()
        self.linear = linear
        self.path = name
        self.router = router

    def __call__(self, x: mx.array) -> mx.array:
        y = self.linear(x)
        route = self.router.current
        if route is None or not self.router.adapts(self.path, route):
            return y
        if route.uniform is not None:
            a, b = route.uniform.matrices[self.path]
            return y + (route.uniform.scale * ((x @ a) @ b)).astype(x.dtype)
        if self.router.mode == STACK:
            return self.router.stacked(self.path, x, y, route)
        if self.router.mode == GROUP:
            for adapter, rows in route.groups:
                pair = adapter.matrices.get(self.path)
                if pair is not None:
                    y = y.at[rows].add((adapter.scale * ((x[rows] @ pair[0]) @ pair[1])).astype(x.dtype))
            return y
        stack_a, stack_b, scales = self.router.stack(self.path)
        a, b = mx.take(stack_a, route.index, axis=0), mx.take(stack_b, route.index, axis=0)
        z = (x @ a) @ b if x.ndim == 3 else ((x[:, None] @ a) @ b)[:, 0]
        s = mx.take(scales, route.index).reshape(-1, *([1] * (z.ndim - 1)))
        return y + (s * z).astype(x.dtype)


class Router:
    """The adapters attached to one base model, and the adapter of each row of its next call. Only the
    engine thread uses it (attach, detach, route and the model calls)."""

    def __init__(self, model: nn.Module, mode: str = STACK) -> None:
        self.model = model
        self.adapters: list[Adapter] = []
        self.current: Route | None = None
        self._layers: dict[str, RoutedLoRALinear] = {}
        self._stacks: dict[str, tuple[mx.array, mx.array, mx.array]] = {}
        self._rows: dict[int, Adapter | None] = {}  # batch uid -> adapter
        self._routes: dict[tuple, Route | None] = {}
        self.pack = Pack()  # the attached adapters' matrices (their storage)
        self._mode = mode

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        """Switch how the per-row terms are added; leaving GATHER frees its stacks."""
        self._mode = mode
        if mode != GATHER:
            self._stacks.clear()

    @property
    def working_bytes(self) -> int:
        """Bytes held beside the adapters' own matrices: GATHER's padded stacks and the routes' masks
        (the cache counts them on the base)."""
        stacks = sum(a.nbytes + b.nbytes + s.nbytes for a, b, s in self._stacks.values())
        return stacks + sum(r.nbytes for r in self._routes.values() if r is not None)

    # -- adapters --------------------------------------------------------------------------
    def attach(self, adapter: Adapter) -> None:
        """Make `adapter` usable by rows (FailedPrecondition when it does not fit this base). Its matrices
        move into the router's pack: from here on they are views into it."""
        modules = dict(self.model.named_modules())
        for path, (a, b) in adapter.matrices.items():
            module = modules.get(path)
            if isinstance(module, RoutedLoRALinear):
                module = module.linear
            if not isinstance(module, (nn.Linear, nn.QuantizedLinear)):
                raise FailedPrecondition(f"adapter {adapter.version} adapts {path}, which is not a linear layer "
                                         "of its base model", resource_type="adapter", resource_name=adapter.version)
            out_dims, in_dims = module.weight.shape
            if isinstance(module, nn.QuantizedLinear):
                in_dims = in_dims * 32 // module.bits
            if a.shape[0] != in_dims or b.shape[1] != out_dims:
                raise FailedPrecondition(
                    f"adapter {adapter.version}: {path} maps {a.shape[0]} -> {b.shape[1]} but the base layer maps "
                    f"{in_dims} -> {out_dims}; was it trained on another base?",
                    resource_type="adapter", resource_name=adapter.version)
        swap_modules(self.model, lambda name, module: RoutedLoRALinear(module, name, self)
                     if name in adapter.matrices and name not in self._layers else None)
        self._layers = {name: m for name, m in self.model.named_modules() if isinstance(m, RoutedLoRALinear)}
        self.adapters.append(adapter)
        try:
            self._restack()
        except BaseException:
            self.adapters.remove(adapter)
            adapter.slot = 0
            raise

    def detach(self, adapter: Adapter) -> None:
        """Forget `adapter` (no row may use it any more) and free its matrices: the pack is built again
        without them, and the adapter keeps none. Its layers stay wrapped, adding nothing."""
        if adapter in self.adapters:
            self.adapters.remove(adapter)
            adapter.slot = 0
            adapter.matrices = {}
            self._restack()

    def _restack(self) -> None:
        """Number the adapters, build the pack of their matrices and point each adapter into it; every
        route, mask and stack made for the previous pack goes (they would keep it alive)."""
        for slot, adapter in enumerate(self.adapters, start=1):
            adapter.slot = slot
        self._stacks.clear()
        self._routes.clear()
        self.current = None
        self.pack = Pack()  # the old one goes once no adapter points into it any more
        views: dict[int, dict[str, tuple[mx.array, mx.array]]] = {id(a): {} for a in self.adapters}
        for path in self._layers:
            if path not in self.pack.groups:
                self._group(path, views)
        mx.eval([list(v.values()) for v in views.values()])
        for adapter in self.adapters:
            adapter.matrices = views[id(adapter)]
            adapter.nbytes = sum(a.nbytes + b.nbytes for a, b in adapter.matrices.values())

    def _group(self, path: str, views: dict[int, dict[str, tuple[mx.array, mx.array]]]) -> None:
        """Build the pack's columns of layer `path` and its siblings, and each adapter's views into them."""
        parent, _, leaf = path.rpartition(".")
        names = next((names for names in SIBLINGS if leaf in names), (leaf,))
        paths = [f"{parent}.{name}" if parent else name for name in names]
        paths = [p for p in paths if p in self._layers]
        blocks, owner, layers, start, spans = [], [], {}, 0, []
        for p in paths:
            bs, row = [], 0
            for adapter in self.adapters:
                pair = adapter.matrices.get(p)
                if pair is not None:
                    rank = pair[0].shape[1]
                    blocks.append(pair[0])
                    bs.append(pair[1])
                    owner.extend([adapter.slot] * rank)
                    spans.append((adapter, p, start + row, row, rank))
                    row += rank
            if bs:
                layers[p] = (start, start + row, _own(bs, axis=0))
                start += row
        if not layers:  # no attached adapter adapts these layers any more
            return
        columns = Columns(_own(blocks, axis=1), tuple(owner), layers)
        for adapter, p, column, row, rank in spans:
            views[id(adapter)][p] = (columns.a[:, column:column + rank], layers[p][2][row:row + rank])
        for p in paths:
            self.pack.groups[p] = columns

    def stack(self, path: str) -> tuple[mx.array, mx.array, mx.array]:
        """Per-slot A (n+1, in, r), B (n+1, r, out) and scale (n+1,) of layer `path`, zero for the base
        and for adapters that leave this layer alone (ranks padded with zeros to the largest)."""
        stacked = self._stacks.get(path)
        if stacked is None:
            pairs = [adapter.matrices.get(path) for adapter in self.adapters]
            present = [pair for pair in pairs if pair is not None]
            rank = max(a.shape[1] for a, _ in present)
            (in_dims, _), (_, out_dims), dtype = present[0][0].shape, present[0][1].shape, present[0][0].dtype
            a_rows = [mx.zeros((in_dims, rank), dtype)]
            b_rows = [mx.zeros((rank, out_dims), dtype)]
            for pair in pairs:
                if pair is None:
                    a_rows.append(a_rows[0])
                    b_rows.append(b_rows[0])
                else:
                    a, b = pair
                    a_rows.append(mx.pad(a, [(0, 0), (0, rank - a.shape[1])]))
                    b_rows.append(mx.pad(b, [(0, rank - b.shape[0]), (0, 0)]))
            scales = mx.array([0.0] + [adapter.scale for adapter in self.adapters], dtype=mx.float32)
            stacked = self._stacks[path] = (mx.stack(a_rows), mx.stack(b_rows), scales)
            mx.eval(stacked)
        return stacked

    # -- rows --------------------------------------------------------------------------------
    def assign(self, uid: int, adapter: Adapter | None) -> None:
        self._rows[uid] = adapter

    def release(self, uid: int) -> None:
        self._rows.pop(uid, None)

    def forget_rows(self) -> None:
        self._rows.clear()
        self.current = None

    def route_uids(self, uids: Sequence[int]) -> None:
        self.route([self._rows.get(uid) for uid in uids])

    def route(self, rows: Sequence[Adapter | None]) -> None:
        """Set which adapter each row of the next model call uses (None: the base)."""
        key = tuple(id(a) if a is not None else 0 for a in rows)
        route = self._routes.get(key, False)
        if route is False:
            route = self._routes[key] = self._new_route(rows)
        self.current = route

    def ended(self) -> None:
        """After a model call: its routed inputs are no longer needed here."""
        self.pack.forget_calls()

    def _new_route(self, rows: Sequence[Adapter | None]) -> Route | None:
        route = None
        if any(a is not None for a in rows):
            distinct = {id(a): a for a in rows}
            stray = [a for a in distinct.values() if a is not None and a not in self.adapters]
            if stray:  # its matrices are gone (or were never here): it must not run as another adapter
                raise FailedPrecondition(f"adapter {stray[0].version} is not attached to this base (unloaded?)",
                                         resource_type="adapter", resource_name=stray[0].version)
            uniform = rows[0] if len(distinct) == 1 else None
            groups = [(a, mx.array([i for i, r in enumerate(rows) if r is a], dtype=mx.int32))
                      for a in distinct.values() if a is not None]
            route = Route(tuple(rows), mx.array([a.slot if a is not None else 0 for a in rows], dtype=mx.int32),
                          uniform, groups, mx.array([a.scale if a is not None else 0.0 for a in rows], dtype=mx.float32),
                          paths=frozenset().union(*(a.matrices for a, _ in groups)))
        if len(self._routes) > 256:
            self._routes.clear()
        return route

    # -- STACK mode ---------------------------------------------------------------------------
    def stacked(self, path: str, x: mx.array, y: mx.array, route: Route) -> mx.array:
        """`y` plus each row's low-rank term: `x` times the attached adapters' A side by side (one matmul
        for a layer and its siblings), zero outside the row's own adapter's columns, times B."""
        columns = self.pack.groups.get(path)
        if columns is None or path not in columns.layers:
            return y
        if columns.last is None or columns.last[0] is not x:
            key = (columns.owner, x.ndim, x.dtype)
            mask = route.masks.get(key)
            if mask is None:  # row i keeps its adapter's columns, times its scale
                owner = mx.array(columns.owner, dtype=mx.int32)
                mask = ((route.index[:, None] == owner[None, :]) * route.scales[:, None]).astype(x.dtype)
                mask = route.masks[key] = mask.reshape(mask.shape[0], *([1] * (x.ndim - 2)), mask.shape[1])
                mx.eval(mask)
            columns.last = (x, (x @ columns.a) * mask)
        start, end, b = columns.layers[path]
        z = columns.last[1][..., start:end] @ b
        return y + (z if z.dtype == y.dtype else z.astype(y.dtype))

    def adapts(self, path: str, route: Route) -> bool:
        """Whether any row of `route` adapts layer `path`."""
        return path in route.paths


class RoutedModel:
    """A base model as a batch sees it: `route_rows(uids)` before a call says whose rows they are
    (mlx_lm_compat's batches call it); with `adapter` fixed (a request decoding alone) every call
    runs on that adapter. Everything else is the model's."""

    def __init__(self, model: nn.Module, router: Router, adapter: Adapter | None = None, fixed: bool = False) -> None:
        self._model, self._router, self._adapter, self._fixed = model, router, adapter, fixed

    def route_rows(self, uids: Sequence[int]) -> None:
        if not self._fixed:
            self._router.route_uids(uids)

    def __call__(self, inputs: mx.array, *args: Any, **kwargs: Any) -> mx.array:
        if self._fixed:
            rows = inputs.shape[0] if inputs.ndim > 1 else 1
            self._router.route([self._adapter] * rows)
        try:
            return self._model(inputs, *args, **kwargs)
        finally:
            self._router.ended()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)
