// Drives the storefront fixture (tests/fixtures/storefront.html) in a real headless Chromium the way a person
// would: a curved pointer path with varying speed, a few key presses, wheel scrolling to the bottom and back,
// a click on a button, then "Add to cart". Then it leaves the page so the tracker's pagehide beacon goes out.
//
//   node storefront.mjs <page-url>
//
// Prints one JSON line to stdout, e.g.
//   {"ok":true,"collectRequests":3,"statuses":[202,202,202],"events":{"pv":1,"en":1,...}}
// and exits non-zero on any page error or console error, or if the add-to-cart never reached the collector.
// collectRequests/statuses/events cover what DevTools reports, which excludes the final pagehide beacon:
// Chromium sends it from the unloading document and reports it to no DevTools session. The server side
// (every captured batch, beacon included, and ingest) is asserted by the Rust test that runs this script.
//
// Chromium: /usr/bin/chromium (Debian package), or GHOSTTRACK_CHROMIUM. GHOSTTRACK_BROWSER_XFF sets X-Forwarded-For. Randomness is seeded, so every run
// moves the pointer along the same path.

import { chromium } from 'playwright-core';

const pageUrl = process.argv[2];
if (!pageUrl) {
  console.error('usage: node storefront.mjs <page-url>');
  process.exit(2);
}

const RUN_TIMEOUT_MS = 30_000;
const errors = [];
const collect = []; // {postData, status} of each request to the collector
let browser;

function finish(summary, code) {
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exitCode = code;
}

// mulberry32: small seeded PRNG so the "human" path is the same on every run.
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(0x9057);
const between = (lo, hi) => lo + (hi - lo) * random();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Moves along a cubic Bézier curve from the current position to `to`, slow at both ends and fast in the
// middle (ease-in-out), with a little jitter — roughly what a hand on a mouse does.
const pointer = { x: 0, y: 0 };
async function moveTo(page, to) {
  const from = { ...pointer };
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const bend = between(-0.3, 0.3);
  const c1 = { x: from.x + dx * 0.3 - dy * bend, y: from.y + dy * 0.3 + dx * bend };
  const c2 = { x: from.x + dx * 0.7 - dy * bend * 0.5, y: from.y + dy * 0.7 + dx * bend * 0.5 };
  const points = Math.max(12, Math.min(45, Math.round(Math.hypot(dx, dy) / 18)));
  for (let i = 1; i <= points; i++) {
    const s = i / points;
    const t = s < 0.5 ? 2 * s * s : 1 - (-2 * s + 2) ** 2 / 2;
    const u = 1 - t;
    const jitter = i < points ? between(-1.5, 1.5) : 0;
    const x = u ** 3 * from.x + 3 * u * u * t * c1.x + 3 * u * t * t * c2.x + t ** 3 * to.x + jitter;
    const y = u ** 3 * from.y + 3 * u * u * t * c1.y + 3 * u * t * t * c2.y + t ** 3 * to.y + jitter;
    await page.mouse.move(x, y, { steps: 2 });
    await sleep(between(6, 22));
  }
  pointer.x = to.x;
  pointer.y = to.y;
}

async function centerOf(page, selector) {
  const box = await page.locator(selector).boundingBox();
  if (!box) throw new Error(`${selector} is not visible`);
  return { x: box.x + box.width * between(0.35, 0.65), y: box.y + box.height * between(0.35, 0.65) };
}

async function clickLikeAPerson(page, selector) {
  await moveTo(page, await centerOf(page, selector));
  await sleep(between(80, 160));
  await page.mouse.down();
  await sleep(between(40, 90));
  await page.mouse.up();
}

// Wheel in uneven notches until the bottom (or the top, with a negative direction) is reached.
async function wheelUntil(page, direction) {
  for (let i = 0; i < 30; i++) {
    const done = await page.evaluate((down) => {
      const max = document.documentElement.scrollHeight - innerHeight;
      return down ? scrollY >= max - 1 : scrollY <= 0;
    }, direction > 0);
    if (done) return;
    await page.mouse.wheel(0, direction * between(250, 450));
    await sleep(between(50, 120));
  }
  throw new Error('scrolling did not reach the end of the page');
}

async function run() {
  browser = await chromium.launch({
    executablePath: process.env.GHOSTTRACK_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  // GHOSTTRACK_BROWSER_XFF lets the test pose as a visitor from a given IP: the collector under test trusts
  // X-Forwarded-For from loopback, as it would from a reverse proxy in production.
  const xff = process.env.GHOSTTRACK_BROWSER_XFF;
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    ...(xff ? { extraHTTPHeaders: { 'X-Forwarded-For': xff } } : {}),
  });
  const page = await context.newPage();

  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()} (${message.location().url})`);
  });

  // Requests are matched against the endpoint once the page has told us which it is. The final beacon goes
  // out while the page unloads, so listen on the context, which outlives the document.
  let endpoint = null;
  const requests = [];
  context.on('request', (request) => requests.push(request));

  await page.goto(pageUrl, { waitUntil: 'load' });
  await page.waitForFunction(() => window.__gt === 1, null, { timeout: 5_000 });
  endpoint = await page.evaluate(() => {
    const config = document.getElementById('ghosttrack-config');
    const script = document.querySelector('script[data-site]');
    const configured = (config && JSON.parse(config.textContent).endpoint) || (script && script.dataset.endpoint);
    if (configured) return new URL(configured, location.href).href;
    if (config) return new URL('/apps/ghosttrack/collect', location.href).href;
    return new URL('/collect', script.src).href;
  });
  const isCollect = (request) => request.method() === 'POST' && request.url() === endpoint;

  // Look around the product, then press Tab twice (counted, never read) and click a button.
  await moveTo(page, { x: between(150, 250), y: between(200, 300) });
  await moveTo(page, { x: between(350, 450), y: between(450, 550) });
  await page.keyboard.press('Tab');
  await sleep(between(100, 200));
  await page.keyboard.press('Tab');
  await clickLikeAPerson(page, '#wishlist');

  await wheelUntil(page, +1);
  await moveTo(page, { x: between(500, 700), y: between(300, 500) });
  await wheelUntil(page, -1);

  // Add to cart, and wait until the tracker reports it (it reads the cart token first, then flushes).
  const addReported = page.waitForRequest((request) => isCollect(request) && /"t":"ac"/.test(request.postData() || ''), {
    timeout: 10_000,
  });
  await clickLikeAPerson(page, '#add-to-cart');
  await addReported;
  await sleep(300);

  // Leaving fires pagehide: the tracker sends the rest (visibility, pointer path, counts) as a beacon.
  await page.goto('about:blank');
  await sleep(1_000);

  for (const request of requests.filter(isCollect)) {
    const response = await request.response().catch(() => null);
    collect.push({ postData: request.postData(), status: response ? response.status() : null });
  }
}

const guard = setTimeout(() => {
  finish({ ok: false, error: `timed out after ${RUN_TIMEOUT_MS} ms`, errors }, 1);
  process.exit(1);
}, RUN_TIMEOUT_MS);

try {
  await run();
  const events = {};
  for (const { postData } of collect) {
    for (const event of JSON.parse(postData).e) events[event.t] = (events[event.t] || 0) + 1;
  }
  const summary = {
    ok: errors.length === 0 && collect.length > 0,
    collectRequests: collect.length,
    statuses: collect.map((c) => c.status),
    events,
  };
  if (errors.length) summary.errors = errors;
  finish(summary, summary.ok ? 0 : 1);
} catch (error) {
  finish({ ok: false, error: String((error && error.message) || error), errors, collectRequests: collect.length }, 1);
} finally {
  clearTimeout(guard);
  if (browser) await browser.close().catch(() => {});
}
