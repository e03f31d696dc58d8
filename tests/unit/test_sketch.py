"""`QuantileSketch` keeps only bin counts and reads quantiles from them without a `DDSketch`:
it must answer exactly what a `DDSketch` fed the same values one by one answers (what it kept
beside the bins before), value and type, through adds, merges, copies and the changelog's
JSON."""

from __future__ import annotations

from decimal import Decimal

from ddsketch import DDSketch
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.sketch import _MAPPING, RELATIVE_ACCURACY, QuantileSketch

QUANTILES = [Decimal(q) for q in ("0", "0.01", "0.25", "0.5", "0.9", "0.95", "0.99", "1")]
durations = st.one_of(
    st.just(0.0),
    st.floats(min_value=-5.0, max_value=-1e-6),  # ignored, as by the sketch
    st.floats(min_value=1e-6, max_value=1e9, allow_nan=False),
    st.integers(min_value=0, max_value=86400 * 30).map(float),
)


def reference(values: list[float]) -> DDSketch:
    """What `QuantileSketch` kept beside its bins before: a DDSketch fed every value >= 0."""
    sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
    for value in values:
        if value >= 0:
            sketch.add(value)
    return sketch


def answers(sketch: QuantileSketch) -> list[tuple[type, float | None]]:
    return [(type(value), value) for value in (sketch.quantile(q) for q in QUANTILES)]


def expected(values: list[float]) -> list[tuple[type, float | None]]:
    """The reference's answers, with their types (DDSketch answers an int 0 for a zero)."""
    ref = reference(values)
    return [
        (type(value), value)
        for value in (ref.get_quantile_value(float(q)) if ref.count else None for q in QUANTILES)
    ]


@settings(max_examples=1000, deadline=None)
@given(st.lists(durations, max_size=60), st.lists(durations, max_size=60))
def test_quantiles_are_those_of_a_ddsketch_fed_the_values(
    left: list[float], right: list[float]
) -> None:
    a, b = QuantileSketch(), QuantileSketch()
    for value in left:
        a.add(value)
    assert answers(a) == expected(left)
    for value in right:
        b.add(value)
    merged = a.copy()
    merged.merge(b)
    assert answers(merged) == expected(left + right)
    assert answers(a) == expected(left)  # the copy did not share its bins
    assert answers(QuantileSketch.from_json(merged.to_json())) == expected(left + right)
    merged.add(7.5)  # a change after a quantile was asked is seen by the next one
    assert answers(merged) == expected([*left, *right, 7.5])


def test_every_key_maps_back_to_itself() -> None:
    """A bin's value falls in the bin: building the DDSketch from bins loses nothing."""
    low, high = _MAPPING.key(_MAPPING.min_possible * 1.1), _MAPPING.key(_MAPPING.max_possible / 1.1)
    assert high - low > 70_000
    assert all(_MAPPING.key(_MAPPING.value(k)) == k for k in range(low, high))
