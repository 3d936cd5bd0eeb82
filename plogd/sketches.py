"""Mergeable sketches for per-window metrics: quantiles and distinct counts.

Both classes are partial states in the sense of `metrics`: parser processes fold batches of
one column into them (`add_many`), the aggregator merges them (`merge`) in any order and
however the lines were batched, checkpoints keep them as JSON (`to_state` / `from_state`),
and they pickle as they are.  Merging is EXACT: partial states merged in any order equal the
state of one pass over all values (`==` holds), so a window's answer never depends on how
its lines were spread over processes.  Standard library only.

QuantileSketch -- relative-error quantiles (DDSketch: Masson, Rim & Lee, VLDB 2019)
-------------------------------------------------------------------------------------
With relative accuracy ``a`` (default 0.01) and ``gamma = (1 + a) / (1 - a)``, a value
``v > 0`` is counted in bucket ``i = ceil(log(v) / log(gamma))``, i.e. the bucket
``(gamma**(i-1), gamma**i]``; zeros have their own exact counter.  A bucket answers
``2 * gamma**i / (gamma + 1)``, which is within relative error ``a`` of every value of the
bucket (``|estimate - v| <= a * v``).

Rank definition (the "lower" quantile, numpy's ``method="lower"``): for ``q`` in [0, 1] and
``n`` values ``x[0] <= ... <= x[n-1]``, the exact value is ``x[r]`` with
``r = floor(q * (n - 1))`` (computed as ``int(q * (n - 1))``).

Guarantee: ``quantile(q)`` returns ``e`` with ``|e - x[r]| <= a * x[r]`` (plus floating-point
rounding of the logarithm near bucket edges, below 1e-12 relative); ``x[r] == 0`` gives
exactly 0.  The exact minimum and maximum are kept aside: ranks 0 and n-1 (``q = 0``,
``q = 1``) answer them exactly, and other estimates are clamped to them (which keeps the
bound).

Size: at most ``max_buckets`` (default 2048) non-empty buckets.  Beyond that, the lowest
buckets are folded into the lowest kept one (DDSketch's "collapsing lowest" store).  With
a = 1% 2048 buckets span a factor ``gamma**2048 ~ 6e17`` between the smallest and largest
value, so only absurd inputs collapse, and it only affects the lowest quantiles: those whose
rank falls in the folded buckets, which answer (clamped to the minimum) a value larger than
the exact one.  Quantiles above the folded mass keep the guarantee.  The fold keeps the
highest ``max_buckets`` non-empty indices of all values added, whatever the order of adds and
merges, so merging stays exact.

DistinctCounter -- distinct count: exact, then HyperLogLog
----------------------------------------------------------
Each distinct value is hashed with a deterministic 64-bit hash: ``blake2b(digest_size=8)``
of its UTF-8 text (``str(value)`` for non-str values, so the int 7 and the string "7" are the
same value; None is ignored).  Python's ``hash()`` is randomized per process and cannot be
used for states built in different processes.

Up to ``threshold`` (default 1024) distinct hashes the set of hashes is kept and the count is
exact (up to 64-bit hash collisions: probability < 3e-14 at 1024 values).  Beyond it the
state is a HyperLogLog with precision p = 14: m = 16384 one-byte registers (a bytearray);
the top 14 bits of the hash pick the register, which keeps the largest "position of the first
1 bit" of the remaining 50 bits.  The estimate is Ertl's "improved raw estimator" (O. Ertl,
"New cardinality estimation algorithms for HyperLogLog sketches", 2017, arXiv:1702.01284,
algorithm 6): the HLL harmonic-mean estimator with the small- and large-range corrections
folded in analytically (functions sigma and tau of the register histogram), so it needs no
switch to linear counting and no empirical bias tables (HLL++).  Its relative standard error
is ``1.04 / sqrt(m) ~ 0.81%`` over the whole range, without bias.  (Measured here, 30 runs per
point: the standard estimator with linear counting below 2.5 m is biased by about +2.3% at
~42000 distinct values, where it switches; this one stays within +-0.25% mean bias from 1025
to 10**6.)  Whether a state is exact depends only on the number of distinct hashes of all
values added (<= threshold), and registers merge by maximum, so merges are exact too.
"""
from __future__ import annotations

import base64
import hashlib
import math
import sys
import zlib
from collections import Counter
from collections.abc import Iterable
from functools import partial
from itertools import repeat
from operator import methodcaller, mul
from typing import Literal

from .formats.compiled import count_values

__all__ = ["QuantileSketch", "DistinctCounter", "stable_hash64"]

_FLOAT_MAX = sys.float_info.max


class QuantileSketch:
    """Mergeable quantile sketch with relative error ``relative_accuracy`` (see module doc).

    Values are non-negative finite numbers (ints or floats).  ``add_many`` takes a whole
    column: it counts distinct values first (count_values) and computes the bucket of each
    distinct value once."""

    __slots__ = ("relative_accuracy", "max_buckets", "_gamma", "_ln_gamma", "_inv_ln_gamma",
                 "_zero", "_buckets", "_count", "_min", "_max")

    def __init__(self, relative_accuracy: float = 0.01, max_buckets: int = 2048):
        if not 0 < relative_accuracy < 1:
            raise ValueError("relative_accuracy must be in (0, 1)")
        if int(max_buckets) != max_buckets or max_buckets < 1:
            raise ValueError("max_buckets must be a positive integer")
        self.relative_accuracy = float(relative_accuracy)
        self.max_buckets = int(max_buckets)
        self._gamma = (1 + self.relative_accuracy) / (1 - self.relative_accuracy)
        self._ln_gamma = math.log(self._gamma)
        self._inv_ln_gamma = 1 / self._ln_gamma
        self._zero = 0                      # count of exact zeros
        self._buckets: dict[int, int] = {}  # bucket index -> count (> 0)
        self._count = 0
        self._min: float | None = None      # exact smallest / largest value, None when empty
        self._max: float | None = None

    # -- adding -----------------------------------------------------------------------------

    def add(self, value: float) -> None:
        """Add one value (prefer `add_many` for columns)."""
        self.add_many([value])

    def add_many(self, values: Iterable[float]) -> None:
        """Add a column of non-negative finite numbers.  Raises ValueError (and adds nothing)
        on a negative, NaN, infinite or larger-than-float value."""
        counts = count_values(values)
        if not counts:
            return
        zero = counts.pop(0, 0)             # also pops 0.0 and -0.0
        if counts:
            keys = list(counts)
            try:
                # ceil(log(v) / log(gamma)) per distinct value, as one C-level pipeline:
                # log() rejects v < 0, ceil() rejects NaN (ValueError) and inf (OverflowError).
                indexes = list(map(math.ceil, map(mul, map(math.log, keys),
                                                  repeat(self._inv_ln_gamma))))
            except (ValueError, OverflowError):
                raise ValueError("QuantileSketch values must be finite and >= 0") from None
            low, high = min(keys), max(keys)
            if high > _FLOAT_MAX:           # a huge int: its estimate would not be a float
                raise ValueError("QuantileSketch values must be finite and >= 0")
            buckets = self._buckets
            get = buckets.get
            for index, count in zip(indexes, counts.values()):
                buckets[index] = get(index, 0) + count
            if zero:
                low = 0
        else:
            low = high = 0
        self._zero += zero
        self._count += zero + sum(counts.values())
        self._min = low if self._min is None or low < self._min else self._min
        self._max = high if self._max is None or high > self._max else self._max
        if len(self._buckets) > self.max_buckets:
            self._collapse()

    def merge(self, other: QuantileSketch) -> None:
        """Add `other`'s values to this sketch (in place).  The result is exactly the sketch
        of all values added to either."""
        if not isinstance(other, QuantileSketch):
            raise TypeError(f"cannot merge {type(other).__name__} into QuantileSketch")
        if (other.relative_accuracy, other.max_buckets) != (self.relative_accuracy,
                                                            self.max_buckets):
            raise ValueError("cannot merge QuantileSketches with different parameters")
        if not other._count:
            return
        buckets = self._buckets
        get = buckets.get
        for index, count in list(other._buckets.items()):
            buckets[index] = get(index, 0) + count
        self._zero += other._zero
        self._count += other._count
        assert other._min is not None and other._max is not None     # other is not empty
        self._min = other._min if self._min is None else min(self._min, other._min)
        self._max = other._max if self._max is None else max(self._max, other._max)
        if len(buckets) > self.max_buckets:
            self._collapse()

    def _collapse(self) -> None:
        """Fold all buckets below the `max_buckets` highest into the lowest kept one."""
        indexes = sorted(self._buckets)
        keep_from = indexes[-self.max_buckets]
        folded = sum(self._buckets.pop(i) for i in indexes[:-self.max_buckets])
        self._buckets[keep_from] += folded

    # -- reading ----------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Number of values added."""
        return self._count

    def quantile(self, q: float) -> float | None:
        """Estimate of the value at rank floor(q * (n - 1)); None when empty."""
        return self.quantiles([q])[0]

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """`quantile` for several q at once (sorts the buckets once)."""
        qs = list(qs)
        for q in qs:
            if not 0 <= q <= 1:             # also rejects NaN
                raise ValueError(f"quantile q must be in [0, 1], not {q!r}")
        n = self._count
        if not n:
            return [None] * len(qs)
        indexes = sorted(self._buckets)
        cumulative = []                     # counts up to and including each bucket
        seen = self._zero
        for i in indexes:
            seen += self._buckets[i]
            cumulative.append(seen)
        low, high = self._min, self._max
        assert low is not None and high is not None     # not empty
        result: list[float | None] = []
        for q in qs:
            rank = int(q * (n - 1))
            if rank == 0 or rank == n - 1:  # the exact smallest / largest value
                result.append(float(low if rank == 0 else high))
                continue
            if rank < self._zero:
                result.append(0.0)
                continue
            # first bucket whose cumulative count exceeds rank (binary search)
            lo, hi = 0, len(cumulative) - 1
            while lo < hi:
                mid = (lo + hi) // 2
                if cumulative[mid] > rank:
                    hi = mid
                else:
                    lo = mid + 1
            try:
                estimate = 2 * math.exp(indexes[lo] * self._ln_gamma) / (self._gamma + 1)
            except OverflowError:
                estimate = math.inf
            result.append(float(min(max(estimate, low), high)))
        return result

    # -- persistence ------------------------------------------------------------------------

    def to_state(self) -> dict:
        """JSON-serializable state: parameters, zero count, exact min/max and the buckets as
        two lists (sorted indexes, counts)."""
        indexes = sorted(self._buckets)
        return {"relative_accuracy": self.relative_accuracy, "max_buckets": self.max_buckets,
                "zero": self._zero, "min": self._min, "max": self._max,
                "index": indexes, "count": [self._buckets[i] for i in indexes]}

    @classmethod
    def from_state(cls, d: dict) -> QuantileSketch:
        sketch = cls(d["relative_accuracy"], d["max_buckets"])
        indexes, counts = d["index"], d["count"]
        if len(indexes) != len(counts) or len(set(indexes)) != len(indexes):
            raise ValueError("bad QuantileSketch state: index/count lists differ")
        if any(type(c) is not int or c <= 0 for c in counts) or \
                any(type(i) is not int for i in indexes):
            raise ValueError("bad QuantileSketch state: counts must be positive integers")
        zero = d["zero"]
        if type(zero) is not int or zero < 0:
            raise ValueError("bad QuantileSketch state: zero count")
        sketch._zero = zero
        sketch._buckets = dict(zip(indexes, counts))
        sketch._count = zero + sum(counts)
        sketch._min, sketch._max = d["min"], d["max"]
        if (sketch._count == 0) != (sketch._min is None) or \
                (sketch._min is None) != (sketch._max is None):
            raise ValueError("bad QuantileSketch state: min/max")
        return sketch

    def __eq__(self, other) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        return (self.relative_accuracy == other.relative_accuracy
                and self.max_buckets == other.max_buckets
                and self._zero == other._zero and self._min == other._min
                and self._max == other._max and self._buckets == other._buckets)

    __hash__ = None     # type: ignore[assignment]  # mutable: unhashable, as equal ones differ later

    def __repr__(self) -> str:
        return (f"QuantileSketch(relative_accuracy={self.relative_accuracy}, "
                f"count={self._count}, buckets={len(self._buckets)})")


# -- DistinctCounter ------------------------------------------------------------------------

_blake2b_64 = partial(hashlib.blake2b, digest_size=8)
_digest = methodcaller("digest")


def _hash_values(values: Iterable) -> list[int]:
    """Deterministic 64-bit hash of each value: blake2b-64 of the UTF-8 text of str(value),
    big-endian.  One C-level pipeline, no Python frame per value."""
    texts = map(str.encode, map(str, values), repeat("utf-8"), repeat("surrogatepass"))
    big: Literal["big"] = "big"
    return list(map(int.from_bytes, map(_digest, map(_blake2b_64, texts)), repeat(big)))


def stable_hash64(value) -> int:
    """The 64-bit hash DistinctCounter uses for `value` (same in every process)."""
    return _hash_values([value])[0]


def _sigma(x: float) -> float:
    """Ertl's sigma(x) = x + sum_k x**(2**k) * 2**(k-1) (small-range correction)."""
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous, z = z, z + x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    """Ertl's tau(x) = (1 - x - sum_k (1 - x**(2**-k))**2 * 2**-k) / 3 (large-range)."""
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        y *= 0.5
        previous, z = z, z - (1.0 - x) ** 2 * y
        if z == previous:
            return z / 3


def _ertl_estimate(registers: bytearray, m: int, q: int) -> float:
    """Improved raw HLL estimate (Ertl 2017, algorithm 6) from m registers holding 0..q+1."""
    histogram = Counter(registers)                # register value -> number of registers
    z = m * _tau(1.0 - histogram.get(q + 1, 0) / m)
    for k in range(q, 0, -1):
        z = 0.5 * (z + histogram.get(k, 0))
    z += m * _sigma(histogram.get(0, 0) / m)
    return m * m / (2 * math.log(2)) / z


class DistinctCounter:
    """Mergeable distinct count: exact up to `threshold` distinct values, then HyperLogLog
    (p = 14, standard error ~0.81%).  See the module doc for the hash and the estimator."""

    __slots__ = ("threshold", "_hashes", "_registers")

    PRECISION = 14
    REGISTERS = 1 << PRECISION              # m = 16384
    _RANK_BITS = 64 - PRECISION             # 50 bits left after the register index
    _RANK_MASK = (1 << _RANK_BITS) - 1
    STANDARD_ERROR = 1.04 / math.sqrt(REGISTERS)

    def __init__(self, threshold: int = 1024):
        if int(threshold) != threshold or threshold < 0:
            raise ValueError("threshold must be a non-negative integer")
        self.threshold = int(threshold)
        self._hashes: set[int] = set()                # exact mode (empty in HLL mode)
        self._registers: bytearray | None = None      # HLL mode

    @property
    def is_exact(self) -> bool:
        return self._registers is None

    def add_many(self, values: Iterable) -> None:
        """Add a column of values (None ignored); each distinct value is hashed once."""
        distinct = set(values)
        distinct.discard(None)
        if distinct:
            self._add_hashes(_hash_values(distinct))

    def _add_hashes(self, hashes: list[int] | set[int]) -> None:
        registers = self._registers
        if registers is None:
            if len(hashes) <= self.threshold:
                self._hashes.update(hashes)
                if len(self._hashes) > self.threshold:
                    self._to_registers()
                return
            registers = self._to_registers()
        self._update_registers(registers, hashes)

    def _to_registers(self) -> bytearray:
        registers = self._registers = bytearray(self.REGISTERS)
        hashes, self._hashes = self._hashes, set()
        self._update_registers(registers, hashes)
        return registers

    def _update_registers(self, registers: bytearray, hashes: Iterable[int]) -> None:
        shift, mask, top = self._RANK_BITS, self._RANK_MASK, self._RANK_BITS + 1
        for h in hashes:
            j = h >> shift
            rank = top - (h & mask).bit_length()    # 1-based position of the first 1 bit
            if rank > registers[j]:
                registers[j] = rank

    def merge(self, other: DistinctCounter) -> None:
        """Add `other`'s values to this counter (in place); exact, order-independent."""
        if not isinstance(other, DistinctCounter):
            raise TypeError(f"cannot merge {type(other).__name__} into DistinctCounter")
        if other.threshold != self.threshold:
            raise ValueError("cannot merge DistinctCounters with different thresholds")
        if other._registers is None:
            self._add_hashes(list(other._hashes))
            return
        registers = self._registers if self._registers is not None else self._to_registers()
        self._registers = bytearray(map(max, registers, other._registers))

    def estimate(self) -> int:
        """Number of distinct values: exact in exact mode, else the HLL estimate."""
        if self._registers is None:
            return len(self._hashes)
        return round(_ertl_estimate(self._registers, self.REGISTERS, self._RANK_BITS))

    # -- persistence ------------------------------------------------------------------------

    def to_state(self) -> dict:
        """JSON-serializable state: the sorted hashes as 16-digit hex strings (exact mode,
        no 64-bit integers for JSON readers that lose them), or the registers as base64 of
        their zlib-compressed bytes."""
        state: dict[str, object] = {"threshold": self.threshold, "precision": self.PRECISION}
        if self._registers is None:
            state["hashes"] = [format(h, "016x") for h in sorted(self._hashes)]
        else:
            state["registers"] = base64.b64encode(
                zlib.compress(bytes(self._registers))).decode("ascii")
        return state

    @classmethod
    def from_state(cls, d: dict) -> DistinctCounter:
        if d.get("precision") != cls.PRECISION:
            raise ValueError(f"bad DistinctCounter state: precision {d.get('precision')!r}")
        counter = cls(d["threshold"])
        if "registers" in d:
            registers = bytearray(zlib.decompress(base64.b64decode(d["registers"])))
            if len(registers) != cls.REGISTERS or max(registers) > cls._RANK_BITS + 1:
                raise ValueError("bad DistinctCounter state: registers")
            counter._registers = registers
        else:
            hashes = {int(h, 16) for h in d["hashes"]}
            if len(hashes) > counter.threshold or any(h >> 64 for h in hashes):
                raise ValueError("bad DistinctCounter state: hashes")
            counter._hashes = hashes
        return counter

    def __eq__(self, other) -> bool:
        if not isinstance(other, DistinctCounter):
            return NotImplemented
        return (self.threshold == other.threshold and self._hashes == other._hashes
                and self._registers == other._registers)

    __hash__ = None     # type: ignore[assignment]  # mutable: unhashable, as equal ones differ later

    def __repr__(self) -> str:
        mode = "exact" if self._registers is None else "hll"
        return f"DistinctCounter({mode}, estimate={self.estimate()})"
