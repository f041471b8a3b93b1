// Loads dashboard pages in Debian's headless Chromium (driven by playwright-core),
// and reports, per page and viewport: console errors, page errors, failed requests,
// the size of every chart (canvas or svg) and the bytes of the first view. On a
// coin page with an hourly data file it then zooms into the older history (All,
// then a drag across the price chart) and reports whether the hours loaded.
// Screenshots go to --out.
//
// Usage: node check-pages.mjs --base http://127.0.0.1:PORT/ --out DIR page1.html coins/bitcoin.html ...
// Prints one JSON object on stdout; exits 0 when it could run the checks (the
// caller judges the results), 2 when the browser could not be driven at all.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const base = opt("--base");
const out = opt("--out", "screenshots");
const executablePath = opt("--chromium", process.env.CHROMIUM || "/usr/bin/chromium");
const pages = args;
if (!base || pages.length === 0) {
  console.error("usage: check-pages.mjs --base URL [--out DIR] [--chromium PATH] PAGE...");
  process.exit(2);
}
mkdirSync(out, { recursive: true });

// A closed network: no background traffic, no first-run work. Playwright gives
// every launch a new empty profile (its own --user-data-dir).
const flags = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
  "--no-first-run", "--disable-component-update", "--disable-sync",
];

const viewports = [
  { name: "desktop", width: 1280, height: 900, colorScheme: "light" },
  { name: "phone-dark", width: 390, height: 844, colorScheme: "dark", isMobile: true },
];

// On a coin page whose older history is inline as days: shows everything (All: from the first
// point to the last), drags across the days just before the inline hours (nine days, or 6 px
// when that is less) and waits for their hours to load. Reports the state dashboard.js reached
// and the data files fetched.
async function zoomIntoHistory(page, screenshot) {
  const url = await page.evaluate(() => document.getElementById("charts")?.getAttribute("data-hourly") ?? null);
  if (!url) return null;
  const fetched = [];
  const onResponse = (r) => {
    const path = new URL(r.url()).pathname;
    if (path.includes("/data/")) fetched.push({ path, status: r.status() });
  };
  page.on("response", onResponse);
  await page.click('button[data-range="0"]');
  await page.evaluate(() => document.getElementById("price-chart").scrollIntoView({ block: "center" }));
  const span = await page.evaluate(() => {
    const d = JSON.parse(document.getElementById("charts").getAttribute("data-chart"));
    const first = d.days.t.length ? d.days.t[0] : d.hours.t[0];
    return { first, last: d.hours.t[d.hours.t.length - 1], end: d.hours.t[0] - 86400 };
  });
  const box = await page.locator("#price-chart .u-over").boundingBox();
  const x = (t) => box.x + ((t - span.first) / (span.last - span.first)) * box.width;
  const to = x(span.end), from = Math.max(box.x + 1, Math.min(x(span.end - 9 * 86400), to - 6));
  const y = box.y + box.height / 2;
  await page.mouse.move(from, y);
  await page.mouse.down();
  await page.mouse.move(to, y, { steps: 8 });
  await page.mouse.up();
  const state = await page
    .waitForSelector('#charts[data-hourly-state="loaded"]', { timeout: 10000 })
    .then(() => "loaded")
    .catch(async () => page.evaluate(() => document.getElementById("charts").getAttribute("data-hourly-state")));
  await page.waitForTimeout(200);
  await page.screenshot({ path: screenshot, fullPage: true });
  page.off("response", onResponse);
  const bytes = await page.evaluate(() => performance.getEntriesByType("resource")
    .filter((e) => new URL(e.name).pathname.includes("/data/")).reduce((n, e) => n + e.encodedBodySize, 0));
  return { url, state, fetched, bytes, screenshot };
}

let browser;
try {
  browser = await chromium.launch({ executablePath, args: flags });
} catch (e) {
  console.error(`cannot start ${executablePath}: ${e.message}`);
  process.exit(2);
}

const version = browser.version();
const results = [];
try {
  for (const vp of viewports) {
    const context = await browser.newContext({
      viewport: { width: vp.width, height: vp.height }, colorScheme: vp.colorScheme, isMobile: !!vp.isMobile,
    });
    for (const path of pages) {
      const page = await context.newPage();
      const errors = [];
      page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") errors.push(`console.${m.type()}: ${m.text()}`); });
      page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
      page.on("requestfailed", (r) => errors.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
      page.on("response", (r) => { if (r.status() >= 400) errors.push(`http ${r.status()}: ${r.url()}`); });
      const url = new URL(path, base).toString();
      const response = await page.goto(url, { waitUntil: "load" });
      // Charts are drawn after DOMContentLoaded; give them a frame or two.
      await page.waitForTimeout(400);
      // What the first view downloaded (the local server sends bytes as they are, uncompressed).
      const firstView = await page.evaluate(() => {
        const path = (u) => new URL(u).pathname;
        const nav = performance.getEntriesByType("navigation")[0];
        return {
          html: nav ? nav.encodedBodySize : 0,
          resources: performance.getEntriesByType("resource").map((e) => ({ path: path(e.name), bytes: e.encodedBodySize })),
        };
      });
      const charts = await page.evaluate(() =>
        [...document.querySelectorAll("canvas, svg")].map((el) => {
          const r = el.getBoundingClientRect();
          return { tag: el.tagName.toLowerCase(), id: el.closest("[id]")?.id ?? "", width: Math.round(r.width), height: Math.round(r.height) };
        }));
      const title = await page.title();
      // What a reader sees: prices shown (overview cards, coin header) and rows of tables.
      const shown = await page.evaluate(() => ({
        prices: document.querySelectorAll(".price").length,
        rows: document.querySelectorAll("tbody tr").length,
        noData: !!document.getElementById("no-data"),
      }));
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      const screenshot = join(out, `${path.replace(/[\/.]/g, "_")}-${vp.name}.png`);
      await page.screenshot({ path: screenshot, fullPage: true });
      const zoom = await zoomIntoHistory(page, join(out, `${path.replace(/[\/.]/g, "_")}-${vp.name}-zoomed.png`));
      results.push({ page: path, viewport: vp.name, status: response?.status() ?? 0, title, errors, charts, shown, overflow, screenshot, firstView, zoom });
      await page.close();
    }
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify({ chromium: version, results }, null, 1));
