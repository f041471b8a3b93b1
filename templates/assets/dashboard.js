// Crypto dashboard: live ages and stale warnings on every page, uPlot charts on coin pages.
// No dependencies beyond uPlot (shipped beside this file). The one network request: a coin's
// hourly data file (same site), fetched once the reader zooms into its older history.
"use strict";

(function () {
  // Same wording as site-gen's format::ago.
  function ago(secs) {
    secs = Math.max(0, Math.floor(secs));
    if (secs < 60) return secs + " s ago";
    if (secs < 3600) return Math.floor(secs / 60) + " min ago";
    if (secs < 172800) return Math.floor(secs / 3600) + " h ago";
    return Math.floor(secs / 86400) + " d ago";
  }

  // The page was rendered at some instant; ages and staleness are re-judged against the clock now.
  function refreshAges() {
    var now = Date.now();
    document.querySelectorAll(".age[data-since]").forEach(function (el) {
      var since = Date.parse(el.getAttribute("data-since"));
      if (!isNaN(since)) el.textContent = ago((now - since) / 1000);
    });
    document.querySelectorAll("[data-stale-after]").forEach(function (el) {
      var t = el.querySelector("[data-since]");
      if (!t) return;
      var age = (now - Date.parse(t.getAttribute("data-since"))) / 1000;
      el.classList.toggle("stale", age > Number(el.getAttribute("data-stale-after")));
    });
  }

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // `short` drops the cents of large amounts, for axis labels.
  function money(currency, short) {
    var usd = currency === "usd";
    return function (v) {
      if (v == null) return "—";
      var digits = Math.abs(v) >= 1000 && short ? 0 : Math.abs(v) >= 1 ? 2 : 4;
      var text = v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
      return usd ? "$" + text : text + " " + currency.toUpperCase();
    };
  }

  function compact(currency) {
    var fmt = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });
    return function (v) {
      if (v == null) return "—";
      return (currency === "usd" ? "$" : "") + fmt.format(v);
    };
  }

  // Index of the last element of sorted `xs` that is <= x (or 0).
  function floorIndex(xs, x) {
    var lo = 0, hi = xs.length - 1, found = 0;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (xs[mid] <= x) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }

  // More than this between two hours is a hole in the history (render.rs's HOLE_SECS).
  var HOLE = 3 * 3600;
  // The older history is inline as days; its hours are fetched once a day is wider than this
  // many pixels on the price chart.
  var PX_PER_DAY = 4;

  // The price series as uPlot takes it: the `days` (each at its last hour; render.rs lists in
  // `gaps` those after a hole), then the `hours`, with a null after each hole in the history
  // (more than 3 h without data) so lines break there instead of joining distant points.
  // Points before `daysEnd` are days.
  function priceSeries(days, hours) {
    var s = { t: [], h: [], l: [], c: [], daysEnd: 0 };
    function hole() {
      s.t.push(s.t[s.t.length - 1] + 3600);
      s.h.push(null); s.l.push(null); s.c.push(null);
    }
    var gaps = {};
    days.gaps.forEach(function (i) { gaps[i] = true; });
    for (var i = 0; i < days.t.length; i++) {
      if (gaps[i] && s.t.length) hole();
      s.t.push(days.t[i]); s.h.push(days.h[i]); s.l.push(days.l[i]); s.c.push(days.c[i]);
    }
    s.daysEnd = s.t.length;
    for (var j = 0; j < hours.t.length; j++) {
      if (s.t.length && hours.t[j] - s.t[s.t.length - 1] > HOLE) hole();
      s.t.push(hours.t[j]); s.h.push(hours.h[j]); s.l.push(hours.l[j]); s.c.push(hours.c[j]);
    }
    return s;
  }

  // Alerts become two point series aligned on the price series: ▲ up, ▼ down. An alert sits on
  // the hour it fell in, or on the day: a day's point is at its last hour, so an alert earlier
  // that day belongs to the next point when that is a day.
  function markers(s, alerts) {
    var ups = new Array(s.t.length).fill(null), downs = new Array(s.t.length).fill(null);
    alerts.forEach(function (a) {
      var i = floorIndex(s.t, a[0]);
      if (i + 1 < s.daysEnd && s.t[i] < a[0]) i += 1;
      (a[2] >= 0 ? ups : downs)[i] = a[1];
    });
    return [ups, downs];
  }

  function breakDaily(ts, vs) {
    var t = [], r = [];
    for (var i = 0; i < ts.length; i++) {
      if (i > 0 && ts[i] - ts[i - 1] > 86400) { t.push(ts[i - 1] + 86400); r.push(null); }
      t.push(ts[i]); r.push(vs[i]);
    }
    return { t: t, r: r };
  }

  function charts(root) {
    if (typeof uPlot === "undefined") return;
    var d = JSON.parse(root.getAttribute("data-chart"));
    if (!d.hours.t.length) return;
    var s = priceSeries(d.days, d.hours);
    var rank = breakDaily(d.rank.t, d.rank.r);
    var colors = {
      fg: css("--fg"), muted: css("--muted"), line: css("--accent"), band: css("--band"),
      grid: css("--grid"), up: css("--up"), down: css("--down")
    };
    var price = money(d.currency), axisPrice = money(d.currency, true), big = compact(d.currency);
    var m = markers(s, d.alerts);

    // The y axis is as wide as its longest label.
    function axes(fmt, splits) {
      var y = { stroke: colors.muted, grid: { stroke: colors.grid }, ticks: { stroke: colors.grid },
        values: function (u, vals) { return vals.map(fmt); },
        size: function (u, values) {
          var longest = (values || []).reduce(function (n, v) { return Math.max(n, String(v).length); }, 4);
          return 18 + longest * 7.5;
        } };
      if (splits) y.splits = splits;
      return [{ stroke: colors.muted, grid: { stroke: colors.grid }, ticks: { stroke: colors.grid } }, y];
    }
    function width() { return Math.max(280, root.clientWidth - 20); }
    function height() { return window.innerWidth < 600 ? 220 : 320; }
    // Room for one labelled grid line per rank.
    var worst = Math.max.apply(null, [1].concat(rank.r.filter(function (r) { return r != null; })));
    function rankHeight() { return Math.max(Math.round(height() * 0.5), 60 + 20 * worst); }
    var none = function () { return null; };
    var all = [];
    var syncing = false;
    function syncX(u, key) {
      if (key !== "x" || syncing) return;
      syncing = true;
      all.forEach(function (o) {
        if (o !== u) o.setScale("x", { min: u.scales.x.min, max: u.scales.x.max });
      });
      syncing = false;
    }
    var common = { cursor: { drag: { x: true, y: false } }, hooks: { setScale: [syncX] } };

    // The hours of the older history: fetched (once) when the price chart shows part of it
    // with days wide enough for hours to matter, then drawn in place of the days.
    var hourlyUrl = root.getAttribute("data-hourly"), hourly = "inline", ready = false;
    var status = document.getElementById("hourly-status");
    function setHourly(state, text) {
      hourly = state;
      root.setAttribute("data-hourly-state", state);
      if (status) status.textContent = text;
    }
    function wantsHours(u) {
      if (!hourlyUrl || hourly === "loading" || hourly === "loaded") return false;
      var min = u.scales.x.min, max = u.scales.x.max;
      if (min == null || max == null || min >= d.hours.t[0]) return false;
      return (max - min) / 86400 * PX_PER_DAY < u.over.clientWidth;
    }
    function loadHours() {
      setHourly("loading", "Loading hourly data…");
      fetch(hourlyUrl)
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then(function (hours) {
          s = priceSeries({ t: [], h: [], l: [], c: [], gaps: [] }, hours);
          m = markers(s, d.alerts);
          var x = priceChart.scales.x, min = x.min, max = x.max;
          priceChart.setData([s.t, s.c, s.h, s.l, m[0], m[1]], false);
          // Keeps the reader's range; the y scale fits the hours.
          priceChart.setScale("x", { min: min, max: max });
          setHourly("loaded", "");
        })
        .catch(function () {
          // Days stay; the next zoom tries again.
          setHourly("failed", "Hourly data could not be loaded: showing daily candles.");
        });
    }
    // Not while the charts are built: each sets the x scale to its own data before the opening range.
    function onPriceScale(u, key) {
      if (ready && key === "x" && wantsHours(u)) loadHours();
    }

    var priceChart = new uPlot(Object.assign({}, common, {
      hooks: { setScale: [syncX, onPriceScale] },
      width: width(), height: height(),
      scales: { x: { time: true } },
      series: [
        {},
        { label: "Close", stroke: colors.line, width: 1.5, value: function (u, v) { return price(v); } },
        { label: "High", stroke: "transparent", value: function (u, v) { return price(v); } },
        { label: "Low", stroke: "transparent", value: function (u, v) { return price(v); } },
        { label: "Alert ▲", stroke: colors.up, fill: colors.up, paths: none,
          points: { show: true, size: 9, fill: colors.up, stroke: colors.up }, value: function (u, v) { return price(v); } },
        { label: "Alert ▼", stroke: colors.down, fill: colors.down, paths: none,
          points: { show: true, size: 9, fill: colors.down, stroke: colors.down }, value: function (u, v) { return price(v); } }
      ],
      bands: [{ series: [2, 3], fill: colors.band }],
      axes: axes(axisPrice)
    }), [s.t, s.c, s.h, s.l, m[0], m[1]], document.getElementById("price-chart"));
    all.push(priceChart);

    if (d.volume.t.length) {
      all.push(new uPlot(Object.assign({}, common, {
        width: width(), height: Math.round(height() * 0.6),
        scales: { x: { time: true } },
        series: [{}, { label: "Volume", stroke: colors.line, fill: colors.band, points: { show: false },
          paths: uPlot.paths.bars({ size: [0.7, 40] }), value: function (u, v) { return big(v); } }],
        axes: axes(big)
      }), [d.volume.t, d.volume.v], document.getElementById("volume-chart")));
    }
    if (rank.t.length) {
      all.push(new uPlot(Object.assign({}, common, {
        width: width(), height: rankHeight(),
        scales: { x: { time: true }, y: { dir: -1, range: [0.5, worst + 0.5] } },
        series: [{}, { label: "Rank", stroke: colors.line, width: 1.5, points: { show: false },
          paths: uPlot.paths.stepped({ align: 1 }), value: function (u, v) { return v == null ? "—" : "#" + v; } }],
        // One grid line per rank: 1 (best) at the top.
        axes: axes(function (v) { return "#" + v; }, function () {
          var ranks = [];
          for (var r = 1; r <= worst; r++) ranks.push(r);
          return ranks;
        })
      }), [rank.t, rank.r], document.getElementById("rank-chart")));
    }

    // Range buttons: the last N days of the price series, or everything.
    var buttons = root.querySelectorAll("button[data-range]");
    function show(days) {
      var first = s.t[0], last = s.t[s.t.length - 1];
      var min = days > 0 ? Math.max(first, last - days * 86400) : first;
      buttons.forEach(function (b) { b.setAttribute("aria-pressed", String(Number(b.getAttribute("data-range")) === days)); });
      all[0].setScale("x", { min: min, max: last });
    }
    buttons.forEach(function (b) {
      b.addEventListener("click", function () { show(Number(b.getAttribute("data-range"))); });
    });
    // The opening range, chosen by render.rs (opening_days): the last 30 days (else 7 d, 1 y)
    // when that holds two days of hours and is not everything; otherwise the whole history.
    ready = true;
    show(d.open);

    var pending = 0;
    window.addEventListener("resize", function () {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(function () {
        all.forEach(function (u, i) {
          var h = i === 0 ? height() : i === 1 ? Math.round(height() * 0.6) : rankHeight();
          u.setSize({ width: width(), height: h });
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    refreshAges();
    setInterval(refreshAges, 5000);
    var root = document.getElementById("charts");
    if (root) charts(root);
  });
})();
