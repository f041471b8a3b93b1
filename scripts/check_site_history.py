#!/usr/bin/env python3
"""Does a generated dashboard show history? (scripts/e2e.sh)

Checks, in the folder a site-gen run wrote: the overview has a 7-day sparkline
for each of the five coins, each coin page's inline chart data spans at least
a week of hourly points, and the hourly data file a page names (longer
histories) exists and holds more hours than the page. Prints what it found as one line of JSON; exits 1 when
any check fails, 2 when the site is not there yet.

Usage: check_site_history.py SITE_DIR
"""

import html
import json
import re
import sys
from pathlib import Path

COINS = ["bitcoin", "ethereum", "solana", "ripple", "binancecoin"]
WEEK = 7 * 24 * 3600


def main() -> int:
    site = Path(sys.argv[1])
    index = site / "index.html"
    if not index.is_file():
        print(json.dumps({"error": f"no {index}"}))
        return 2
    found = {"sparklines": len(re.findall(r'<svg class="sparkline', index.read_text())), "hours": {}}
    ok = found["sparklines"] >= len(COINS)
    for coin in COINS:
        page = site / "coins" / f"{coin}.html"
        match = re.search(r'data-chart="([^"]*)"', page.read_text()) if page.is_file() else None
        if not match:
            found["hours"][coin] = 0
            ok = False
            continue
        chart = json.loads(html.unescape(match.group(1)))
        # The page carries the last 30 days hourly; older history as days, and
        # every hour in the data file it names (fetched on zoom).
        times = chart["hours"]["t"]
        ok = ok and len(times) >= 7 * 24 and times[-1] - times[0] >= WEEK
        hourly = re.search(r'data-hourly="([^"]*)"', page.read_text())
        if hourly:
            data = page.parent / html.unescape(hourly.group(1))
            times = json.loads(data.read_text())["t"] if data.is_file() else []
            ok = ok and len(times) > len(chart["hours"]["t"])
        found["hours"][coin] = len(times)
    print(json.dumps(found))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
