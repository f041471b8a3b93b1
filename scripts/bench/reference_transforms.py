#!/usr/bin/env python3
"""Reference pandas implementation of the pipeline's five transforms, for the benchmark.

The project computes its transforms in Rust with Polars (``crates/transforms``, called by
``fn compute`` in ``functions/transform/src/handler.rs``). This script computes the same
five transforms the way a Python project would, with plain vectorised pandas, so that the
benchmark can compare the two implementations on the same input:

1. cleaning: tag each observation with why it is dropped (missing field, duplicate,
   invalid price, aberrant price against the median of the trailing 6-hour neighbourhood),
   keep the rest, count the drops per reason;
2. hourly OHLC candles per coin and UTC hour;
3. daily ranking by day-over-day performance;
4. alerts on hourly closes moving beyond +/-5 % against the close 1 hour earlier (and on
   CoinGecko snapshots whose 24 h change is beyond it);
5. daily traded volume in USD per coin, UTC day and method.

The definitions, tie-breaks and defaults (CLEAN_MAX_DEVIATION_PCT=50,
CLEAN_NEIGHBOURHOOD_HOURS=6, ALERT_THRESHOLD_PCT=5, ALERT_WINDOW_HOURS=1) are those of the
Rust crate; the docstrings below only say where pandas needs extra care to match them.

Input: the Binance hourly candles shipped in ``data/binance_1h/`` (one observation per
candle: ``ts`` = open time in UTC, ``price`` = close, ``volume_base`` = volume,
``source`` = "replay"). Loading is timed on its own; the compute of the five transforms
is timed separately, best of ``--repeat`` runs. The 1-hour alert counts per coin are
checked against the counts the Rust tests assert on the same data, and the script exits
with status 1 if they differ, so a benchmark never reports timings of a wrong result.

Usage::

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install -r scripts/bench/requirements.txt
    /tmp/refvenv/bin/python scripts/bench/reference_transforms.py [--data DIR] [--repeat N] [--json]

With ``--json`` the report is one JSON object on stdout (what the benchmark reads);
without it, the same report is printed for a person. Errors go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

# Binance symbol of each shipped candle file -> CoinGecko coin id.
COINS: Mapping[str, str] = {
    "BTC": "bitcoin",
    "ETH": "ethereum",
    "SOL": "solana",
    "XRP": "ripple",
    "BNB": "binancecoin",
}

# 1-hour alerts per coin on the shipped candles with the default settings: the counts of
# data/README.md, asserted by crates/transforms/tests/real_data.rs.
EXPECTED_ALERTS: Mapping[str, int] = {
    "bitcoin": 28,
    "ethereum": 83,
    "solana": 363,
    "ripple": 268,
    "binancecoin": 122,
}

# Slack for "strictly beyond the threshold": 105 / 100 - 1 is 0.05000000000000004, which
# must not count as a move beyond 5 % (crates/transforms/src/expr.rs).
THRESHOLD_EPSILON = 1e-9

# A (coin, ts, source) identifies an observation; a second row with the same key is a duplicate.
KEY = ["coin", "ts", "source"]
# "Observation order" of rows at the same instant: by source, then price.
OBSERVATION_ORDER = ["ts", "source", "price"]

HOURLY_COLUMNS = ["coin", "hour", "avg_price", "open", "high", "low", "close", "observations"]
RANKING_COLUMNS = ["coin", "day", "last_price", "prev_last_price", "performance", "rank"]
ALERT_COLUMNS = ["coin", "at", "window_secs", "change_pct", "direction", "price_before", "price_after"]
VOLUME_COLUMNS = ["coin", "day", "method", "volume_usd"]

TRANSFORMS = ("clean", "hourly", "ranking", "alerts", "volume")


@dataclass(frozen=True)
class CleanConfig:
    """When a price is aberrant (CLEAN_MAX_DEVIATION_PCT, CLEAN_NEIGHBOURHOOD_HOURS).

    ``|price / median - 1| > max_deviation``, the median taken over the same coin's valid
    observations, all sources, in the trailing window ``(ts - neighbourhood, ts]``.
    """

    max_deviation: float = 0.5
    neighbourhood: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(hours=6))


@dataclass(frozen=True)
class AlertConfig:
    """When a move alerts (ALERT_THRESHOLD_PCT, ALERT_WINDOW_HOURS).

    ``|change| > threshold`` over ``window``, a whole number of hours.
    """

    threshold: float = 0.05
    window: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(hours=1))


@dataclass(frozen=True)
class Outputs:
    """Every frame ``fn compute`` of the transform function produces (full run)."""

    classified: pd.DataFrame
    clean: pd.DataFrame
    drop_counts: pd.DataFrame
    hourly: pd.DataFrame
    ranking: pd.DataFrame
    alerts: pd.DataFrame
    volume: pd.DataFrame


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def candle_file(data_dir: Path, symbol: str) -> Path:
    """The candle file of ``symbol`` in ``data_dir``, compressed or plain."""
    for name in (f"{symbol}USDT_1h.csv.gz", f"{symbol}USDT_1h.csv"):
        path = data_dir / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"no {symbol}USDT_1h.csv[.gz] in {data_dir}")


def load_observations(data_dir: Path) -> pd.DataFrame:
    """The observations frame of the shipped candles, one row per candle.

    Same columns as the Rust observations frame (crates/transforms/src/lib.rs); candles
    carry no CoinGecko fields, and ``ingested_at`` is ``ts`` as in the Rust tests.
    """
    frames = []
    for symbol, coin in COINS.items():
        raw = pd.read_csv(candle_file(data_dir, symbol), usecols=["open_time", "close", "volume"])
        # Local offsets (+02:00/+03:00, switching with daylight saving) -> UTC.
        ts = pd.to_datetime(raw["open_time"], utc=True, format="ISO8601")
        frames.append(
            pd.DataFrame(
                {
                    "coin": coin,
                    "ts": ts,
                    "price": raw["close"].astype("float64"),
                    "volume_base": raw["volume"].astype("float64"),
                    "volume_24h": np.nan,
                    "change_24h_pct": np.nan,
                    "source": "replay",
                    "ingested_at": ts,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------
# 1. Cleaning
# --------------------------------------------------------------------------------------


def classify(observations: pd.DataFrame, config: CleanConfig) -> pd.DataFrame:
    """Every input row, in input order, plus ``drop_reason`` (None: kept).

    Reasons, first that applies wins: ``missing_field`` (coin, ts or price null),
    ``duplicate`` (same coin, ts and source as a row that is kept: the latest
    ``ingested_at``, null oldest; then a valid price, then the higher price, then the
    earlier row), ``invalid_price`` (not finite or <= 0), ``aberrant_price``.

    One difference from Polars, which keeps null and NaN apart: in a pandas float column a
    NaN price *is* the missing value, so it is tagged ``missing_field`` where the Rust side
    says ``invalid_price``. Both drop the row; the candle files have neither.
    """
    price = observations["price"]
    missing = observations["coin"].isna() | observations["ts"].isna() | price.isna()
    price_ok = np.isfinite(price) & (price > 0)

    complete = observations.loc[~missing, [*KEY, "ingested_at", "price"]].assign(price_ok=price_ok)
    best_first = complete.sort_values(
        [*KEY, "ingested_at", "price_ok", "price"],
        ascending=[True, True, True, False, False, False],
        na_position="last",
        kind="stable",
    )
    duplicate = best_first.duplicated(subset=KEY).reindex(observations.index, fill_value=False)
    invalid = ~price_ok

    # Median of the trailing neighbourhood, over the rows that passed the checks above.
    valid = observations.loc[~missing & ~duplicate & ~invalid, ["coin", "ts", "price"]]
    valid = valid.sort_values(["coin", "ts"], kind="stable")
    rolling = valid.groupby("coin", sort=True).rolling(
        config.neighbourhood, on="ts", closed="right", min_periods=1
    )
    # The groups come out in the frame's order (sorted by coin, then ts): align by position.
    valid["median"] = rolling["price"].median().to_numpy()
    # pandas ends each row's window at the row itself; the Rust window (ts - n, ts]
    # holds every row at the instant ts, so rows sharing an instant take the median of
    # the last of them.
    valid["median"] = valid.groupby(["coin", "ts"], sort=False)["median"].transform("last")
    median = valid["median"].reindex(observations.index)
    aberrant = (price / median - 1.0).abs() > config.max_deviation

    reason = np.select(
        [missing, duplicate, invalid, aberrant],
        ["missing_field", "duplicate", "invalid_price", "aberrant_price"],
        default=None,
    )
    return observations.assign(drop_reason=reason)


def kept(classified: pd.DataFrame) -> pd.DataFrame:
    """The kept rows without ``drop_reason``, sorted by coin, ts, source."""
    rows = classified.loc[classified["drop_reason"].isna()].drop(columns="drop_reason")
    return rows.sort_values(KEY, kind="stable", ignore_index=True)


def drop_counts(classified: pd.DataFrame) -> pd.DataFrame:
    """Rows dropped per reason (only reasons that dropped rows), sorted by reason."""
    counts = classified["drop_reason"].value_counts().rename_axis("reason").reset_index(name="rows")
    return counts.sort_values("reason", ignore_index=True).astype({"rows": "int64"})


# --------------------------------------------------------------------------------------
# 2. Hourly candles
# --------------------------------------------------------------------------------------


def hourly(clean: pd.DataFrame) -> pd.DataFrame:
    """One OHLC candle per coin and UTC hour that has observations, sorted by coin, hour."""
    ordered = clean.sort_values(OBSERVATION_ORDER, kind="stable")
    candles = (
        ordered.assign(hour=ordered["ts"].dt.floor("h"))
        .groupby(["coin", "hour"], sort=True)["price"]
        .agg(avg_price="mean", open="first", high="max", low="min", close="last", observations="size")
        .reset_index()
    )
    # The rounded mean can step one ulp outside [low, high]: clamp it back.
    candles["avg_price"] = candles["avg_price"].clip(candles["low"], candles["high"])
    return candles.astype({"observations": "int64"})[HOURLY_COLUMNS]


# --------------------------------------------------------------------------------------
# 3. Daily ranking
# --------------------------------------------------------------------------------------


def daily_ranking(clean: pd.DataFrame) -> pd.DataFrame:
    """Day-over-day performance per coin, ranked per UTC day; sorted by day, rank.

    A coin is ranked on a day when it has observations on that day and on the calendar
    day before; equal performances rank by coin id. ``day`` is the UTC midnight.
    """
    ordered = clean.sort_values(OBSERVATION_ORDER, kind="stable")
    last = (
        ordered.assign(day=ordered["ts"].dt.floor("D"))
        .groupby(["coin", "day"], sort=True)["price"]
        .last()
        .rename("last_price")
        .reset_index()
    )
    by_coin = last.groupby("coin", sort=False)
    last["prev_day"] = by_coin["day"].shift(1)
    last["prev_last_price"] = by_coin["last_price"].shift(1)

    ranked = last.loc[last["day"] - last["prev_day"] == pd.Timedelta(days=1)]
    ranked = ranked.assign(performance=ranked["last_price"] / ranked["prev_last_price"] - 1.0)
    ranked = ranked.sort_values(
        ["day", "performance", "coin"], ascending=[True, False, True], kind="stable", ignore_index=True
    )
    ranked["rank"] = ranked.groupby("day", sort=False).cumcount().astype("int64") + 1
    return ranked[RANKING_COLUMNS]


# --------------------------------------------------------------------------------------
# 4. Alerts
# --------------------------------------------------------------------------------------


def alert_frame(rows: pd.DataFrame, change: pd.Series, window_secs: int) -> pd.DataFrame:
    """The alert columns for ``rows`` (coin, at, price_before, price_after) and their change."""
    return pd.DataFrame(
        {
            "coin": rows["coin"],
            "at": rows["at"],
            "window_secs": np.int64(window_secs),
            "change_pct": change * 100.0,
            "direction": np.where(change > 0, "up", "down"),
            "price_before": rows["price_before"],
            "price_after": rows["price_after"],
        },
        columns=ALERT_COLUMNS,
    )


def alerts(candles: pd.DataFrame, config: AlertConfig) -> pd.DataFrame:
    """Hourly closes that moved beyond the threshold over ``config.window``; sorted by coin, at.

    Each candle is compared with the same coin's candle exactly ``window`` earlier; no
    candle there, no alert (no interpolation across gaps).
    """
    after = candles[["coin", "hour", "close"]].rename(columns={"hour": "at", "close": "price_after"})
    before = candles[["coin", "hour", "close"]].rename(columns={"hour": "at", "close": "price_before"})
    before["at"] = before["at"] + config.window
    pairs = after.merge(before, on=["coin", "at"], how="inner")

    change = pairs["price_after"] / pairs["price_before"] - 1.0
    beyond = change.abs() > config.threshold + THRESHOLD_EPSILON
    found = alert_frame(pairs.loc[beyond], change[beyond], int(config.window.total_seconds()))
    return found.sort_values(["coin", "at"], kind="stable", ignore_index=True)


def snapshot_alerts(clean: pd.DataFrame, config: AlertConfig) -> pd.DataFrame:
    """24 h alerts from CoinGecko snapshots; sorted by coin, at.

    Rows with ``source == "coingecko"`` whose ``change_24h_pct`` is beyond the threshold
    (there are none in candle data, but the transform function computes them).
    """
    change = clean["change_24h_pct"] / 100.0
    beyond = (
        (clean["source"] == "coingecko")
        & np.isfinite(change)
        & (change.abs() > config.threshold + THRESHOLD_EPSILON)
    )
    snapshots = clean.loc[beyond]
    rows = pd.DataFrame(
        {
            "coin": snapshots["coin"],
            "at": snapshots["ts"],
            "price_before": snapshots["price"] / (1.0 + change[beyond]),
            "price_after": snapshots["price"],
        }
    )
    found = alert_frame(rows, change[beyond], 86_400)
    return found.sort_values(["coin", "at"], kind="stable", ignore_index=True)


# --------------------------------------------------------------------------------------
# 5. Daily volume
# --------------------------------------------------------------------------------------


def daily_volume(clean: pd.DataFrame) -> pd.DataFrame:
    """USD volume per coin, UTC day and method, sorted by coin, day, method.

    ``interval_sum``: sum of ``volume_base * price`` over the day's rows with a
    ``volume_base``; ``rolling_24h``: ``volume_24h`` of the day's last row that has one.
    """
    rows = clean.assign(day=clean["ts"].dt.floor("D"), volume_usd=clean["volume_base"] * clean["price"])
    interval_sum = (
        rows.loc[rows["volume_base"].notna()]
        .groupby(["coin", "day"], sort=False)["volume_usd"]
        .sum()
        .reset_index()
        .assign(method="interval_sum")
    )
    rolling_24h = (
        rows.loc[rows["volume_24h"].notna()]
        .sort_values([*OBSERVATION_ORDER, "volume_24h"], kind="stable")
        .groupby(["coin", "day"], sort=False)["volume_24h"]
        .last()
        .rename("volume_usd")
        .reset_index()
        .assign(method="rolling_24h")
    )
    volume = pd.concat([interval_sum, rolling_24h], ignore_index=True)
    return volume.sort_values(["coin", "day", "method"], kind="stable", ignore_index=True)[VOLUME_COLUMNS]


# --------------------------------------------------------------------------------------
# The compute, as fn compute in functions/transform/src/handler.rs (full run)
# --------------------------------------------------------------------------------------

T = TypeVar("T")


def timed(timings: dict[str, float], name: str, run: Callable[[], T]) -> T:
    """``run()``, its wall time added to ``timings[name]``."""
    started = time.perf_counter()
    result = run()
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
    return result


def compute(
    observations: pd.DataFrame, clean_config: CleanConfig, alert_config: AlertConfig
) -> tuple[Outputs, dict[str, float]]:
    """The five transforms, and the seconds each took."""
    timings: dict[str, float] = {}
    classified = timed(timings, "clean", lambda: classify(observations, clean_config))
    clean = timed(timings, "clean", lambda: kept(classified))
    dropped = timed(timings, "clean", lambda: drop_counts(classified))
    candles = timed(timings, "hourly", lambda: hourly(clean))
    ranking = timed(timings, "ranking", lambda: daily_ranking(clean))
    found = timed(
        timings,
        "alerts",
        lambda: pd.concat(
            [alerts(candles, alert_config), snapshot_alerts(clean, alert_config)], ignore_index=True
        ),
    )
    volume = timed(timings, "volume", lambda: daily_volume(clean))
    outputs = Outputs(classified, clean, dropped, candles, ranking, found, volume)
    return outputs, timings


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def default_data_dir() -> Path:
    """``$CRYPTO_DATA_DIR/binance_1h`` when set, else the repository's ``data/binance_1h``."""
    root = os.environ.get("CRYPTO_DATA_DIR")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "data"
    return base / "binance_1h"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: ``[--data DIR] [--repeat N] [--json]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of the {BTC,ETH,SOL,XRP,BNB}USDT_1h.csv[.gz] files, or a data folder "
        "holding binance_1h/ (default: $CRYPTO_DATA_DIR/binance_1h, else the repository's "
        "data/binance_1h)",
    )
    parser.add_argument(
        "--repeat", type=int, default=5, metavar="N", help="compute runs; the best is reported (default: 5)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def resolve_data_dir(arg: Path | None) -> Path:
    """The folder holding the candle files."""
    if arg is None:
        return default_data_dir()
    return arg / "binance_1h" if (arg / "binance_1h").is_dir() else arg


def alert_counts(found: pd.DataFrame, window_secs: int) -> dict[str, int]:
    """Alerts of the given window per coin, every coin of COINS included."""
    per_coin = found.loc[found["window_secs"] == window_secs, "coin"].value_counts()
    return {coin: int(per_coin.get(coin, 0)) for coin in COINS.values()}


@dataclass(frozen=True)
class Measurement:
    """Wall times in seconds: the load, and each compute run with its transforms."""

    load_s: float
    compute_runs: list[float]
    transform_runs: list[dict[str, float]]


def measure(
    observations: pd.DataFrame,
    load_s: float,
    repeat: int,
    clean_config: CleanConfig,
    alert_config: AlertConfig,
) -> tuple[Outputs, Measurement]:
    """Computes the transforms ``repeat`` times; the outputs are the last run's."""
    compute_runs: list[float] = []
    transform_runs: list[dict[str, float]] = []
    outputs: Outputs | None = None
    for _ in range(repeat):
        started = time.perf_counter()
        outputs, timings = compute(observations, clean_config, alert_config)
        compute_runs.append(time.perf_counter() - started)
        transform_runs.append(timings)
    if outputs is None:
        raise ValueError("repeat must be at least 1")
    return outputs, Measurement(load_s, compute_runs, transform_runs)


def build_report(
    observations: int,
    data_dir: Path,
    measurement: Measurement,
    outputs: Outputs,
    hour_alerts: Mapping[str, int],
) -> dict[str, Any]:
    """The report printed on stdout; times in seconds."""
    runs = measurement.transform_runs
    return {
        "implementation": "pandas",
        "python": platform.python_version(),
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "data": str(data_dir),
        "observations": observations,
        "load_s": round(measurement.load_s, 6),
        "repeat": len(measurement.compute_runs),
        "compute_s": round(min(measurement.compute_runs), 6),
        "compute_runs": [round(t, 6) for t in measurement.compute_runs],
        # Best time of each transform over the runs, then every run's.
        "transforms_s": {name: round(min(run[name] for run in runs), 6) for name in TRANSFORMS},
        "transform_runs": [{name: round(run[name], 6) for name in TRANSFORMS} for run in runs],
        "rows": {
            "classified": len(outputs.classified),
            "clean": len(outputs.clean),
            "dropped": int(outputs.drop_counts["rows"].sum()),
            "hourly": len(outputs.hourly),
            "ranking": len(outputs.ranking),
            "alerts": len(outputs.alerts),
            "volume": len(outputs.volume),
        },
        "dropped_by_reason": {
            str(reason): int(rows)
            for reason, rows in zip(outputs.drop_counts["reason"], outputs.drop_counts["rows"], strict=True)
        },
        "alerts_per_coin": dict(hour_alerts),
    }


def print_human(report: Mapping[str, Any]) -> None:
    """The report, for a person."""
    print(
        f"pandas {report['pandas']}, numpy {report['numpy']}, Python {report['python']}: "
        f"{report['observations']:,} observations from {report['data']}"
    )
    print(f"load     {report['load_s']:8.3f} s")
    print(f"compute  {report['compute_s']:8.3f} s  (best of {report['repeat']})")
    for name, seconds in report["transforms_s"].items():
        print(f"  {name:<8} {seconds:8.3f} s")
    print("rows     " + ", ".join(f"{k} {v:,}" for k, v in report["rows"].items()))
    print("alerts   " + ", ".join(f"{k} {v}" for k, v in report["alerts_per_coin"].items()))


def main(argv: list[str] | None = None) -> int:
    """Load, compute ``--repeat`` times, check the alert counts, report; the exit status."""
    args = parse_args(argv)
    data_dir = resolve_data_dir(args.data)
    clean_config, alert_config = CleanConfig(), AlertConfig()

    started = time.perf_counter()
    try:
        observations = load_observations(data_dir)
    except (OSError, ValueError) as e:
        print(f"reference_transforms: cannot load the candles: {e}", file=sys.stderr)
        return 2
    load_s = time.perf_counter() - started
    outputs, measurement = measure(observations, load_s, args.repeat, clean_config, alert_config)

    hour_alerts = alert_counts(outputs.alerts, int(alert_config.window.total_seconds()))
    if hour_alerts != dict(EXPECTED_ALERTS):
        wrong = ", ".join(
            f"{coin} {hour_alerts[coin]} (expected {n})"
            for coin, n in EXPECTED_ALERTS.items()
            if hour_alerts[coin] != n
        )
        print(
            f"reference_transforms: the 1-hour alert counts differ from the Rust side's: {wrong}",
            file=sys.stderr,
        )
        return 1

    report = build_report(len(observations), data_dir, measurement, outputs, hour_alerts)
    if args.json:
        print(json.dumps(report))
    else:
        print_human(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
