"""`pulse` and its commands' arguments: the parser and every `--help` text of the product's
commands (the tools' commands are in `parser_tools`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from streams import __version__
from streams.cli.arguments import port, positive, ratio, simulation_options, when, zone
from streams.cli.parser_tools import add_bench, add_evaluate, add_hostile, add_report, add_soak

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
    demo.add_argument("--duration", type=positive, help="stop by itself after SECONDS, exit 0")
    demo.add_argument(
        "--history-days",
        type=int,
        default=32,
        help="days of low-rate history published first, so daily and monthly KPIs have values "
        "(default 32; 0 = start with the live stream)",
    )
    demo.add_argument(
        "--metrics-port",
        type=port,
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
    simulation_options(demo)

    worker = commands.add_parser(
        "worker",
        help="run one worker against PULSE_KAFKA_BOOTSTRAP",
        description="Consume the input topics, keep KPI state, serve /metrics and /healthz.",
    )
    worker.add_argument("--metrics-port", type=port, help="port for /metrics (PULSE_METRICS_PORT)")

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
    simulation_options(simulate)
    simulate.add_argument("--duration", type=positive, default=60.0, help="seconds (default 60)")
    simulate.add_argument("--start", type=when, help="event time of the first event (RFC 3339)")
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
        type=positive,
        metavar="SECONDS",
        help="the series' spacing (default: learned from the first 16 gaps, robust to missing "
        "rows)",
    )
    detect.add_argument(
        "--timezone",
        type=zone,
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
        type=ratio,
        default=0.5,
        help="score counted as high in the summary (default 0.5); the output is not filtered",
    )

    add_report(commands)
    add_evaluate(commands)

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

    add_bench(commands)
    add_hostile(commands)
    add_soak(commands)
    return parser
