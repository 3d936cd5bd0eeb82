"""Sketches: quantiles within the documented relative error of the exact ones, distinct
counts exact below the threshold and within 3 standard errors above, merges exactly equal to
one pass, JSON and pickle round trips, hashes stable across processes."""
import base64
import hashlib
import json
import math
import pickle
import random
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from plogd.sketches import DistinctCounter, QuantileSketch, stable_hash64

N = 10**6
QS = (0, 0.5, 0.9, 0.95, 0.99, 0.999, 1)
ROUNDING = 1e-12        # float rounding of log() near bucket edges (documented)


def exact_quantile(sorted_values, q):
    """The documented rank definition: x[floor(q * (n - 1))]."""
    return sorted_values[int(q * (len(sorted_values) - 1))]


def relative_error(estimate, exact):
    if exact == 0:
        return 0.0 if estimate == 0 else math.inf
    return abs(estimate - exact) / exact


def add_in_batches(sketch, values, rng, low=1, high=5000):
    i = 0
    while i < len(values):
        size = rng.randint(low, high)
        sketch.add_many(values[i:i + size])
        i += size


def random_parts(values, k, rng):
    """values shuffled, cut into k parts (some possibly empty)."""
    values = list(values)
    rng.shuffle(values)
    cuts = sorted(rng.randint(0, len(values)) for _ in range(k - 1))
    return [values[a:b] for a, b in zip([0] + cuts, cuts + [len(values)])]


# -- QuantileSketch: accuracy ---------------------------------------------------------------

def _uniform(r):
    return [r.random() * 100 for _ in range(N)]


def _lognormal_ms(r):       # request_time: median 0.1 s, rounded to 3 decimals like nginx
    return [round(math.exp(r.gauss(math.log(0.1), 1.0)), 3) for _ in range(N)]


def _exponential(r):
    return [r.expovariate(5.0) for _ in range(N)]


def _bimodal(r):            # fast cached hits and slow upstream calls
    return [abs(r.gauss(0.05, 0.01)) if r.random() < 0.8 else abs(r.gauss(2.0, 0.3))
            for _ in range(N)]


def _duplicates(r):         # few distinct values, with zeros (e.g. a cache's 0.000)
    return r.choices([0, 0.0, 0.001, 0.002, 0.5, 1, 1.0, 30, 60, 60.5], k=N)


def _wide(r):               # log-uniform over 1e-3 .. 1e4
    return [10 ** r.uniform(-3, 4) for _ in range(N)]


DISTRIBUTIONS = {"uniform": _uniform, "lognormal-3-decimals": _lognormal_ms,
                 "exponential": _exponential, "bimodal": _bimodal,
                 "many-duplicates": _duplicates, "span-1e-3..1e4": _wide}


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_quantiles_within_relative_accuracy(name):
    rng = random.Random(list(DISTRIBUTIONS).index(name) + 1)
    values = DISTRIBUTIONS[name](rng)
    sketch = QuantileSketch()
    add_in_batches(sketch, values, rng, 1000, 8000)
    exact = sorted(values)
    assert sketch.count == len(values)
    worst = 0.0
    for q, estimate in zip(QS, sketch.quantiles(QS)):
        error = relative_error(estimate, exact_quantile(exact, q))
        assert error <= sketch.relative_accuracy + ROUNDING, (q, estimate)
        assert sketch.quantile(q) == estimate
        worst = max(worst, error)
    assert sketch.quantile(0) == exact[0] and sketch.quantile(1) == exact[-1]  # clamped
    print(f"{name}: n={len(values)} worst relative error {worst:.5f} "
          f"(bound {sketch.relative_accuracy}), {len(sketch.to_state()['index'])} buckets")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 1e12, allow_nan=False),
                          st.integers(0, 10**9), st.sampled_from([0, 0.001, 1e-300])),
                min_size=1, max_size=300),
       st.sampled_from([0.001, 0.01, 0.05]), st.floats(0, 1))
def test_any_quantile_within_relative_accuracy(values, accuracy, q):
    sketch = QuantileSketch(accuracy)
    sketch.add_many(values)
    exact = exact_quantile(sorted(values), q)
    assert relative_error(sketch.quantile(q), exact) <= accuracy + ROUNDING


def test_empty_and_zero():
    sketch = QuantileSketch()
    assert sketch.quantile(0.5) is None and sketch.count == 0
    sketch.add_many([])
    assert sketch.quantile(0.99) is None
    sketch.add_many([0, 0.0, -0.0])
    assert sketch.count == 3 and sketch.quantiles([0, 1]) == [0.0, 0.0]
    sketch.add(2.5)
    assert sketch.quantile(0.5) == 0.0 and sketch.quantile(1) == 2.5
    with pytest.raises(ValueError):
        sketch.quantile(1.5)
    with pytest.raises(ValueError):
        sketch.quantile(math.nan)


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan, math.inf, 10**400])
def test_bad_values_rejected_and_nothing_added(bad):
    sketch = QuantileSketch()
    sketch.add_many([1.0, 2.0])
    before = QuantileSketch.from_state(sketch.to_state())
    with pytest.raises(ValueError):
        sketch.add_many([0, 3.0, bad, 4.0])
    with pytest.raises(ValueError):
        sketch.add(bad)
    assert sketch == before and sketch.count == 2


def test_bucket_count_bounded_and_high_quantiles_kept():
    """Absurd spans fold the lowest buckets; quantiles above the folded mass keep the
    bound, and folding is the same whatever the split."""
    rng = random.Random(7)
    values = [10 ** rng.uniform(-300, 300) for _ in range(20000)]
    one = QuantileSketch()
    one.add_many(values)
    assert len(one.to_state()["index"]) == one.max_buckets
    exact = sorted(values)
    for q in (0.9, 0.99, 1):
        assert relative_error(one.quantile(q), exact_quantile(exact, q)) <= 0.01 + ROUNDING
    merged = QuantileSketch()
    for part in random_parts(values, 7, rng):
        partial = QuantileSketch()
        add_in_batches(partial, part, rng, 1, 3000)
        merged.merge(partial)
    assert merged == one


# -- QuantileSketch: merging and persistence ------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_merged_partials_equal_one_pass(seed):
    rng = random.Random(seed)
    values = ([round(math.exp(rng.gauss(-2.3, 1.2)), 3) for _ in range(60000)]
              + [0.0] * 500 + [rng.uniform(0, 1e6) for _ in range(20000)])
    one = QuantileSketch()
    one.add_many(values)
    partials = []
    for part in random_parts(values, rng.randint(2, 12), rng):
        partial = QuantileSketch()
        add_in_batches(partial, part, rng)
        partials.append(pickle.loads(pickle.dumps(partial)))   # as sent between processes
    rng.shuffle(partials)
    merged = QuantileSketch()
    for partial in partials:
        merged.merge(QuantileSketch.from_state(json.loads(json.dumps(partial.to_state()))))
    assert merged == one
    assert merged.to_state() == one.to_state()
    assert merged.quantiles(QS) == one.quantiles(QS)
    # tree-shaped merge (aggregator merging merged states)
    left, right = QuantileSketch(), QuantileSketch()
    for i, partial in enumerate(partials):
        (left if i % 2 else right).merge(partial)
    right.merge(left)
    assert right == one


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 1e9, allow_nan=False), st.integers(0, 10**6)),
                max_size=200),
       st.integers(1, 6), st.randoms(use_true_random=False), st.sampled_from([2048, 4]))
def test_merge_property(values, k, rng, max_buckets):
    """Any split, any order, any batching: merged == one pass (also with folding: 4 buckets)."""
    one = QuantileSketch(max_buckets=max_buckets)
    one.add_many(values)
    merged = QuantileSketch(max_buckets=max_buckets)
    for part in random_parts(values, k, rng):
        partial = QuantileSketch(max_buckets=max_buckets)
        add_in_batches(partial, part, rng, 1, 20)
        merged.merge(partial)
    assert merged == one and merged.count == len(values)


def test_quantile_state_round_trips():
    rng = random.Random(11)
    sketch = QuantileSketch(0.02)
    sketch.add_many([rng.expovariate(1) for _ in range(5000)] + [0, 7, 10**6])
    text = json.dumps(sketch.to_state())
    back = QuantileSketch.from_state(json.loads(text))
    assert back == sketch and back.quantiles(QS) == sketch.quantiles(QS)
    assert back.count == sketch.count == 5003
    assert pickle.loads(pickle.dumps(sketch)) == sketch
    empty = QuantileSketch()
    assert QuantileSketch.from_state(json.loads(json.dumps(empty.to_state()))) == empty
    assert sketch != QuantileSketch(0.02) and sketch != back.to_state()
    with pytest.raises(ValueError):
        sketch.merge(QuantileSketch(0.01))


# -- DistinctCounter ------------------------------------------------------------------------

def ip(i: int) -> str:
    return f"{i >> 24 & 255}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def test_distinct_exact_below_threshold():
    counter = DistinctCounter()
    values = [ip(i) for i in range(1024)]
    rng = random.Random(3)
    batch = values + rng.choices(values, k=5000) + [None] * 10
    rng.shuffle(batch)
    add_in_batches(counter, batch, rng, 1, 700)
    assert counter.is_exact and counter.estimate() == 1024
    counter.add_many(["10.0.0.0"])          # ip(0) is "0.0.0.0": one more distinct
    assert not counter.is_exact and abs(counter.estimate() - 1025) <= 10
    small = DistinctCounter()
    small.add_many([None, None])
    assert small.estimate() == 0
    small.add_many([1, "1", 2, None, 2])    # str(value): 1 and "1" are the same value
    assert small.estimate() == 2


def test_distinct_within_three_standard_errors():
    counter = DistinctCounter()
    bound = 3 * DistinctCounter.STANDARD_ERROR
    rng = random.Random(4)
    added = 0
    for milestone in (10**4, 10**5, 10**6):
        while added < milestone:
            size = min(rng.randint(2000, 8000), milestone - added)
            batch = [ip(0x0A000000 + i) for i in range(added, added + size)]
            counter.add_many(batch + batch[: size // 3])          # duplicates inside batches
            added += size
        error = counter.estimate() / milestone - 1
        print(f"distinct {milestone}: estimate {counter.estimate()} ({error:+.4%})")
        assert abs(error) <= bound


def test_distinct_duplicates_do_not_change_the_state():
    rng = random.Random(5)
    values = [rng.getrandbits(40) for _ in range(30000)]
    counter = DistinctCounter()
    counter.add_many(values)
    state = counter.to_state()
    estimate = counter.estimate()
    counter.add_many(values[:1000])
    counter.add_many(rng.sample(values, 20000))
    assert counter.to_state() == state and counter.estimate() == estimate


@pytest.mark.parametrize("seed", range(3))
def test_distinct_merged_partials_equal_one_pass(seed):
    rng = random.Random(seed)
    values = [ip(rng.randrange(40000)) for _ in range(60000)]
    one = DistinctCounter()
    one.add_many(values)
    # parts overlap, and some stay exact while others become HLL
    parts = random_parts(values, rng.randint(2, 10), rng) + [values[:500], values[-900:]]
    partials = []
    for part in parts:
        partial = DistinctCounter()
        add_in_batches(partial, part, rng, 1, 4000)
        partials.append(pickle.loads(pickle.dumps(partial)))
    rng.shuffle(partials)
    merged = DistinctCounter()
    for partial in partials:
        merged.merge(DistinctCounter.from_state(json.loads(json.dumps(partial.to_state()))))
    assert merged == one and merged.estimate() == one.estimate()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 60), st.text(max_size=3), st.none()), max_size=120),
       st.integers(1, 6), st.randoms(use_true_random=False), st.sampled_from([0, 5, 30, 1024]))
def test_distinct_merge_property(values, k, rng, threshold):
    one = DistinctCounter(threshold)
    one.add_many(values)
    merged = DistinctCounter(threshold)
    for part in random_parts(values, k, rng):
        partial = DistinctCounter(threshold)
        add_in_batches(partial, part, rng, 1, 15)
        merged.merge(partial)
    assert merged == one
    truth = len({str(v) for v in values if v is not None})
    assert merged.is_exact == (truth <= threshold)
    if merged.is_exact:
        assert merged.estimate() == truth


def test_distinct_state_round_trips():
    for n in (0, 300, 5000):
        counter = DistinctCounter()
        counter.add_many([ip(i) for i in range(n)])
        back = DistinctCounter.from_state(json.loads(json.dumps(counter.to_state())))
        assert back == counter and back.estimate() == counter.estimate()
        assert pickle.loads(pickle.dumps(counter)) == counter
    with pytest.raises(ValueError):
        DistinctCounter(10).merge(DistinctCounter(20))


def test_distinct_hash_is_stable_across_processes():
    """Constants computed once: they must not change with PYTHONHASHSEED, the process or the
    platform, or states checkpointed / built elsewhere would not merge."""
    assert stable_hash64("192.168.1.10") == 0xF819A6D3D73958C6
    assert stable_hash64("192.168.1.10") == int.from_bytes(
        hashlib.blake2b(b"192.168.1.10", digest_size=8).digest(), "big")
    assert stable_hash64(12345) == stable_hash64("12345") == 0x74584B93E0C0F6A1
    assert stable_hash64("\u00e9") == 0xCB1ABF8BEFF3192F                     # UTF-8
    counter = DistinctCounter()
    counter.add_many([f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(100000)])
    assert counter.estimate() == 98543
    registers = zlib.decompress(base64.b64decode(counter.to_state()["registers"]))
    assert hashlib.sha256(registers).hexdigest()[:16] == "0e5f722d8cc93dd1"
