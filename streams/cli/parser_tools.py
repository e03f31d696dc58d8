"""Arguments of the commands that judge and exercise kpi-pulse: evaluate, report, bench, hostile
and soak."""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.cli.arguments import positive, ratio
from streams.tools.bench_catalog import CATALOG_NAMES


def add_evaluate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="judge the anomaly detectors on simulated weeks with labelled incidents",
        description="Simulate weeks of events offline with planned incidents (spikes, dips, "
        "level shifts, slow drifts, seasonality breaks, silent sources), run them through the "
        "same core as the worker, and score the alerts of our detectors and of a plain EWMA "
        "z-score baseline (same lifecycle) against the ground truth: precision, recall, F1 and "
        "median time to detect, per incident kind. Progress on stderr; takes a few minutes for "
        "the default scenario (about 20 s per simulated day).",
    )
    evaluate.add_argument(
        "--scenario",
        choices=("default", "bursty", "sparse"),
        default="default",
        help="default: the clean company; bursty: bursty hours and heavy-tailed amounts; "
        "sparse: 0.05 events/s, sparse count series (options below override it)",
    )
    evaluate.add_argument(
        "--burstiness", type=float, help="CV of an hourly gamma burst factor (default 0)"
    )
    evaluate.add_argument(
        "--amount-sigma", type=float, help="lognormal spread of amounts (default 0.5)"
    )
    evaluate.add_argument(
        "--regime-changes",
        type=int,
        default=0,
        metavar="N",
        help="also N persistent revenue level shifts, labelled at their onset only (default 0)",
    )
    evaluate.add_argument(
        "--series",
        type=Path,
        metavar="DIR",
        help="instead of simulating: judge the detectors on DIR/*.csv (timestamp,value), "
        "with --labels",
    )
    evaluate.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="labelled incident windows of --series: CSV series,start,end (series = file stem)",
    )
    evaluate.add_argument("--days", type=positive, default=21.0, help="simulated days (21)")
    evaluate.add_argument(
        "--warmup-days", type=float, default=9.0, help="days without incidents first (9)"
    )
    evaluate.add_argument("--rate", type=positive, help="mean events/s (1)")
    evaluate.add_argument("--seed", type=int, default=7, help="random seed (7)")
    evaluate.add_argument(
        "--window", default="1h", help="window size of the series judged (default 1h)"
    )
    evaluate.add_argument(
        "--weekly-amplitude",
        type=float,
        default=0.2,
        help="weekend dip of the traffic (default 0.2: weekends at 0.8x)",
    )
    evaluate.add_argument(
        "--ground-truth", type=Path, help="also write the incidents' ground truth CSV here"
    )
    evaluate.add_argument(
        "--verbose", action="store_true", help="list every false alarm and missed incident"
    )
    evaluate.add_argument(
        "--demo",
        nargs="?",
        const="now",
        metavar="START",
        help="instead: replay `pulse demo --incidents` offline as if started at START (ISO "
        "8601, UTC unless it has an offset; default now: detection depends on the hour of the "
        "day) and list what on-call would receive: each planned incident's page, its root and "
        "when it resolved, and every page that matches no incident (~2 min)",
    )
    evaluate.add_argument(
        "--no-incidents",
        action="store_true",
        help="with --demo: the normal demo stream, warm, no planned incident (every page is false)",
    )
    evaluate.add_argument(
        "--minutes",
        type=positive,
        default=40.0,
        help="with --demo: minutes of live stream after START (40: the last incident ends 33 "
        "minutes in)",
    )


def add_report(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report",
        help="draw a series with its expected band and alerts: PNG + self-contained HTML",
        description="Read the CSV that `pulse detect` reads or writes (timestamp,value"
        "[,anomaly_score]) or that `pulse backtest` writes (choose the series with --kpi, "
        "--window, --dimensions; flows and balances are added up over the matching series), "
        "score it with the stream's detector and alert lifecycle, and write OUT.png and "
        "OUT.html (the chart inline as SVG, and the alerts as a table). Needs matplotlib "
        "(the `report` extra; `make setup` installs it).",
    )
    report.add_argument("file", type=Path, help="CSV from or for pulse detect, or pulse backtest")
    report.add_argument(
        "--output",
        type=Path,
        metavar="OUT",
        help="write OUT.png and OUT.html (default: FILE without its suffix, plus -report)",
    )
    report.add_argument("--kpi", help="backtest files: the KPI to draw")
    report.add_argument("--window", help="backtest files: its window (default: the shortest)")
    report.add_argument(
        "--dimensions",
        default="",
        metavar="K=V;K=V",
        help="backtest files: only series with these dimension values (default: all)",
    )
    report.add_argument(
        "--step",
        type=positive,
        metavar="SECONDS",
        help="the series' spacing (default: learned, as pulse detect does)",
    )


def add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure pipeline throughput against a plain-consumer ceiling",
        description="Produce the same events once; measure a plain aiokafka consumer that decodes "
        "and validates them (the ceiling) and the full worker pipeline to final state; print "
        "events/s for both and `ratio: pipeline / ceiling`.",
    )
    bench.add_argument("--events", type=int, default=200_000, help="events (default 200000)")
    bench.add_argument("--partitions", type=int, default=4, help="input partitions (default 4)")
    bench.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    bench.add_argument(
        "--simulated-rate",
        type=positive,
        default=50.0,
        help="events per simulated second (default 50, as the demo): how much event time the "
        "events span, so how many windows close (detection works per closed window)",
    )
    bench.add_argument(
        "--catalog",
        choices=CATALOG_NAMES,
        default="full",
        help="the pipeline's KPI catalog (default full; revenue-orders: revenue and orders per "
        "business unit and region at 1m, cut from the real catalog, the job of --peers)",
    )
    bench.add_argument(
        "--peers",
        metavar="VENVS",
        help="instead: the revenue + orders job on kpi-pulse, Bytewax and Quix Streams against "
        "the ceiling, each peer's result checked; VENVS holds a venv per peer (`make "
        "bench-peers` makes them and runs this)",
    )
    bench.add_argument(
        "--replay",
        type=int,
        metavar="RECORDS",
        help="instead: time the replay of RECORDS live-sized changelog records (what a restart "
        "costs per partition since its last snapshot) against a plain read of them",
    )
    bench.add_argument(
        "--merge",
        action="store_true",
        help="instead: the merge stage's partials/s against a plain consumer decoding them, and "
        "its added latency from a window's close at a worker to the company-wide record (p50/p99)",
    )
    bench.add_argument(
        "--with-faust",
        action="store_true",
        help="also measure a per-event Faust agent doing the same work (once, ~30 s more)",
    )
    bench.add_argument(
        "--latency",
        type=positive,
        metavar="RATE",
        help="then offer RATE events/s with event time = now to a fresh worker and print start "
        "-> ready, publish -> applied and window end -> KPI record (p50/p99), and RSS",
    )
    bench.add_argument(
        "--latency-seconds",
        type=positive,
        default=90.0,
        help="how long the latency run offers events (default 90: a 1m window or more closes)",
    )


def add_hostile(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hostile = commands.add_parser(
        "hostile",
        help="throw hostile input at a worker and account for every message",
        description="Produce MESSAGES messages, about a third of them hostile (24 kinds: empty, "
        "non-JSON, invalid UTF-8, deep nesting, at and over PULSE_MAX_EVENT_BYTES, unknown types, "
        "missing and mistyped fields, NaN, bad amounts and currencies, timestamps out of range "
        "or without a zone, resends, late events, null and binary keys, odd headers, unicode "
        "tricks, 128-character ids, budget periods at the edges, input the contract may tighten) "
        "and the rest valid simulator events, over PARTITIONS partitions; run `pulse worker` on "
        "them as a subprocess; print per kind and reason what was counted and dead-lettered, "
        "what was lost, answered wrongly or altered, and the worker's RSS and throughput. Exit 1 "
        "unless every message is accounted for and the worker is still alive. Starts an "
        "embedded broker unless PULSE_KAFKA_BOOTSTRAP is set; other PULSE_* settings reach the "
        "worker.",
    )
    hostile.add_argument(
        "--messages", type=int, default=100_000, help="messages in all (default 100000)"
    )
    hostile.add_argument("--partitions", type=int, default=4, help="input partitions (default 4)")
    hostile.add_argument("--seed", type=int, default=17, help="random seed (default 17)")
    hostile.add_argument(
        "--hostile-ratio",
        type=ratio,
        default=0.35,
        help="share of hostile messages (default 0.35; about two in three of them are bad "
        "input, the rest resends, late or odd but valid events: some 0.24 of the stream, well "
        "under the bad-ratio guard's PULSE_MAX_BAD_RATIO of 0.5)",
    )


SOAK_DESCRIPTION = """\
Run a real `pulse worker` as a child process for a long time at a steady load, and judge whether
its memory stays flat and it keeps up.

Starts the embedded broker (unless PULSE_KAFKA_BOOTSTRAP is set) and a fresh topic, runs
`pulse worker` on it (its own process: the RSS measured is the worker's, from /proc/PID/status
VmRSS), and publishes simulated events at --rate events/s with event time = now for --duration
seconds. Every --every seconds it prints a progress line:
    [   120s] sent 60012 | lag 0 | rss 61.4 MB | join 60000 (evicted 4410)
(lag: messages not yet read by the worker, from its /readyz, `?` before partitions are assigned;
join: entries of the order -> delivery join and those evicted at its bound, from its /metrics).
After publishing, the worker gets --drain seconds to read to the end; then one summary line:
    soak: rss after warm-up 58.2 MB (at 360s), at end 60.1 MB, change +3.3% | peak 61.0 MB |
    max lag 812 | final lag 0 | sent 900021 | PASS

RSS after warm-up is the first sample at --warmup of the run (default 20%: dedupe memory, minute
buckets, pools filling); at end is the sample after the drain.

Legitimate growth: the cycle-time join remembers every order for 30 days of event time (~190
bytes each, ~3.5 MB a minute at 500 events/s) up to PULSE_JOIN_MAX_ENTRIES per partition (default
1000000). No 30-minute run reaches that, so the soak runs the worker with --join-max-entries
(default 20000 per partition: full within ~4 minutes at 500 events/s, inside the warm-up); RSS
after warm-up then includes the join at its bound, and growth after it is not the join's.

Exit codes: 0 passed; 1 RSS grew more than --max-growth after warm-up, the lag did not return to 0
within --drain, or the worker died (its log's path is printed at start); 130 interrupted (Ctrl-C
or SIGTERM stop the publisher, the worker and the broker cleanly and print the summary so far).
Takes --duration plus up to --drain seconds; not part of CI (`make soak` runs the 30-minute one).
"""


def add_soak(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    soak = commands.add_parser(
        "soak",
        help="a long steady run of a real worker: RSS flat after warm-up, lag back to 0",
        description=SOAK_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    soak.add_argument(
        "--duration",
        type=positive,
        default=1800.0,
        help="seconds of publishing (default 1800: 30 minutes)",
    )
    soak.add_argument(
        "--rate",
        type=positive,
        default=500.0,
        help="events/s, steady whatever the hour (default 500; 2%% of them bad, see --bad-ratio)",
    )
    soak.add_argument(
        "--every", type=positive, default=30.0, help="seconds between progress lines (default 30)"
    )
    soak.add_argument(
        "--warmup",
        type=ratio,
        default=0.2,
        help="share of the run after which RSS is the baseline (default 0.2)",
    )
    soak.add_argument(
        "--max-growth",
        type=ratio,
        default=0.10,
        help="RSS growth after warm-up that still passes, as a share (default 0.10 = 10%%)",
    )
    soak.add_argument(
        "--drain",
        type=positive,
        default=60.0,
        help="seconds the worker gets after publishing to read to the end (default 60)",
    )
    soak.add_argument(
        "--partitions", type=int, default=3, help="partitions of the input topic (default 3)"
    )
    soak.add_argument(
        "--join-max-entries",
        type=int,
        default=20_000,
        help="PULSE_JOIN_MAX_ENTRIES for the worker: the cycle-time join's bound per partition "
        "(default 20000, reached inside the warm-up at 500 events/s; 0 = the worker's own)",
    )
    soak.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    soak.add_argument(
        "--bad-ratio", type=ratio, default=0.02, help="share of bad messages (default 0.02)"
    )
