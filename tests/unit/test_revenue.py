"""Revenue math through PartitionState and WorkerState.

Settings from conftest: 60 s windows, watermark delay 5 s, lateness 30 s, 3 retained windows,
rates 1 USD = 0.9 EUR and 1 GBP = 1.25 EUR (reporting currency EUR).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from core_helpers import ClosedWindow, closed_revenue, revenue_1m, revenue_at

from streams.core import NO_WATERMARK, FxTable
from streams.errors import InvalidEvent

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z, a whole minute
RETAIL_EU = ("retail", "eu")
WHOLESALE_US = ("wholesale", "us")
ONLINE_APAC = ("online", "apac")
P0, P1, P2 = ("pulse.events", 0), ("pulse.events", 1), ("pulse.events", 2)


def series(name: tuple[str, str]) -> dict[str, str]:
    return {"business_unit": name[0], "region": name[1]}


def test_orders_minus_cancellations_minus_refunds_per_series_and_window(
    make_partition, make_envelope
):
    part = make_partition()
    for event in [
        make_envelope(at=T0 + 1, amount="100.00", currency="EUR"),
        make_envelope(at=T0 + 2, amount="20.00", currency="USD"),
        make_envelope(at=T0 + 3, type="order_cancelled", amount="10.00", currency="GBP"),
        make_envelope(at=T0 + 4, type="refund_issued", amount="5.00", currency="EUR"),
        make_envelope(at=T0 + 5, amount="40.00", currency="GBP", **series(WHOLESALE_US)),
        # Not revenue: they move the watermark and dedupe memory but no sum.
        make_envelope(at=T0 + 6, type="inventory_issued"),
        make_envelope(at=T0 + 7, type="expense_posted"),
        make_envelope(at=T0 + 8, type="feedback_submitted"),
        make_envelope(at=T0 + 61, amount="1.00", currency="EUR"),
    ]:
        part.apply(event)

    assert revenue_1m(part) == {
        T0: {
            # 100.00 + 20.00 * 0.9 - 10.00 * 1.25 - 5.00 = 100 + 18 - 12.50 - 5 = 100.50
            RETAIL_EU: Decimal("100.50"),
            # 40.00 GBP * 1.25
            WHOLESALE_US: Decimal("50.00"),
        },
        T0 + 60: {RETAIL_EU: Decimal("1.00")},
    }


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.10", "GBP", Decimal("0.12")),  # 0.10 * 1.25 = 0.125: tie, to the even cent 0.12
        ("0.15", "USD", Decimal("0.14")),  # 0.15 * 0.9 = 0.135: tie, to the even cent 0.14
        ("0.125", "EUR", Decimal("0.12")),
        ("0.135", "EUR", Decimal("0.14")),
        ("0.145", "EUR", Decimal("0.14")),  # half-even, not half-up (which would give 0.15)
        ("0.1251", "EUR", Decimal("0.13")),  # not a tie: nearest cent
        ("19.99", "USD", Decimal("17.99")),  # 17.991
    ],
)
def test_conversion_rounds_each_amount_to_the_cent_half_even(amount, currency, expected):
    fx = FxTable("EUR", {"USD": Decimal("0.9"), "GBP": Decimal("1.25")})

    assert fx.to_reporting(Decimal(amount), currency, 0.0) == expected


def test_each_event_is_rounded_before_summing(make_partition, make_envelope):
    part = make_partition()
    part.apply(make_envelope(at=T0 + 1, amount="0.10", currency="GBP"))  # 0.125 -> 0.12
    part.apply(make_envelope(at=T0 + 2, amount="0.15", currency="USD"))  # 0.135 -> 0.14
    part.apply(make_envelope(at=T0 + 3, amount="0.10", currency="GBP", **series(WHOLESALE_US)))
    part.apply(make_envelope(at=T0 + 4, amount="0.10", currency="GBP", **series(WHOLESALE_US)))
    part.apply(
        make_envelope(
            at=T0 + 5, type="refund_issued", amount="0.10", currency="GBP", **series(ONLINE_APAC)
        )
    )

    assert revenue_at(part, T0, RETAIL_EU) == Decimal("0.12") + Decimal("0.14")  # 0.26
    # 0.12 + 0.12 = 0.24; summing first (0.125 + 0.125 = 0.25) would not reconcile with a ledger.
    assert revenue_at(part, T0, WHOLESALE_US) == Decimal("0.24")
    assert revenue_at(part, T0, ONLINE_APAC) == Decimal("-0.12")


def test_unknown_currency_is_rejected_and_changes_nothing(make_partition, make_envelope):
    part = make_partition()
    part.apply(make_envelope(at=T0 + 1, amount="10.00", currency="EUR"))
    part.checkpoint(next_offset=1)  # start a clean changelog batch

    with pytest.raises(InvalidEvent) as caught:
        part.apply(make_envelope(event_id="yen-1", at=T0 + 50, amount="999", currency="JPY"))

    assert caught.value.reason == "unknown_currency"
    assert revenue_1m(part) == {T0: {RETAIL_EU: Decimal("10.00")}}
    assert part.watermark.max_event_time == T0 + 1  # the rejected T0 + 50 did not move it
    assert "yen-1" not in part.seen
    record = part.checkpoint(next_offset=2)
    assert (record["store"]["cells"], record["seen"]) == ([], [])
    # Not remembered, so a corrected resend with the same id counts.
    part.apply(make_envelope(event_id="yen-1", at=T0 + 50, amount="2.00", currency="USD"))
    assert revenue_at(part, T0, RETAIL_EU) == Decimal("11.80")  # 10.00 + 2.00 * 0.9


def test_unknown_currency_on_an_empty_partition_leaves_it_without_data(
    make_partition, make_envelope
):
    part = make_partition()

    with pytest.raises(InvalidEvent, match="unknown_currency"):
        part.apply(make_envelope(at=T0, currency="CHF"))

    assert not part.has_data
    assert part.watermark.max_event_time == NO_WATERMARK
    assert revenue_1m(part) == {}
    assert len(part.seen) == 0


def test_out_of_order_events_within_lateness_land_in_their_own_window(
    make_partition, make_envelope
):
    part = make_partition()
    part.apply(make_envelope(at=T0 + 70, amount="10.00"))  # [T0+60, T0+120); watermark T0+65
    # [T0, T0+60) accepts while watermark < T0 + 60 + 30 = T0 + 90.
    part.apply(make_envelope(at=T0 + 10, amount="3.00"))  # T0+65 < T0+90: counted in [T0, ...)
    part.apply(make_envelope(at=T0 + 94, amount="1.00"))  # watermark T0 + 89
    part.apply(make_envelope(at=T0 + 20, amount="2.00"))  # T0+89 < T0+90: still counted

    assert revenue_1m(part) == {
        T0: {RETAIL_EU: Decimal("5.00")},  # 3.00 + 2.00
        T0 + 60: {RETAIL_EU: Decimal("11.00")},  # 10.00 + 1.00
    }


def test_an_event_past_the_lateness_is_late_and_not_counted(make_partition, make_envelope):
    part = make_partition()
    part.apply(make_envelope(at=T0 + 10, amount="3.00"))
    part.apply(make_envelope(at=T0 + 95, amount="1.00"))  # watermark T0 + 90: [T0, T0+60) done

    with pytest.raises(InvalidEvent) as caught:
        part.apply(make_envelope(event_id="late-1", at=T0 + 30, amount="500.00"))

    assert caught.value.reason == "late"
    assert revenue_1m(part) == {
        T0: {RETAIL_EU: Decimal("3.00")},
        T0 + 60: {RETAIL_EU: Decimal("1.00")},
    }
    assert "late-1" not in part.seen
    assert part.watermark.max_event_time == T0 + 95


def feed(state, source, *events) -> None:
    part = state.assign(source)
    for event in events:
        part.apply(event)


def test_closed_window_is_the_newest_closed_on_every_partition_summed(make_state, make_envelope):
    state = make_state()
    feed(
        state,
        P0,
        make_envelope(at=T0 + 5, amount="100.00"),
        make_envelope(at=T0 + 10, amount="20.00", currency="USD", **series(WHOLESALE_US)),
        make_envelope(at=T0 + 70, amount="7.00", **series(ONLINE_APAC)),
        make_envelope(at=T0 + 130, amount="1.00"),  # P0 watermark T0 + 125
    )
    feed(
        state,
        P1,
        make_envelope(at=T0 + 20, amount="10.00", currency="GBP"),
        make_envelope(at=T0 + 40, type="refund_issued", amount="2.50"),
        make_envelope(at=T0 + 70, amount="5.00", **series(WHOLESALE_US)),  # watermark T0 + 65
    )
    state.assign(P2)  # owned but without data: does not hold the watermark back

    # min(T0 + 125, T0 + 65) = T0 + 65, so [T0, T0 + 60) is the newest window closed everywhere
    # (P0 alone has closed [T0 + 60, T0 + 120) too).
    assert state.watermark() == T0 + 65
    assert closed_revenue(state) == ClosedWindow(
        start=T0,
        end=T0 + 60,
        revenue={
            RETAIL_EU: Decimal("110.00"),  # P0 100.00 + P1 (10.00 * 1.25 - 2.50) = 100 + 10
            WHOLESALE_US: Decimal("18.00"),  # P0 20.00 * 0.9; P1's 5.00 is in the next window
            ONLINE_APAC: Decimal("0"),  # quiet in this window, still gets a value
        },
    )

    feed(state, P1, make_envelope(at=T0 + 130, amount="3.00"))  # P1 watermark T0 + 125

    # min(T0 + 125, T0 + 125) = T0 + 125: newest closed is [T0 + 60, T0 + 120).
    assert closed_revenue(state) == ClosedWindow(
        start=T0 + 60,
        end=T0 + 120,
        revenue={
            RETAIL_EU: Decimal("0"),  # its 1.00 and 3.00 are in [T0 + 120, ...)
            WHOLESALE_US: Decimal("5.00"),
            ONLINE_APAC: Decimal("7.00"),
        },
    )


def test_no_closed_window_without_data(make_state):
    state = make_state()
    assert closed_revenue(state) is None

    state.assign(P0)
    assert closed_revenue(state) is None


def test_expire_keeps_minutes_while_their_hour_can_be_shown(make_partition, make_envelope):
    part = make_partition(retained_windows=2)
    part.expire(part.watermark.value)  # nothing yet: a no-op
    for k in range(4):  # one 1.00 order 10 s into each hour T0 + 3600k (T0 is a whole hour)
        part.apply(make_envelope(event_id=f"e{k}", at=T0 + 3600 * k + 10, amount="1.00"))

    part.expire(part.watermark.value)

    # watermark = T0 + 10810 - 5 = T0 + 10805. Minutes make up their 1h window, so a minute goes
    # once its hour is final (hour end + 30 <= watermark) and older than the shown hour
    # (hour end <= watermark - max(2 x 60, 3600) = T0 + 7205): hours ending T0 + 3600 and
    # T0 + 7200 go; the hour ending T0 + 10800 is the one shown, T0 + 10800.. is open.
    assert sorted(revenue_1m(part)) == [T0 + 7200, T0 + 10800]
    # Ids are needed only while their 1m window accepts events: start_of(T0 + 10775) = T0 + 10740.
    assert dict(part.seen.items()) == {"e3": T0 + 10800}


def test_expire_keeps_minutes_whose_hour_still_accepts_late_events(make_partition, make_envelope):
    part = make_partition(retained_windows=2, allowed_lateness=3700.0)
    for k in range(4):
        part.apply(make_envelope(at=T0 + 3600 * k + 10, amount="1.00"))

    part.expire(part.watermark.value)

    # watermark T0 + 10805: the hour ending T0 + 7200 accepts events until T0 + 10900, so its
    # minute stays; only the hour ending T0 + 3600 (final at T0 + 7300) goes.
    assert sorted(revenue_1m(part)) == [T0 + 3600, T0 + 7200, T0 + 10800]


def test_closed_window_sums_partitions_even_when_one_is_far_ahead(make_state, make_envelope):
    # The worker shows the window closed on ALL partitions (the minimum watermark). A partition
    # more than `retained_windows` windows ahead of another (e.g. catching up a backlog) must
    # still hold that window: expiry is against the shown watermark, not its own.
    state = make_state(retained_windows=1)
    feed(
        state,
        P0,
        make_envelope(at=T0 + 10, amount="100.00"),
        make_envelope(at=T0 + 310, amount="1.00"),  # P0 watermark T0 + 305
    )
    feed(
        state,
        P1,
        make_envelope(at=T0 + 20, amount="10.00"),
        make_envelope(at=T0 + 70, amount="1.00"),  # P1 watermark T0 + 65
    )
    for part in state.partitions.values():
        part.expire(state.watermark())  # as the worker does after every batch

    # min watermark T0 + 65: the worker shows [T0, T0 + 60), where P0 had 100.00 and P1 10.00.
    closed = closed_revenue(state)
    assert closed is not None
    assert closed.start == T0
    assert closed.revenue[RETAIL_EU] == Decimal("110.00")


def test_a_future_stamped_event_counts_but_does_not_drag_the_watermark(
    make_partition, make_envelope
):
    part = make_partition()  # 60 s windows, delay 5, lateness 30
    now = T0 + 100
    # A skewed publisher clock, 200 s ahead: counted in its own window [T0 + 300, T0 + 360) ...
    part.apply(make_envelope(event_id="skewed", at=T0 + 300, amount="1.00"), now)
    # ... but the watermark stops at now - delay = T0 + 95, so an on-time event for
    # [T0 + 60, T0 + 120) is still accepted (T0 + 95 < T0 + 120 + 30).
    part.apply(make_envelope(event_id="on-time", at=T0 + 90, amount="2.00"), now)
    assert part.watermark.value == T0 + 95
    assert revenue_at(part, T0 + 300, RETAIL_EU) == Decimal("1.00")
    assert revenue_at(part, T0 + 60, RETAIL_EU) == Decimal("2.00")
