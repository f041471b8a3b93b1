#!/usr/bin/env python3
"""A stand-in for the CoinGecko API v3 on 127.0.0.1, for the end-to-end runs
(scripts/e2e.sh, scripts/lambda-smoke.sh): the real API is out of reach here.

It speaks the documented endpoints the pipeline calls:
  GET /ping                              {"gecko_says": "(V3) To the Moon!"}
  GET /coins/markets?vs_currency&ids     the real response in data/coingecko,
                                         cut to the ids asked for
  GET /coins/{id}/market_chart/range?vs_currency&from&to
                                         prices, market_caps, total_volumes as
                                         [ms, value] pairs: hourly points for a
                                         range of 1-90 days, daily beyond, as
                                         CoinGecko documents; the values are
                                         synthetic, around the coin's price in
                                         the real markets response
Anything else gets CoinGecko's JSON error shape with a 404.

--live: /coins/markets says each coin was updated now (`last_updated`), so
every ingest stores new snapshots, as the real API's do. --move ID=PCT (with
--live; repeatable): that coin's 24 h change is PCT percent, so the pipeline
sees a move beyond its alert threshold (the end-to-end run's alert).

Usage: fake_coingecko.py --port PORT [--data DATA_DIR] [--live [--move ID=PCT]...]
"""

import argparse
import gzip
import json
import math
import re
import sys
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HOUR = 3600
DAY = 86400


def load_markets(data_dir: Path) -> list:
    plain = data_dir / "coingecko" / "dashbrd_coins_markets.json"
    if plain.is_file():
        return json.loads(plain.read_bytes())
    with gzip.open(plain.with_name(plain.name + ".gz")) as f:
        return json.load(f)


def chart(item: dict, start: int, end: int) -> dict:
    """Points in [start, end] (Unix seconds) on the grid CoinGecko uses."""
    step = HOUR if end - start <= 90 * DAY else DAY
    first = -(-start // step) * step
    base = float(item["current_price"])
    supply = float(item.get("circulating_supply") or 0.0)
    volume = float(item.get("total_volume") or 0.0)
    prices, caps, volumes = [], [], []
    for t in range(first, end + 1, step):
        # A weekly swing and a daily ripple, so charts and alerts have shape.
        price = base * (1 + 0.04 * math.sin(2 * math.pi * t / (7 * DAY)) + 0.01 * math.sin(2 * math.pi * t / DAY))
        prices.append([t * 1000, round(price, 8)])
        caps.append([t * 1000, round(price * supply, 2)])
        volumes.append([t * 1000, round(volume, 2)])
    return {"prices": prices, "market_caps": caps, "total_volumes": volumes}


class Handler(BaseHTTPRequestHandler):
    markets: dict = {}
    live: bool = False
    moves: dict = {}

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-coingecko: " + (fmt % args) + "\n")

    def reply(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path.rstrip("/")
        if path == "/ping":
            return self.reply(200, {"gecko_says": "(V3) To the Moon!"})
        if path == "/coins/markets":
            if "vs_currency" not in query:
                return self.reply(400, {"error": "Missing parameter vs_currency"})
            ids = query.get("ids")
            wanted = set(ids.split(",")) if ids else set(self.markets)
            items = [dict(item) for key, item in self.markets.items() if key in wanted]
            if self.live:
                now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                for item in items:
                    item["last_updated"] = now
                    if item["id"] in self.moves:
                        pct = self.moves[item["id"]]
                        item["price_change_percentage_24h"] = pct
                        item["price_change_24h"] = item["current_price"] * pct / (100 + pct)
            return self.reply(200, items)
        match = re.fullmatch(r"/coins/([^/]+)/market_chart/range", path)
        if match:
            item = self.markets.get(match.group(1))
            if item is None:
                return self.reply(404, {"error": "coin not found"})
            try:
                start, end = int(query["from"]), int(query["to"])
            except (KeyError, ValueError):
                return self.reply(400, {"error": "from and to must be UNIX timestamps"})
            return self.reply(200, chart(item, start, end))
        return self.reply(404, {"status": {"error_code": 404, "error_message": f"no route {path}"}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent / "data")
    parser.add_argument("--live", action="store_true", help="last_updated is now")
    parser.add_argument("--move", action="append", default=[], metavar="ID=PCT", help="a coin's 24 h change (with --live)")
    args = parser.parse_args()
    Handler.markets = {item["id"]: item for item in load_markets(args.data)}
    Handler.live = args.live
    for move in args.move:
        coin, pct = move.split("=", 1)
        Handler.moves[coin] = float(pct)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    sys.stderr.write(f"fake-coingecko: listening on 127.0.0.1:{args.port}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
