"""The lazy ``Catalog``: a query over a catalogue's files, turned into a dask DataFrame.

A ``Catalog`` is immutable. ``select``, ``where``, ``cone``, ``box`` and ``healpix`` return a new
catalogue that remembers what to read; nothing is read until ``to_dask()`` is computed (or
``len``, ``head``, ``compute``). Because the catalogue knows the whole query before building
the graph, it can read only the stored columns the quantities and cuts need, skip every file
and row group that cannot match, and do everything for one partition in a single task.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd
from dask.base import tokenize
from dask.delayed import Delayed

from skydask.catalog.healpix_index import HEALPIX29_COLUMN
from skydask.catalog.reader import (
    ChunkedColumns,
    MemoryPiece,
    ParquetPiece,
    ReadPlan,
    arrow_threads,
    empty_frame,
    read_arrays,
    read_chunks,
    read_piece,
)
from skydask.catalog.regions import Box, Cone, HealpixRegion, Region
from skydask.catalog.sources import MemorySource, ParquetSource, PruneStats, Query
from skydask.errors import SchemaError
from skydask.schema import expressions as ex
from skydask.schema.schema import QuantityInfo, Schema

__all__ = ["Catalog"]


@dataclass(frozen=True)
class _State:
    selected: tuple[str, ...] | None = None
    filter: ex.Expr | None = None
    regions: tuple[Region, ...] = ()


def _constant(value: Any) -> Any:
    """A partition reader's stand-in where nothing is left to read: the empty result."""
    return value


class Catalog:
    """A lazy, cuttable view of a survey catalogue.

    Build one with :func:`skydask.open_catalog` or :func:`skydask.from_pandas`.

    Examples
    --------
    >>> import pandas as pd, skydask
    >>> df = pd.DataFrame({"ra": [10.0, 10.1, 200.0], "dec": [0.0, 0.1, 5.0],
    ...                    "psFlux_r": [1000.0, 10.0, 500.0], "psFluxErr_r": [10.0, 5.0, 5.0]})
    >>> cat = skydask.from_pandas(df, npartitions=2)
    >>> bright = cat.where("mag_r < 25").select(["ra", "mag_r"])
    >>> bright.compute().round(3)
          ra   mag_r
    0   10.0  23.900
    1  200.0  24.653
    """

    def __init__(
        self,
        source: ParquetSource | MemorySource,
        schema: Schema,
        *,
        name: str | None = None,
        _state: _State | None = None,
    ) -> None:
        self._source = source
        self.schema = schema
        self.name = name
        self._state = _state or _State()
        self._pieces: list[ParquetPiece] | list[MemoryPiece] | None = None
        self._prune_stats: PruneStats | None = None

    def _derive(self, **changes: Any) -> Catalog:
        return Catalog(
            self._source, self.schema, name=self.name, _state=replace(self._state, **changes)
        )

    # -- building the query ----------------------------------------------------------------
    def select(self, quantities: str | Sequence[str]) -> Catalog:
        """Keep only these quantities; only the stored columns they need will be read."""
        names = [quantities] if isinstance(quantities, str) else list(quantities)
        if not names:
            raise SchemaError("select() needs at least one quantity name")
        self.schema.check(names)
        return self._derive(selected=tuple(dict.fromkeys(names)))

    def where(self, expression: str) -> Catalog:
        """Keep rows for which ``expression`` holds (ANDed with earlier cuts).

        The expression uses quantity names, numbers, comparisons, ``& | ~`` and a few named
        functions (``isfinite``, ``log10``, ...); it is parsed, never evaluated as Python, and
        every name is checked before anything is read.
        """
        if not isinstance(expression, str):
            raise TypeError(f"where() takes a string expression, got {type(expression).__name__}")
        expr = self.schema.parse(expression)
        if not ex.is_boolean(expr) and not (
            isinstance(expr, ex.Name) and self._is_bool_column(expr.id)
        ):
            raise SchemaError(
                f"where({expression!r}) is not a condition: expected a comparison, a flag, or "
                f"conditions joined with & | ~"
            )
        combined = expr if self._state.filter is None else ex.BinOp("&", self._state.filter, expr)
        return self._derive(filter=combined)

    def same_rows(self, other: Catalog) -> bool:
        """Whether ``other`` is this catalogue with the same cuts and regions (its selected
        quantities may differ): both then yield the same rows, so one scan can serve both.

        >>> import pandas as pd, skydask
        >>> cat = skydask.from_pandas(pd.DataFrame({"ra": [1.0], "dec": [2.0]}))
        >>> cat.select("ra").same_rows(cat), cat.where("ra > 0").same_rows(cat)
        (True, False)
        """
        return (
            self._source is other._source
            and self.schema is other.schema
            and self._state.filter == other._state.filter
            and self._state.regions == other._state.regions
        )

    def _is_bool_column(self, name: str) -> bool:
        resolved = self.schema.resolve(name)
        return isinstance(resolved, ex.Name) and (
            resolved.id in self._source.arrow_schema.names
            and str(self._source.arrow_schema.field(resolved.id).type) == "bool"
        )

    def _with_region(self, region: Region) -> Catalog:
        for q in ("ra", "dec"):
            if q not in self.schema:
                raise SchemaError(
                    f"this catalogue has no {q!r} quantity, so it cannot be cut on the sky"
                )
        return self._derive(regions=(*self._state.regions, region))

    def cone(self, ra: float, dec: float, radius_deg: float) -> Catalog:
        """Rows within ``radius_deg`` of (``ra``, ``dec``), all in degrees."""
        return self._with_region(Cone(float(ra), float(dec), float(radius_deg)))

    def box(self, ra_min: float, ra_max: float, dec_min: float, dec_max: float) -> Catalog:
        """Rows in an RA/Dec box; ``ra_min > ra_max`` wraps through RA = 0/360."""
        return self._with_region(Box(float(ra_min), float(ra_max), float(dec_min), float(dec_max)))

    def healpix(self, order: int, pixels: int | Sequence[int]) -> Catalog:
        """Rows in the given HEALPix NESTED pixels of ``order``."""
        pix = (pixels,) if isinstance(pixels, int) else tuple(int(p) for p in pixels)
        return self._with_region(HealpixRegion(int(order), pix))

    def join(
        self,
        other: Catalog,
        on: str | Sequence[str] = "objectId",
        how: str = "inner",
        *,
        strategy: str = "auto",
        suffixes: tuple[str, str] = ("_x", "_y"),
    ) -> dd.DataFrame:
        """Join with another catalogue on ``on`` (Source or ForcedSource to Object, say).

        Partition-wise (one task per shared partition, no row moves) when both are partitioned
        by the same tract/patch or join key, else a shuffle join; see
        :func:`skydask.catalog.join.join_catalogs` for the rules and parameters. Returns a
        lazy dask DataFrame with the rows of ``pandas.merge`` of the two selections.

        Examples
        --------
        >>> import pandas as pd, skydask
        >>> obj = skydask.from_pandas(pd.DataFrame({"objectId": [1, 2], "ra": [10.0, 11.0],
        ...                                         "dec": [0.0, 1.0]}))
        >>> fs = skydask.from_pandas(pd.DataFrame({"objectId": [1, 1, 2], "visit": [7, 8, 7],
        ...                                        "psFlux": [5.0, 6.0, 7.0]}), npartitions=2)
        >>> joined = fs.join(obj.select(["objectId", "ra"]), on="objectId")
        >>> rows = joined.compute().sort_values(["objectId", "visit"])
        >>> rows[["objectId", "visit", "ra"]].to_numpy().tolist()
        [[1.0, 7.0, 10.0], [1.0, 8.0, 10.0], [2.0, 7.0, 11.0]]
        """
        from skydask.catalog.join import join_catalogs

        return join_catalogs(self, other, on=on, how=how, strategy=strategy, suffixes=suffixes)

    # -- the plan ----------------------------------------------------------------------------
    @property
    def quantities(self) -> list[str]:
        """The quantities this catalogue can provide (not only the selected ones)."""
        return self.schema.quantities

    @property
    def columns(self) -> list[str]:
        """The columns ``to_dask()`` will have: the selection, or every stored column."""
        if self._state.selected is not None:
            return list(self._state.selected)
        return list(self.schema.stored)

    def _plan(self, outputs: Sequence[str] | None = None) -> ReadPlan:
        names = self.columns if outputs is None else list(outputs)
        # With no selection the output is every stored column under its own name, including
        # columns a flavour maps onto a quantity (dp1's g_psfFlux, a Source table's filter).
        raw = self._state.selected is None and outputs is None
        out_exprs = tuple(
            (n, ex.Name(n) if raw and n not in self.schema else self.schema.resolve(n))
            for n in names
        )
        filt = (
            self.schema.to_columns(self._state.filter) if self._state.filter is not None else None
        )
        needed: set[str] = set()
        for _, e in out_exprs:
            needed |= ex.names(e)
        if filt is not None:
            needed |= ex.names(filt)
        ra = dec = None
        if self._state.regions:
            ra, dec = self.schema.resolve("ra"), self.schema.resolve("dec")
            hp_only = all(isinstance(r, HealpixRegion) for r in self._state.regions) and (
                HEALPIX29_COLUMN in self.schema.stored
            )
            if hp_only:
                needed.add(HEALPIX29_COLUMN)
            else:
                needed |= ex.names(ra) | ex.names(dec)
                if HEALPIX29_COLUMN in self.schema.stored:
                    needed.add(HEALPIX29_COLUMN)
        ordered = tuple(c for c in self.schema.stored if c in needed)
        return ReadPlan(ordered, out_exprs, filt, self._state.regions, ra, dec)

    def _query(self) -> Query:
        filt = (
            self.schema.to_columns(self._state.filter) if self._state.filter is not None else None
        )
        ra_col = dec_col = None
        if self._state.regions:
            ra, dec = self.schema.resolve("ra"), self.schema.resolve("dec")
            ra_col = ra.id if isinstance(ra, ex.Name) else None
            dec_col = dec.id if isinstance(dec, ex.Name) else None
        return Query(filt, self._state.regions, ra_col, dec_col)

    def _planned_pieces(self) -> list[ParquetPiece] | list[MemoryPiece]:
        if self._pieces is None:
            stats = PruneStats()
            self._pieces = self._source.plan(self._query(), stats)
            self._prune_stats = stats
        return self._pieces

    @property
    def prune_stats(self) -> PruneStats:
        """Files and row groups this query will read, against the catalogue's total."""
        self._planned_pieces()
        assert self._prune_stats is not None
        return self._prune_stats

    @property
    def healpix_order(self) -> int | None:
        """The HEALPix order of the partitioning, when every partition is one HATS pixel.

        Then all rows of a pixel at this order or finer are in one partition, so per-pixel
        reductions (medians, for instance) need no shuffle. ``None`` for other layouts, and
        when a large pixel file was split into several partitions (its rows then straddle them).
        """
        source = self._source
        if not isinstance(source, ParquetSource) or source.layout.kind != "hats":
            return None
        paths = [p.path for p in self._planned_pieces() if isinstance(p, ParquetPiece)]
        if len(paths) != len(set(paths)):
            return None
        orders = {f.healpix[0] for f in source.layout.files if f.healpix is not None}
        # mixed orders: a pixel of the coarsest order may hold finer pixels' rows, but a pixel
        # at the finest order never straddles partitions
        return max(orders) if orders else None

    @property
    def npartitions(self) -> int:
        """Number of dask partitions (after files and row groups are pruned)."""
        return max(1, len(self._planned_pieces()))

    # -- turning it into data ----------------------------------------------------------------
    def _meta(self, plan: ReadPlan) -> pd.DataFrame:
        return empty_frame(plan, self._source.arrow_schema)

    @property
    def meta(self) -> pd.DataFrame:
        """The zero-row frame of the selected quantities, with their types (dask's ``meta``);
        nothing is read or planned.

        >>> import pandas as pd, skydask
        >>> df = pd.DataFrame({"psFlux_r": [1.0], "psFluxErr_r": [0.1]})
        >>> cat = skydask.from_pandas(df, schema="dc2")
        >>> cat.select(["psFlux_r", "snr_r"]).meta.dtypes.astype(str).to_dict()
        {'psFlux_r': 'float64', 'snr_r': 'float64'}
        """
        return self._meta(self._plan())

    def to_dask(self) -> dd.DataFrame:
        """The dask DataFrame of the selected quantities (one task per partition)."""
        plan = self._plan()
        meta = self._meta(plan)
        pieces = self._planned_pieces()
        # The reader already returns pandas' own string dtype; dask's automatic string
        # conversion would only add a second task per partition.
        with dask.config.set({"dataframe.convert-string": False}):
            if not pieces:
                return dd.from_pandas(meta, npartitions=1)
            return dd.from_map(
                read_piece,
                pieces,
                plan=plan,
                use_threads=arrow_threads(len(pieces)),
                meta=meta,
                label=f"read-{self.name or 'catalog'}",
                enforce_metadata=False,
            )

    def _read_plan(self, columns: Mapping[str, str] | None) -> ReadPlan:
        """The plan of :meth:`to_delayed` and :meth:`partition_readers`: the selected
        quantities, renamed and ordered by ``columns`` if given."""
        plan = self._plan()
        if columns is None:
            return plan
        exprs = dict(plan.outputs)
        unknown = [q for q in columns.values() if q not in exprs]
        if unknown:
            raise SchemaError(
                f"to_delayed(columns=...): {unknown} not among the selected quantities "
                f"{list(exprs)}"
            )
        return replace(plan, outputs=tuple((name, exprs[q]) for name, q in columns.items()))

    def partition_readers(
        self,
        columns: Mapping[str, str] | None = None,
        *,
        arrays: bool = False,
        chunks: bool = False,
    ) -> list[functools.partial[Any]]:
        """One picklable callable per partition that reads it: what the tasks of
        :meth:`to_delayed` call, for task graphs that read several partitions in one task.

        ``columns``, ``arrays`` and ``chunks`` as for :meth:`to_delayed`. Calling a reader
        returns the partition (a pandas DataFrame, a dict of NumPy arrays with ``arrays=True``,
        a :class:`~skydask.catalog.reader.ChunkedColumns` with ``chunks=True``); a selection
        with no partition left has one reader, of the empty result.

        Examples
        --------
        >>> import pandas as pd, skydask
        >>> frame = pd.DataFrame({"psFlux_r": [1e3, 1e4, 1e5]})
        >>> cat = skydask.from_pandas(frame, npartitions=2, schema="dc2")
        >>> readers = cat.select(["mag_r"]).partition_readers({"r": "mag_r"}, arrays=True)
        >>> [read()["r"].round(2).tolist() for read in readers]
        [[23.9], [21.4, 18.9]]
        """
        read, pieces = self._reads(columns, arrays, chunks)
        return [functools.partial(read, piece) for piece in pieces] or [read]

    def _reads(
        self, columns: Mapping[str, str] | None, arrays: bool, chunks: bool
    ) -> tuple[functools.partial[Any], list[ParquetPiece] | list[MemoryPiece]]:
        """The read of one partition (the reader with its plan, given a piece) and the pieces
        to read; with no piece left, a call that gives the empty result, and no piece."""
        if arrays and chunks:
            raise ValueError("partition_readers: ask for arrays or for chunks, not both")
        plan = self._read_plan(columns)
        pieces = self._planned_pieces()
        if not pieces:
            meta = self._meta(plan)
            empty: Any = meta
            if arrays or chunks:
                empty = {c: meta[c].to_numpy() for c in meta}
            if chunks:
                empty = ChunkedColumns.of_arrays(empty, 0)
            return functools.partial(_constant, empty), pieces
        reader = read_arrays if arrays else read_chunks if chunks else read_piece
        return functools.partial(reader, plan=plan, use_threads=arrow_threads(len(pieces))), pieces

    def to_delayed(
        self,
        columns: Mapping[str, str] | None = None,
        *,
        arrays: bool = False,
        chunks: bool = False,
    ) -> list[Delayed]:
        """The selected quantities as one delayed pandas DataFrame per partition.

        ``columns``, if given, names the frames' columns: ``{column: selected quantity}`` (a
        quantity may appear under several names), in that order. With ``arrays=True`` each
        partition is instead a dict of NumPy arrays, by the same names, and the tasks never
        import pandas. With ``chunks=True`` it is a
        :class:`~skydask.catalog.reader.ChunkedColumns`: the columns as Arrow decoded them,
        one NumPy view per row group, for code that can work chunk by chunk and so never
        joins them (:func:`~skydask.catalog.reader.read_chunks`).

        The same partitions as :meth:`to_dask`, without a dask DataFrame around them: for task
        graphs that only hand the partitions to their own functions. The tasks call the
        partition reader directly, so a worker running them does not load dask.dataframe
        (about 45 MB per process, with the xarray and scipy it pulls in), and building the
        graph skips dask-expr's optimizer.

        Examples
        --------
        >>> import pandas as pd, skydask, dask
        >>> frame = pd.DataFrame({"psFlux_r": [1e3, 1e4, 1e5]})
        >>> cat = skydask.from_pandas(frame, npartitions=2, schema="dc2")
        >>> bright = cat.where("psFlux_r > 5000").select(["mag_r"])
        >>> frames = dask.compute(*bright.to_delayed())
        >>> len(frames) == bright.npartitions, sum(len(f) for f in frames)
        (True, 2)
        >>> dask.compute(*bright.to_delayed({"r": "mag_r"}))[0].columns.tolist()
        ['r']
        >>> parts = dask.compute(*bright.to_delayed({"r": "mag_r"}, arrays=True))
        >>> [sorted(p) for p in parts], sum(len(p["r"]) for p in parts)
        ([['r']], 2)
        >>> parts = dask.compute(*cat.select(["psFlux_r"]).to_delayed(chunks=True))
        >>> [[(start, v.tolist()) for start, v in p.chunks("psFlux_r")] for p in parts]
        [[(0, [1000.0])], [(0, [10000.0, 100000.0])]]
        """
        read, pieces = self._reads(columns, arrays, chunks)
        if not pieces:
            return [dask.delayed(read())]  # the empty result itself
        # named like to_dask's reads, with a token of what is read: two selections never
        # share a key. The plan rides in the function, not in the arguments: dask walks every
        # argument's dataclass fields looking for collections, 5 ms a task for a cut as long
        # as the stellar locus'
        name = f"read-{self.name or 'catalog'}-{tokenize(read.func, read.keywords, pieces)}"
        task = dask.delayed(read, pure=True)
        return [task(piece, dask_key_name=(name, i)) for i, piece in enumerate(pieces)]

    def __getitem__(self, quantity: str) -> dd.Series:
        """One quantity as a lazy dask Series."""
        return self.select([quantity]).to_dask()[quantity]

    def compute(self, **kwargs: Any) -> pd.DataFrame:
        """Read the selection into one pandas DataFrame (use on small selections)."""
        result: pd.DataFrame = self.to_dask().compute(**kwargs)
        return result.reset_index(drop=True)

    def head(self, n: int = 5) -> pd.DataFrame:
        """The first ``n`` rows that pass, reading partitions one by one until there are enough."""
        plan = self._plan()
        parts, got = [], 0
        for piece in self._planned_pieces():
            part = read_piece(piece, plan)
            parts.append(part)
            got += len(part)
            if got >= n:
                break
        if not parts:
            return self._meta(plan)
        return pd.concat(parts, ignore_index=True).iloc[:n]

    def count(self) -> int:
        """Number of rows that pass the cuts (reads only the columns the cuts need)."""
        if self._state.filter is None and not self._state.regions:
            return self._source.total_rows()
        plan = self._plan(outputs=[])
        pieces = self._planned_pieces()
        if not pieces:
            return 0
        with dask.config.set({"dataframe.convert-string": False}):
            ddf = dd.from_map(
                read_piece,
                pieces,
                plan=plan,
                use_threads=arrow_threads(len(pieces)),
                meta=self._meta(plan),
                label="count",
                enforce_metadata=False,
            )
        return int(ddf.map_partitions(len, meta=("n", "i8")).sum().compute())

    def __len__(self) -> int:
        return self.count()

    # -- description --------------------------------------------------------------------------
    def info(self, quantity: str) -> QuantityInfo:
        """Unit, description and definition of one quantity."""
        return self.schema.info(quantity)

    def sky_area_deg2(self) -> float | None:
        """Approximate sky area covered (deg^2), from HATS pixels or footer ra/dec boxes."""
        source = self._source
        if not isinstance(source, ParquetSource):
            return None
        files = source.layout.files
        if files and all(f.healpix is not None for f in files):
            return sum(41252.96124941928 / (12 * 4 ** f.healpix[0]) for f in files if f.healpix)
        ra, dec = (
            self.schema.resolve("ra") if "ra" in self.schema else None,
            (self.schema.resolve("dec") if "dec" in self.schema else None),
        )
        if not (isinstance(ra, ex.Name) and isinstance(dec, ex.Name)):
            return None
        area = 0.0
        for ra_lo, ra_hi, dec_lo, dec_hi in source.sky_bounds(ra.id, dec.id):
            area += (
                (ra_hi - ra_lo)
                * (math.sin(math.radians(dec_hi)) - math.sin(math.radians(dec_lo)))
                * 180
                / math.pi
            )
        return area

    def sky_box(self) -> tuple[float, float, float, float] | None:
        """(ra_min, ra_max, dec_min, dec_max) enclosing the stored rows, from the footers."""
        source = self._source
        if not isinstance(source, ParquetSource) or not {"ra", "dec"} <= set(
            source.arrow_schema.names
        ):
            return None
        boxes = source.sky_bounds("ra", "dec")
        if not boxes:
            return None
        return (
            min(b[0] for b in boxes),
            max(b[1] for b in boxes),
            min(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )

    def fingerprint(self) -> str:
        """A hash of the catalogue's data (file list, sizes and Parquet footers), for caches
        and provenance. It ignores the query: combine it with the query's own description."""
        from skydask.catalog.fingerprint import frames_fingerprint, layout_fingerprint

        if isinstance(self._source, ParquetSource):
            return layout_fingerprint(self._source.layout)
        return frames_fingerprint(self._source.partitions)

    @property
    def source_description(self) -> str:
        """Where the rows come from (layout and path, or in-memory)."""
        return self._source.description

    def describe_query(self) -> str:
        parts = []
        if self._state.selected is not None:
            parts.append(f"select {len(self._state.selected)} quantities")
        if self._state.filter is not None:
            parts.append(f"where {ex.to_text(self._state.filter)}")
        parts.extend(r.describe() for r in self._state.regions)
        return "; ".join(parts) or "everything"

    def __repr__(self) -> str:
        try:
            rows = f"{self._source.total_rows():,}"
        except Exception as exc:  # a repr must never raise; say why the number is missing
            rows = f"unknown ({type(exc).__name__})"
        area = None
        try:
            area = self.sky_area_deg2()
        except Exception:
            area = None
        area_text = f"{area:,.1f} deg2" if area is not None else "unknown"
        return (
            f"<skydask.Catalog {self.name or ''}\n"
            f"  source:     {self._source.description}\n"
            f"  schema:     {self.schema.flavour} ({len(self.schema.stored)} columns, "
            f"{len(self.schema)} quantities)\n"
            f"  partitions: {len(self._planned_pieces())}\n"
            f"  rows:       {rows} (before cuts)\n"
            f"  sky area:   {area_text}\n"
            f"  query:      {self.describe_query()}>"
        )
