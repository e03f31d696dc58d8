"""Argument types shared by the commands' parsers: each refuses a bad value with a message."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.core.instants import parse_instant


def positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone {text!r}") from None


def ratio(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"must be a port number 0-65535 (0 = any free), got {text}"
        )
    return value


def when(text: str) -> datetime:
    try:
        return datetime.fromtimestamp(parse_instant(text, None, epoch=False), UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def simulation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rate",
        type=positive,
        default=50.0,
        help="mean events/s over a day (default 50); the simulated day runs at ~0.35x this at "
        "00:00 UTC and ~1.65x at 12:00 UTC",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument(
        "--bad-ratio", type=ratio, default=0.02, help="share of bad messages (default 0.02)"
    )
