"""What each command runs: a thin call into the module that does the work (imported when the
command runs, so `--help` stays fast)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from streams.errors import ConfigError
from streams.settings import Settings, load_settings

log = logging.getLogger("streams.cli")


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.merge:
        from streams.tools.bench import say  # noqa: PLC0415
        from streams.tools.bench_merge import run_merge_bench  # noqa: PLC0415

        asyncio.run(run_merge_bench(settings, args.events, args.partitions, say))
        return 0
    if args.peers:
        from streams.tools.bench import say  # noqa: PLC0415
        from streams.tools.bench_peers import run_peers_bench  # noqa: PLC0415

        ok = asyncio.run(
            run_peers_bench(
                settings, args.events, args.partitions, args.rounds, venvs=Path(args.peers), say=say
            )
        )
        return 0 if ok else 1
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
            catalog=args.catalog,
        )
    )
    return 0


def cmd_hostile(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_soak(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_generate(args: argparse.Namespace) -> int:
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


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from streams.tools.evaluate import SCENARIOS, Scenario, main_report, run  # noqa: PLC0415
    from streams.tools.incidents import write_ground_truth  # noqa: PLC0415

    if args.series is not None or args.labels is not None:
        return _evaluate_series(args)
    if args.demo is not None:
        return _evaluate_demo(args)
    if args.no_incidents:
        raise ConfigError("evaluate: --no-incidents goes with --demo")
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


def _evaluate_demo(args: argparse.Namespace) -> int:
    from streams.tools.evaluate_demo import DemoRun, demo_report, run_demo  # noqa: PLC0415

    try:
        start = datetime.now(UTC) if args.demo == "now" else datetime.fromisoformat(args.demo)
    except ValueError:
        raise ConfigError(
            f"evaluate: --demo {args.demo!r} is not an ISO 8601 time (2026-12-06T14:00)"
        ) from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    try:
        spec = DemoRun(start, args.minutes, not args.no_incidents, seed=42)
    except ValueError as exc:
        raise ConfigError(f"evaluate: {exc}") from None
    demo_report(run_demo(spec, progress=sys.stderr), sys.stdout)
    return 0


def _evaluate_series(args: argparse.Namespace) -> int:
    from streams.tools.evaluate_series import run_series, series_report  # noqa: PLC0415

    if args.series is None or args.labels is None:
        raise ConfigError("evaluate: --series DIR and --labels FILE go together")
    try:
        run = run_series(args.series, args.labels)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"evaluate: {exc}") from None
    for note in run.notes:
        sys.stderr.write(f"evaluate: {note}\n")
    series_report(run, sys.stdout, verbose=args.verbose)
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
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


def cmd_report(args: argparse.Namespace) -> int:
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


def cmd_worker(settings: Settings) -> int:
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


def cmd_merge(settings: Settings) -> int:
    import signal  # noqa: PLC0415

    from streams.kafka.connection import connection  # noqa: PLC0415
    from streams.merge.stage import MergeStage  # noqa: PLC0415 - keep `--help` fast (Faust)

    bootstrap = connection(settings, _require_bootstrap(settings))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await MergeStage(settings, bootstrap).run(stop)
        log.info("merge stage stopped cleanly")

    asyncio.run(run())
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
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
