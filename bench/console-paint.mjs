// The console's pages as a browser sees them: navigation timing (response end) and first contentful
// paint, in Debian's headless Chromium. `node bench/console-paint.mjs URL_WITH_TOKEN PATH [RUNS]`; prints
// one line per run and the medians. Run by bench/console.sh.
import { chromium } from "../tests/browser/node_modules/playwright-core/index.mjs";

const [url, path, runs = "10"] = process.argv.slice(2);
const base = new URL(url);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.goto(base.href);
const paints = [];
const responses = [];
for (let i = 0; i < Number(runs) + 1; i++) {
  await page.goto(`${base.origin}${path}`, { waitUntil: "load" });
  const [nav, paint] = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const nav = performance.getEntriesByType("navigation")[0].responseEnd;
        new PerformanceObserver((list) => {
          const fcp = list.getEntriesByName("first-contentful-paint")[0];
          if (fcp) resolve([nav, fcp.startTime]);
        }).observe({ type: "paint", buffered: true });
        setTimeout(() => resolve([nav, NaN]), 3000);
      })
  );
  if (i === 0) continue; // warm-up
  responses.push(nav);
  paints.push(paint);
  console.log(`run ${i}: response end ${nav.toFixed(1)} ms, first contentful paint ${paint.toFixed(1)} ms`);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`${path}: median response end ${median(responses).toFixed(1)} ms, median first contentful paint ${median(paints).toFixed(1)} ms`);
await browser.close();
