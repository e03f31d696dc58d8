"""`pulse`: the command line of kpi-pulse.

(Longer than most modules: every command's arguments and `--help` text, and its thin dispatch to
the module that does the work; no command does its work here.)

Exit codes: 0 done; 1 a fatal runtime error (broker unusable, bad-event ratio exceeded);
2 a configuration or usage error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams import __version__
from streams.core.instants import parse_instant
from streams.errors import ConfigError, FatalError
from streams.logs import configure_logging, say
from streams.settings import Settings, load_settings

log = logging.getLogger("streams.cli")

EPILOG = """\
Configuration comes from PULSE_* environment variables (PULSE_KAFKA_BOOTSTRAP, PULSE_INPUT_TOPICS,
PULSE_TOPIC_PREFIX, PULSE_ALLOWED_LATENESS_SECONDS, PULSE_MAX_BAD_RATIO, ...; see README.md); a
PULSE_* variable that is no setting stops the command, naming it and the closest real name.
A secured cluster: PULSE_KAFKA_SECURITY_PROTOCOL, PULSE_KAFKA_SASL_*, PULSE_KAFKA_SSL_* (README,
"Connecting to a secured cluster").
Without PULSE_KAFKA_BOOTSTRAP, `demo`, `bench`, `hostile` and `soak` start an embedded broker.
Start with:  pulse demo
"""


DETECT_DESCRIPTION = """\
Score a univariate series offline with the anomaly detector the stream uses
(streams.detection.detectors.SeriesDetector), and print a one-line summary on stderr.

IN.csv: header `timestamp,value`. A timestamp is ISO 8601 / RFC 3339 (2026-01-05T10:00:00Z,
2026-01-05 11:00:00+01:00) or epoch seconds (1767607200); one without a zone is local time in
--timezone (UTC by default; an hour repeated by a DST change is read as its second occurrence).
Any sampling interval; gaps and irregular spacing are fine (the step is learned from many gaps).
Rows with the same timestamp are one point (the mean of their values; each row gets its score).
Rows out of order are put back in place when at most --max-disorder seconds (one day) behind the
newest row above them. An empty value cell is a gap: written with score 0.0000, not scored.
Daily and weekly seasonality are learned on UTC days.

OUT.csv: header `timestamp,value,anomaly_score`, one row per input row in the same order, timestamp
and value repeated exactly as given, anomaly_score in [0, 1] with 4 decimals. Causal in event
time: each score uses only the points at or before its time.

anomaly_score: 0 = as expected; 0.5 = at the edge of the expected band around the seasonal forecast,
or at the threshold of the change detector that catches slow drifts; 1 = far beyond it (see
docs/anomaly-detection.md). Warm-up: until the detector has seen enough values over enough time
(eight days of an hourly series) it is still learning the level, step and seasonality; those rows
are scored all the same, can score high, and the summary counts them apart.

A row that cannot be used (not 2 cells, an unparsable timestamp, a non-numeric value, a time more
than --max-disorder behind) is written with an empty score and reported on stderr as
`detect: IN.csv, line N: why`; the run goes on. Only an empty file or a wrong header stops it
(`pulse: ...`, exit code 2).

Summary: detect: ROWS rows (W warm-up, E empty, U unusable, R repeated, O reordered), step S s,
         period none|daily|weekly, N rows scored >= THRESHOLD after warm-up (first at TIMESTAMP),
         M during warm-up
"""


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone {text!r}") from None


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"must be a port number 0-65535 (0 = any free), got {text}"
        )
    return value


def _when(text: str) -> datetime:
    try:
        return datetime.fromtimestamp(parse_instant(text, None, epoch=False), UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_evaluate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    evaluate.add_argument("--days", type=_positive, default=21.0, help="simulated days (21)")
    evaluate.add_argument(
        "--warmup-days", type=float, default=9.0, help="days without incidents first (9)"
    )
    evaluate.add_argument("--rate", type=_positive, help="mean events/s (1)")
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


def _add_report(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        type=_positive,
        metavar="SECONDS",
        help="the series' spacing (default: learned, as pulse detect does)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulse",
        description="Live finance & operations KPIs and anomaly alerts from Kafka.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kpi-pulse {__version__}")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (PULSE_LOG_LEVEL)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="embedded broker + worker + simulator, with a live summary",
        description="Start an embedded Kafka broker (unless PULSE_KAFKA_BOOTSTRAP is set), a "
        "worker and the simulator; print where /metrics is and a live summary. Ctrl-C stops.",
    )
    demo.add_argument("--duration", type=_positive, help="stop by itself after SECONDS, exit 0")
    demo.add_argument(
        "--history-days",
        type=int,
        default=32,
        help="days of low-rate history published first, so daily and monthly KPIs have values "
        "(default 32; 0 = start with the live stream)",
    )
    demo.add_argument(
        "--metrics-port",
        type=_port,
        help="port for /metrics (default 9464, or any free one if taken; 0 = any free one)",
    )
    demo.add_argument(
        "--incidents",
        action="store_true",
        help="show anomaly detection: start from the last 4 hours at the live rate (instead of "
        "the quiet history) with a labelled revenue dip that ended 30 minutes ago, then live "
        "incidents after 3, 14 and 27 minutes; alerts go to pulse.anomalies and the log",
    )
    demo.add_argument(
        "--ground-truth",
        type=Path,
        default=Path("ground-truth.csv"),
        help="where --incidents writes the incidents' ground truth (default ground-truth.csv)",
    )
    _simulation_options(demo)

    worker = commands.add_parser(
        "worker",
        help="run one worker against PULSE_KAFKA_BOOTSTRAP",
        description="Consume the input topics, keep KPI state, serve /metrics and /healthz.",
    )
    worker.add_argument("--metrics-port", type=_port, help="port for /metrics (PULSE_METRICS_PORT)")

    commands.add_parser(
        "merge",
        help="run the merge stage alone: company-wide KPI values from the workers' partials",
        description="Read the workers' per-partition partials (<prefix>.partials) and publish "
        "each window's company-wide value to <prefix>.kpi, provisional then final (a Faust app "
        "with changelogged tables). Run the workers with PULSE_MERGE_STAGE=true and the same "
        "settings. Ctrl-C stops.",
    )

    simulate = commands.add_parser(
        "simulate",
        help="publish a realistic event stream (or write it as JSON lines)",
        description="Generate a company's events with daily seasonality, noise and a share of "
        "bad and duplicate messages. Same --seed and --start, same events.",
    )
    _simulation_options(simulate)
    simulate.add_argument("--duration", type=_positive, default=60.0, help="seconds (default 60)")
    simulate.add_argument("--start", type=_when, help="event time of the first event (RFC 3339)")
    simulate.add_argument("--topic", help="topic to publish to (default: first PULSE_INPUT_TOPICS)")
    simulate.add_argument(
        "--output", type=Path, help="write JSON lines to FILE instead; '-' = stdout"
    )
    simulate.add_argument(
        "--no-pacing", action="store_true", help="publish as fast as possible, not in real time"
    )
    simulate.add_argument(
        "--incidents",
        metavar="PLAN",
        help="labelled incidents: 'auto' for a default schedule after a quiet third of the run "
        "(at most 7 days), or a JSON plan file (a list of {kind, target, start, end or "
        "duration, magnitude, dimensions})",
    )
    simulate.add_argument(
        "--ground-truth",
        type=Path,
        metavar="FILE",
        help="write the incidents as CSV here (default ground-truth.csv with --incidents)",
    )
    simulate.add_argument(
        "--weekly-amplitude",
        type=float,
        default=0.0,
        help="weekend dip, 0 <= X < 1: rate x (1 - X) on Saturday and Sunday UTC, x (1 + 0.4 X) "
        "on weekdays (default 0)",
    )

    backtest = commands.add_parser(
        "backtest",
        help="run the KPI core offline over a JSON-lines file; CSV of all closed windows",
        description="Read one event envelope per line, compute every KPI of the catalog with the "
        "same core as the worker, and write kpi,window,window_start,window_end,dimensions,value "
        "for every closed window (the end of the input closes them all). Invalid lines are "
        "reported on stderr with their line number.",
    )
    backtest.add_argument("file", type=Path, help="JSON-lines file of events ('-' = stdin)")
    backtest.add_argument("--output", type=Path, help="write the CSV here instead of stdout")

    detect = commands.add_parser(
        "detect",
        help="score a timestamp,value CSV offline with the stream's anomaly detector",
        description=DETECT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    detect.add_argument(
        "--input",
        type=Path,
        required=True,
        metavar="IN.csv",
        help="CSV timestamp,value ('-' = stdin)",
    )
    detect.add_argument(
        "--output",
        type=Path,
        metavar="OUT.csv",
        help="CSV timestamp,value,anomaly_score (default or '-': stdout; a file is replaced only "
        "once the whole input is scored)",
    )
    detect.add_argument(
        "--step",
        type=_positive,
        metavar="SECONDS",
        help="the series' spacing (default: learned from the first 16 gaps, robust to missing "
        "rows)",
    )
    detect.add_argument(
        "--timezone",
        type=_zone,
        default="UTC",
        metavar="ZONE",
        help="IANA time zone of timestamps written without one (default UTC), e.g. Europe/Paris",
    )
    detect.add_argument(
        "--max-disorder",
        type=float,
        default=86_400.0,
        metavar="SECONDS",
        help="how far behind the newest row above it a row may be and still be scored in its "
        "place (default 86400)",
    )
    detect.add_argument(
        "--threshold",
        type=_ratio,
        default=0.5,
        help="score counted as high in the summary (default 0.5); the output is not filtered",
    )

    _add_report(commands)
    _add_evaluate(commands)

    generate = commands.add_parser(
        "generate",
        help="regenerate the committed files derived from the catalog and the contract",
        description="Write the JSON Schemas (schemas/json), the Prometheus recording and alert "
        "rules (deploy/prometheus/rules), the Alertmanager configuration (deploy/alertmanager) "
        "and the Grafana dashboards (grafana/dashboards), all from the event models and the KPI "
        "catalog. Run it from a source checkout after changing either, and commit the result. "
        "Money panels are labelled in PULSE_REPORTING_CURRENCY (default EUR: the committed "
        "boards).",
    )
    generate.add_argument(
        "--check", action="store_true", help="only report drift; exit 1 when files differ"
    )
    generate.add_argument(
        "--grafana-url",
        help="Grafana base URL in the alerts' dashboard links "
        "(default http://localhost:3000, the docker-compose Grafana)",
    )
    generate.add_argument(
        "--runbook-url",
        help="web address of docs/runbook.md for the alerts' runbook_url (default: the "
        "repository path docs/runbook.md; set it to where your clone is published)",
    )

    _bench_parser(commands)
    _hostile_parser(commands)
    _soak_parser(commands)
    return parser


def _bench_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        type=_positive,
        default=50.0,
        help="events per simulated second (default 50, as the demo): how much event time the "
        "events span, so how many windows close (detection works per closed window)",
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
        type=_positive,
        metavar="RATE",
        help="then offer RATE events/s with event time = now to a fresh worker and print start "
        "-> ready, publish -> applied and window end -> KPI record (p50/p99), and RSS",
    )
    bench.add_argument(
        "--latency-seconds",
        type=_positive,
        default=90.0,
        help="how long the latency run offers events (default 90: a 1m window or more closes)",
    )


def _hostile_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        type=_ratio,
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


def _soak_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    soak = commands.add_parser(
        "soak",
        help="a long steady run of a real worker: RSS flat after warm-up, lag back to 0",
        description=SOAK_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    soak.add_argument(
        "--duration",
        type=_positive,
        default=1800.0,
        help="seconds of publishing (default 1800: 30 minutes)",
    )
    soak.add_argument(
        "--rate",
        type=_positive,
        default=500.0,
        help="events/s, steady whatever the hour (default 500; 2%% of them bad, see --bad-ratio)",
    )
    soak.add_argument(
        "--every", type=_positive, default=30.0, help="seconds between progress lines (default 30)"
    )
    soak.add_argument(
        "--warmup",
        type=_ratio,
        default=0.2,
        help="share of the run after which RSS is the baseline (default 0.2)",
    )
    soak.add_argument(
        "--max-growth",
        type=_ratio,
        default=0.10,
        help="RSS growth after warm-up that still passes, as a share (default 0.10 = 10%%)",
    )
    soak.add_argument(
        "--drain",
        type=_positive,
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
        "--bad-ratio", type=_ratio, default=0.02, help="share of bad messages (default 0.02)"
    )


def _simulation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rate",
        type=_positive,
        default=50.0,
        help="mean events/s over a day (default 50); the simulated day runs at ~0.35x this at "
        "00:00 UTC and ~1.65x at 12:00 UTC",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument(
        "--bad-ratio", type=_ratio, default=0.02, help="share of bad messages (default 0.02)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides: dict[str, object] = {}
        if args.command == "worker" and args.metrics_port is not None:
            overrides["metrics_port"] = args.metrics_port
        if args.log_level:
            overrides["log_level"] = args.log_level.upper()
        settings = load_settings(**overrides)
        configure_logging(settings.log_level, settings.log_format)
        return _dispatch(args, settings)
    except ConfigError as exc:
        say(f"pulse: configuration error: {exc}")
        return 2
    except FatalError as exc:
        log.critical("%s", exc)
        say(f"pulse: stopped: {exc}", logged=True)
        return 1
    except KeyboardInterrupt:
        return 130


def tune_gc() -> None:
    """Collect young objects every 100k allocations instead of every 700.

    A worker keeps hundreds of thousands of live objects (dedupe ids, join entries, window
    buckets) and allocates several per event, so the default threshold runs a collection every
    few dozen events for almost nothing to free. Measured on decode + apply: +20-30%.
    """
    gc.freeze()  # what start-up allocated is never garbage
    gc.set_threshold(100_000, 50, 100)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in {"demo", "worker", "bench", "backtest"}:
        tune_gc()
    commands: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "generate": lambda a, _: _generate(a),
        "demo": _demo,
        "worker": lambda _, s: _worker(s),
        "merge": lambda _, s: _merge(s),
        "backtest": _backtest,
        "evaluate": lambda a, _: _evaluate(a),
        "detect": lambda a, _: _detect(a),
        "report": lambda a, _: _report(a),
        "simulate": _simulate,
        "bench": _bench,
        "hostile": _hostile,
        "soak": _soak,
    }
    return commands[args.command](args, settings)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from streams.tools.demo import DemoOptions, run_demo  # noqa: PLC0415 - keep `--help` fast

    options = DemoOptions(
        duration=args.duration,
        history_days=args.history_days,
        metrics_port=args.metrics_port,
        rate=args.rate,
        seed=args.seed,
        bad_ratio=args.bad_ratio,
        incidents=args.incidents,
        ground_truth=args.ground_truth,
    )
    interrupted = asyncio.run(run_demo(settings, options))
    return 130 if interrupted else 0


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.merge:
        from streams.tools.bench import say  # noqa: PLC0415
        from streams.tools.bench_merge import run_merge_bench  # noqa: PLC0415

        asyncio.run(run_merge_bench(settings, args.events, args.partitions, say))
        return 0
    if args.replay:
        from streams.tools.bench import say  # noqa: PLC0415
        from streams.tools.bench_replay import run_replay_bench  # noqa: PLC0415

        asyncio.run(run_replay_bench(settings, args.replay, args.rounds, say))
        return 0
    from streams.tools.bench import run_bench  # noqa: PLC0415

    asyncio.run(
        run_bench(
            settings,
            args.events,
            args.partitions,
            args.rounds,
            with_faust=args.with_faust,
            simulated_rate=args.simulated_rate,
            latency=args.latency,
            latency_seconds=args.latency_seconds,
        )
    )
    return 0


def _hostile(args: argparse.Namespace, settings: Settings) -> int:
    from streams.tools.hostile_run import run_hostile  # noqa: PLC0415

    report = asyncio.run(
        run_hostile(
            settings,
            args.messages,
            args.partitions,
            seed=args.seed,
            hostile_ratio=args.hostile_ratio,
        )
    )
    return 0 if report.ok else 1


def _soak(args: argparse.Namespace, settings: Settings) -> int:
    from streams.tools.soak import SoakOptions, run_soak  # noqa: PLC0415

    soak = SoakOptions(
        duration=args.duration,
        rate=args.rate,
        every=args.every,
        warmup=args.warmup,
        max_growth=args.max_growth,
        drain=args.drain,
        partitions=args.partitions,
        join_max_entries=args.join_max_entries,
        seed=args.seed,
        bad_ratio=args.bad_ratio,
    )
    result = asyncio.run(run_soak(settings, soak))
    return 130 if result.interrupted else 0 if result.passed else 1


def _generate(args: argparse.Namespace) -> int:
    from streams.generate.files import drift, write_all  # noqa: PLC0415
    from streams.generate.rules import Links  # noqa: PLC0415

    links = Links()
    if args.grafana_url:
        links = replace(links, grafana=args.grafana_url.rstrip("/"))
    if args.runbook_url:
        links = replace(links, runbook=args.runbook_url)
    currency = load_settings().reporting_currency
    if args.check:
        stale = drift(links=links, currency=currency)
        for path in stale:
            sys.stderr.write(f"{path} differs from what the code generates\n")
        if stale:
            sys.stderr.write("run `pulse generate` (or `make generate`) and commit the result\n")
        return 1 if stale else 0
    for path in write_all(links=links, currency=currency):
        sys.stdout.write(f"wrote {path}\n")
    return 0


def _backtest(args: argparse.Namespace, settings: Settings) -> int:
    from streams.offline.backtest import run_backtest  # noqa: PLC0415

    source = sys.stdin.buffer if str(args.file) == "-" else None
    if source is None and not args.file.is_file():
        raise ConfigError(f"backtest: no such file {args.file}")
    with contextlib.ExitStack() as stack:
        lines = source or stack.enter_context(args.file.open("rb"))
        try:
            out = (
                stack.enter_context(args.output.open("w", newline=""))
                if args.output is not None
                else sys.stdout
            )
        except OSError as exc:
            raise ConfigError(f"backtest: --output {args.output}: {exc.strerror or exc}") from None
        summary = run_backtest(lines, settings, out, sys.stderr)
    if summary.lines and not summary.counted:
        # Not one event counted: the file is not what the worker reads (the reasons are above).
        sys.stderr.write(f"pulse: backtest: every one of the {summary.lines} lines was rejected\n")
        return 1
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from streams.tools.evaluate import SCENARIOS, Scenario, main_report, run  # noqa: PLC0415
    from streams.tools.incidents import write_ground_truth  # noqa: PLC0415

    if args.series is not None or args.labels is not None:
        return _evaluate_series(args)
    preset: dict[str, float] = {"rate": 1.0, **SCENARIOS[args.scenario]}
    for name in ("rate", "burstiness", "amount_sigma"):
        if getattr(args, name) is not None:
            preset[name] = getattr(args, name)
    try:
        scenario = Scenario(
            days=args.days,
            warmup_days=args.warmup_days,
            seed=args.seed,
            window=args.window,
            weekly_amplitude=args.weekly_amplitude,
            rate=preset["rate"],
            burstiness=preset.get("burstiness", 0.0),
            amount_sigma=preset.get("amount_sigma", 0.5),
            regime_changes=args.regime_changes,
        )
    except ValueError as exc:
        raise ConfigError(f"evaluate: {exc}") from None
    evaluation = run(scenario, progress=sys.stderr)
    if args.ground_truth is not None:
        with args.ground_truth.open("w", newline="") as out:
            write_ground_truth(evaluation.incidents, out)
    main_report(evaluation, sys.stdout, verbose=args.verbose)
    return 0


def _evaluate_series(args: argparse.Namespace) -> int:
    from streams.tools.evaluate_series import run_series, series_report  # noqa: PLC0415

    if args.series is None or args.labels is None:
        raise ConfigError("evaluate: --series DIR and --labels FILE go together")
    try:
        reports, notes = run_series(args.series, args.labels)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"evaluate: {exc}") from None
    for note in notes:
        sys.stderr.write(f"evaluate: {note}\n")
    series_report(reports, sys.stdout)
    return 0


def _detect(args: argparse.Namespace) -> int:
    from streams.offline.detect import DetectError, run_detect  # noqa: PLC0415

    to_stdout = args.output is None or str(args.output) == "-"
    # Written beside the target and renamed at the end: a stopped run leaves no half file that
    # looks complete (and IN.csv may be OUT.csv).
    partial = None if to_stdout else args.output.with_name(f".{args.output.name}.partial")
    try:
        with contextlib.ExitStack() as stack:
            inp = (
                sys.stdin
                if str(args.input) == "-"
                else stack.enter_context(args.input.open(newline="", encoding="utf-8-sig"))
            )
            out = (
                sys.stdout
                if partial is None
                else stack.enter_context(partial.open("w", newline="", encoding="utf-8"))
            )
            summary = run_detect(
                inp,
                out,
                step=args.step,
                threshold=args.threshold,
                timezone=args.timezone,
                max_disorder=args.max_disorder,
            )
        if partial is not None:
            partial.replace(args.output)
    except DetectError as exc:
        source = "stdin" if str(args.input) == "-" else args.input
        raise ConfigError(f"detect: {source}, {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"detect: {exc}") from None
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
    source = "stdin" if str(args.input) == "-" else args.input
    for note in summary.notes:
        sys.stderr.write(f"detect: {source}, {note}\n")
    sys.stderr.write(summary.line() + "\n")
    return 0


def _report(args: argparse.Namespace) -> int:
    from streams.core.compiler import compile_catalog  # noqa: PLC0415
    from streams.offline.report import (  # noqa: PLC0415
        ReportError,
        Selection,
        parse_dimensions,
        read_series,
        score_series,
    )
    from streams.offline.report_chart import render_html, render_png  # noqa: PLC0415

    base = args.output or args.file.with_name(f"{args.file.stem}-report")
    try:
        selection = Selection(args.kpi, args.window, parse_dimensions(args.dimensions))
        with args.file.open(newline="", encoding="utf-8-sig") as inp:
            title, series = read_series(inp, compile_catalog(), selection)
        report = score_series(title, series, step=args.step)
        if not report.points:
            raise ReportError("no values to draw")
        png, page = base.with_name(base.name + ".png"), base.with_name(base.name + ".html")
        render_png(report, png)
        render_html(report, page)
    except (ReportError, ValueError) as exc:
        raise ConfigError(f"report: {args.file}, {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"report: {exc}") from None
    sys.stderr.write(
        f"report: {len(report.points)} points ({report.gaps} gaps), {len(report.outside)} "
        f"outside the band, {len(report.alerts)} alerts; wrote {png} and {page}\n"
    )
    return 0


def _require_bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise ConfigError(
            "PULSE_KAFKA_BOOTSTRAP is not set: point it at your Kafka (host:port), "
            "or use `pulse demo` for an embedded broker"
        )
    return settings.kafka_bootstrap


def _worker(settings: Settings) -> int:
    import signal  # noqa: PLC0415

    from streams.kafka.connection import connection  # noqa: PLC0415
    from streams.worker.worker import Worker  # noqa: PLC0415

    kafka = connection(settings, _require_bootstrap(settings))
    received: list[signal.Signals] = []

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            received.append(sig)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        await Worker(settings, kafka).run(stop)
        log.info("worker stopped cleanly")

    asyncio.run(run())
    # Both stop cleanly (everything read is written first); SIGTERM is how an orchestrator
    # stops a worker (0), SIGINT a person at a terminal (130, as for any interrupted command).
    return 130 if received[:1] == [signal.SIGINT] else 0


def _merge(settings: Settings) -> int:
    import signal  # noqa: PLC0415

    from streams.merge.stage import MergeStage  # noqa: PLC0415 - keep `--help` fast (Faust)

    bootstrap = _require_bootstrap(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await MergeStage(settings, bootstrap).run(stop)
        log.info("merge stage stopped cleanly")

    asyncio.run(run())
    return 0


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from streams.tools.incidents import (  # noqa: PLC0415
        Incident,
        load_plan,
        plan_incidents,
        write_ground_truth,
    )
    from streams.tools.publisher import publish, write_jsonl  # noqa: PLC0415
    from streams.tools.simulator import SimulationConfig, simulate  # noqa: PLC0415

    start = args.start or datetime.now(UTC)
    incidents: tuple[Incident, ...] = ()
    if args.incidents == "auto":
        warmup = min(args.duration / 3, 7 * 86_400.0)
        incidents = plan_incidents(start.timestamp(), args.duration, args.seed, warmup=warmup)
    elif args.incidents is not None:
        try:
            incidents = load_plan(args.incidents)
        except (OSError, ValueError) as exc:  # ValueError names the file, entry and field
            raise ConfigError(f"--incidents: {exc}") from exc
    try:
        config = SimulationConfig(
            start=start,
            seed=args.seed,
            rate=args.rate,
            duration=args.duration,
            bad_ratio=args.bad_ratio,
            max_event_bytes=settings.max_event_bytes,
            incidents=incidents,
            weekly_amplitude=args.weekly_amplitude,
        )
    except ValueError as exc:  # what argparse cannot check alone, e.g. a plan's event types
        plan = "" if args.incidents in (None, "auto") else f" (in {args.incidents})"
        raise ConfigError(f"simulate: {exc}{plan}") from exc
    truth = args.ground_truth or (Path("ground-truth.csv") if args.incidents else None)
    if truth is not None:  # first: the labels exist even if publishing is interrupted
        try:
            with truth.open("w", newline="") as labels:
                write_ground_truth(incidents, labels)
        except OSError as exc:
            raise ConfigError(f"--ground-truth: {exc}") from exc
    if args.output is not None:
        out = sys.stdout.buffer if str(args.output) == "-" else args.output
        stats = write_jsonl(simulate(config), out)
    else:
        from streams.kafka.connection import connection  # noqa: PLC0415

        kafka = connection(settings, _require_bootstrap(settings))
        topic = args.topic or settings.input_topics[0]
        stats = asyncio.run(publish(kafka, topic, simulate(config), paced=not args.no_pacing))
    sys.stderr.write(f"simulate: {stats.sent} messages ({stats.bad} bad)\n")
    if truth is not None:
        count = f"{len(incidents)} incident{'' if len(incidents) == 1 else 's'}"
        sys.stderr.write(f"simulate: {count} written to {truth}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
