// Crypto dashboard: live ages and stale warnings on every page, uPlot charts on coin pages.
// No dependencies beyond uPlot (shipped beside this file); no network requests.
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

  // A null after each hole in the hourly series (more than 3 h without data),
  // so lines break there instead of joining distant points.
  function withGaps(d) {
    var out = { currency: d.currency, alerts: d.alerts, volume: d.volume, rank: d.rank, t: [], h: [], l: [], c: [] };
    for (var i = 0; i < d.t.length; i++) {
      if (i > 0 && d.t[i] - d.t[i - 1] > 3 * 3600) {
        out.t.push(d.t[i - 1] + 3600);
        out.h.push(null); out.l.push(null); out.c.push(null);
      }
      out.t.push(d.t[i]); out.h.push(d.h[i]); out.l.push(d.l[i]); out.c.push(d.c[i]);
    }
    out.rank = breakDaily(d.rank.t, d.rank.r);
    return out;
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
    if (!d.t.length) return;
    d = withGaps(d);
    var colors = {
      fg: css("--fg"), muted: css("--muted"), line: css("--accent"), band: css("--band"),
      grid: css("--grid"), up: css("--up"), down: css("--down")
    };
    var price = money(d.currency), axisPrice = money(d.currency, true), big = compact(d.currency);

    // Alerts become two point series aligned on the hourly axis: ▲ up, ▼ down.
    var ups = new Array(d.t.length).fill(null), downs = new Array(d.t.length).fill(null);
    d.alerts.forEach(function (a) {
      var i = floorIndex(d.t, a[0]);
      (a[2] >= 0 ? ups : downs)[i] = a[1];
    });

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
    var worst = Math.max.apply(null, [1].concat(d.rank.r.filter(function (r) { return r != null; })));
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

    var priceChart = new uPlot(Object.assign({}, common, {
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
    }), [d.t, d.c, d.h, d.l, ups, downs], document.getElementById("price-chart"));
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
    if (d.rank.t.length) {
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
      }), [d.rank.t, d.rank.r], document.getElementById("rank-chart")));
    }

    // Range buttons: the last N days of the price series, or everything.
    var last = d.t[d.t.length - 1], first = d.t[0];
    var buttons = root.querySelectorAll("button[data-range]");
    function show(days) {
      var min = days > 0 ? Math.max(first, last - days * 86400) : first;
      buttons.forEach(function (b) { b.setAttribute("aria-pressed", String(Number(b.getAttribute("data-range")) === days)); });
      all[0].setScale("x", { min: min, max: last });
    }
    buttons.forEach(function (b) {
      b.addEventListener("click", function () { show(Number(b.getAttribute("data-range"))); });
    });
    // Open on the last 30 days (else 7 d, 1 y) when that range holds two days of hours and
    // is not everything (the live part of a long history); otherwise the whole history.
    var hours = d.c.filter(function (v) { return v != null; }).length;
    var opening = [30, 7, 365].filter(function (days) {
      var from = last - days * 86400;
      var inside = d.t.filter(function (t, i) { return t >= from && d.c[i] != null; }).length;
      return from > first && inside >= 48 && inside < hours;
    })[0] || 0;
    show(opening);

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
