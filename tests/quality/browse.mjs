// Browser clients of the quality harness: real Chromium (Debian's /usr/bin/chromium) driven by tools no one
// here wrote, one fresh browser context per session. Each session poses as its own visitor by visiting the
// storefront as http://10-1-2-3.shop.test:PORT (Chromium maps *.shop.test to loopback); the storefront logs that
// address and forwards it to the collector, like a reverse proxy. (Headers set by a driver are not sent on the
// keepalive fetches and beacons the tracker uses, so X-Forwarded-For cannot carry it.)
//
//   node browse.mjs '<json plan>'
//
// plan = {"mode": "naive"|"stealth"|"stealth-tuned"|"human"|"human-headless", "base": storefront URL,
//         "sessions": [{"ip": "10.1.2.3", "seed": 7}, …],
//         "sapimouse": the SapiMouse dx/dy CSV (human modes), "heldOut": [user ids to replay]}
// Prints one JSON line per session: {"ip", "ok", "pages", "adds", "error"?}.
//
// - naive:  playwright-core, headless, default launch: what a scraper or scalper writes first.
// - stealth: puppeteer-extra with puppeteer-extra-plugin-stealth over puppeteer-core, headless.
// - stealth-tuned: the same with the WebGL evasion set to a plausible Windows GPU (see launchStealth).
// - human:  playwright-core, HEADED (run under Xvfb), without the automation switch a person's browser does not
//           have, WebGL off (this machine has no GPU: a person's browser reports theirs, not SwiftShader).
//           The pointer replays real human movement from SapiMouse (held-out users only, see README.md):
//           the step sizes of a person's recorded block, bent toward the target.
// - human-headless: the same human driving, but in naive headless Chromium (a control: shows what the
//           environment probes alone decide).

import fs from 'node:fs';
import path from 'node:path';

const plan = JSON.parse(process.argv[2]);
const CHROMIUM = process.env.GHOSTTRACK_CHROMIUM || '/usr/bin/chromium';
const RESOLVE = '--host-resolver-rules=MAP *.shop.test 127.0.0.1';
const siteOf = (ip) => plan.base.replace('127.0.0.1', `${ip.replace(/\./g, '-')}.shop.test`);

function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- SapiMouse (human modes) ------------------------------------------------------------------------------
function loadHuman(file, heldOut) {
  const users = new Set(heldOut);
  const blocks = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const v = line.split(',').map(Number);
    if (v.length < 257 || !users.has(v[256])) continue;
    blocks.push(Array.from({ length: 128 }, (_, i) => [v[i], v[128 + i]]));
  }
  if (!blocks.length) throw new Error('no held-out SapiMouse blocks');
  return { blocks };
}

// ---- Session scripts -------------------------------------------------------------------------------------
// playwright-core and puppeteer-core order waitForFunction's arguments differently.
function waitFor(page, fn, timeout) {
  return plan.mode.startsWith('stealth') ? page.waitForFunction(fn, { timeout }) : page.waitForFunction(fn, null, { timeout });
}

async function waitTracker(page) {
  await waitFor(page, () => window.__gt === 1, 10_000).catch(() => {});
}

async function leave(page) {
  // Navigating away fires pagehide: the tracker's last beacon goes out.
  await page.goto('about:blank').catch(() => {});
  await sleep(300);
}

/** A scripted browser session: catalog, then product pages by URL, sometimes an add to cart. */
async function botSession(page, base, random, counts) {
  const pick = (n) => Math.floor(random() * n);
  await page.goto(`${base}/collections/all`, { waitUntil: 'load' });
  await waitTracker(page);
  const links = await page.$$eval('a.card__link', (as) => as.map((a) => a.getAttribute('href')));
  counts.pages++;
  const visits = 1 + pick(6);
  for (let i = 0; i < visits; i++) {
    await page.goto(base + links[pick(links.length)], { waitUntil: 'load' });
    await waitTracker(page);
    counts.pages++;
    await sleep(300 + random() * 1200);
    if (random() < 0.3) {
      await page.click('#add-to-cart');
      await waitFor(page, () => document.getElementById('cart-status').textContent !== '', 5000);
      counts.adds++;
    }
  }
}

/** A person: lands somewhere, reads, scrolls with the wheel, moves the pointer like a hand, follows links. */
async function humanSession(page, base, random, counts, human) {
  const between = (lo, hi) => lo + (hi - lo) * random();
  const pick = (a) => a[Math.floor(random() * a.length)];
  const pointer = { x: between(300, 900), y: between(200, 500) };
  const viewport = page.viewportSize();

  // One movement: consecutive steps of a human SapiMouse block (as many as the distance needs at that
  // person's own pace), the signs pointing to the target and the per-axis sums scaled to the distance (the data
  // holds |dx|, |dy| only). Events come at a browser's mousemove rate (~8–25 ms), with the block's pauses.
  async function moveTo(to) {
    const block = pick(human.blocks);
    const dx = to.x - pointer.x;
    const dy = to.y - pointer.y;
    const mean = block.reduce((s, v) => s + Math.hypot(v[0], v[1]), 0) / 128 || 1;
    const n = Math.max(8, Math.min(128, Math.round(Math.hypot(dx, dy) / mean)));
    const start = Math.floor(random() * 128);
    const steps = Array.from({ length: n }, (_, i) => block[(start + i) % 128]);
    const sx = steps.reduce((s, v) => s + v[0], 0) || 1;
    const sy = steps.reduce((s, v) => s + v[1], 0) || 1;
    let x = pointer.x;
    let y = pointer.y;
    for (const [ax, ay] of steps) {
      x += (Math.sign(dx) * ax * Math.abs(dx)) / sx;
      y += (Math.sign(dy) * ay * Math.abs(dy)) / sy;
      if (ax + ay === 0) {
        await sleep(between(20, 120)); // the hand stopped for a moment
        continue;
      }
      await page.mouse.move(x, y);
      await sleep(between(8, 25));
    }
    pointer.x = to.x;
    pointer.y = to.y;
  }

  async function targetOf(selector) {
    const box = await page.locator(selector).first().boundingBox();
    if (!box || box.y < 0 || box.y + box.height > viewport.height) return null;
    return { x: box.x + box.width * between(0.25, 0.75), y: box.y + box.height * between(0.3, 0.7) };
  }

  async function clickOn(selector) {
    let to = await targetOf(selector);
    if (!to) {
      await page.locator(selector).first().scrollIntoViewIfNeeded();
      await sleep(between(200, 600));
      to = await targetOf(selector);
      if (!to) return false;
    }
    await moveTo(to);
    await sleep(between(60, 250));
    await page.mouse.down();
    await sleep(between(50, 140));
    await page.mouse.up();
    return true;
  }

  async function read() {
    // Reading: the hand rests, drifts a little, the wheel turns in uneven notches.
    const drifts = 1 + Math.floor(random() * 3);
    for (let i = 0; i < drifts; i++) {
      await sleep(between(300, 1500));
      await moveTo({
        x: Math.min(viewport.width - 20, Math.max(20, pointer.x + between(-250, 250))),
        y: Math.min(viewport.height - 20, Math.max(20, pointer.y + between(-150, 150))),
      });
    }
    const notches = Math.floor(random() * 6);
    for (let i = 0; i < notches; i++) {
      await page.mouse.wheel(0, between(80, 400) * (random() < 0.85 ? 1 : -1));
      await sleep(between(120, 900));
    }
    if (notches && random() < 0.5) {
      await page.mouse.wheel(0, -between(400, 1500));
      await sleep(between(200, 700));
    }
  }

  const entry = pick(['/', '/collections/all', '/collections/all', `/products/${pick(['ghost-hoodie-01', 'ghost-cap-03', 'ghost-tee-07', 'ghost-mug-02'])}`]);
  await page.goto(base + entry, { waitUntil: 'load' });
  await page.mouse.move(pointer.x, pointer.y);
  await waitTracker(page);
  counts.pages++;
  const pages = 2 + Math.floor(random() * 3);
  for (let p = 0; p < pages; p++) {
    await read();
    if (random() < 0.15) await page.keyboard.press('Tab');
    const onProduct = await page.locator('#add-to-cart').count();
    if (onProduct && random() < 0.45) {
      if (await clickOn('#add-to-cart')) {
        await page.waitForFunction(() => document.getElementById('cart-status').textContent !== '', null, { timeout: 5000 }).catch(() => {});
        counts.adds++;
        await sleep(between(400, 1200));
      }
    }
    if (p === pages - 1) break;
    // Follow a link: a product card, the related product, or the catalog.
    const choices = onProduct ? ['#related-1', '#nav-catalog'] : ['a.card'];
    const before = page.url();
    const selector = pick(choices);
    await page.evaluate(() => window.scrollTo({ top: 0 }));
    await sleep(between(150, 400));
    const links = await page.locator(selector).count();
    const nth = selector === 'a.card' ? `a.card >> nth=${Math.floor(random() * Math.min(links, 6))}` : selector;
    if (!(await clickOn(nth))) break;
    await page.waitForURL((u) => u.href !== before, { timeout: 5000 }).catch(() => {});
    await page.waitForLoadState('load');
    await waitTracker(page);
    counts.pages++;
  }
}

// ---- Launchers --------------------------------------------------------------------------------------------
async function launchPlaywright(mode) {
  const { chromium } = await import('playwright-core');
  const headed = mode === 'human';
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: !headed,
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', RESOLVE,
      ...(headed ? ['--disable-blink-features=AutomationControlled', '--disable-3d-apis', '--window-size=1280,900'] : [])],
    ...(headed ? { ignoreDefaultArgs: ['--enable-automation'] } : {}),
  });
}

// stealth-tuned: the careful adversary. The plugin's WebGL evasion is given a plausible Windows GPU instead of its
// default Mac string (which client/stealth-tells knows), so only what the plugin cannot hide is left.
async function launchStealth(tuned) {
  const { default: puppeteer } = await import('puppeteer-extra');
  const { default: Stealth } = await import('puppeteer-extra-plugin-stealth');
  const stealth = Stealth();
  if (tuned) {
    const { default: WebglVendor } = await import('puppeteer-extra-plugin-stealth/evasions/webgl.vendor/index.js');
    stealth.enabledEvasions.delete('webgl.vendor');
    puppeteer.use(WebglVendor({
      vendor: 'Google Inc. (Intel)',
      renderer: 'ANGLE (Intel, Intel(R) UHD Graphics 620 (0x00005917) Direct3D11 vs_5_0 ps_5_0, D3D11)',
    }));
  }
  puppeteer.use(stealth);
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', RESOLVE],
  });
}

async function run() {
  const human = plan.mode.startsWith('human') ? loadHuman(plan.sapimouse, plan.heldOut) : null;
  const puppeteer = plan.mode.startsWith('stealth');
  const browser = puppeteer ? await launchStealth(plan.mode === 'stealth-tuned') : await launchPlaywright(plan.mode);
  try {
    for (const s of plan.sessions) {
      const counts = { pages: 0, adds: 0 };
      const random = prng(s.seed);
      let context;
      let result;
      try {
        let page;
        if (puppeteer) {
          context = await browser.createBrowserContext();
          page = await context.newPage();
          await page.setViewport({ width: 1280, height: 800 });
        } else {
          context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
          page = await context.newPage();
          if (human) {
            // Xvfb has no window manager: do not load the first page before the window is mapped (a person's
            // desktop maps it first). The 0×0 outer windows of later pages were a tracker race, fixed there.
            await waitFor(page, () => outerWidth > 0 && outerHeight > 0, 10_000);
          }
        }
        if (human) await humanSession(page, siteOf(s.ip), random, counts, human);
        else await botSession(page, siteOf(s.ip), random, counts);
        await leave(page);
        result = { ip: s.ip, ok: true, ...counts };
      } catch (e) {
        result = { ip: s.ip, ok: false, ...counts, error: String(e && e.message).slice(0, 300) };
      }
      await context?.close().catch(() => {});
      process.stdout.write(JSON.stringify(result) + '\n');
    }
  } finally {
    await browser.close();
  }
}

run().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
