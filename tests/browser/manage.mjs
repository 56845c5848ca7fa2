// Drives the panel's management pages inside the fake Shopify admin in headless Chromium: Alerts (a bad
// threshold is refused naming the field, then saved; a test alert is sent; a dead letter retried), Rules (a
// threshold override saved), Billing (upgrade → the fake Shopify confirmation page in the top window → approve →
// back in the app on Pro, and the over-quota banner gone). axe-core checks each page; screenshots go to
// <screenshots dir>.
//
//   node manage.mjs <admin-url> <app-url> <screenshots-dir>
//
// <app-url> is where the app really listens; Shopify's redirects to the app's public URL
// (https://ghosttrack.test) and to admin.shopify.com are routed to it and to <admin-url>.
// Prints one JSON line {"ok":…,"pages":{…},"serious":[…],"errors":[…]}; exits non-zero on failure.

import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const [adminUrl, appUrl, shotsDir] = process.argv.slice(2);
if (!shotsDir) {
  console.error('usage: node manage.mjs <admin-url> <app-url> <screenshots-dir>');
  process.exit(2);
}
mkdirSync(shotsDir, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const errors = [];
const summary = { ok: false, pages: {}, screenshots: [] };

const browser = await chromium.launch({
  executablePath: process.env.GHOSTTRACK_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  // 4xx answers are part of the story (a refused threshold); a 5xx never is.
  page.on('response', (r) => { if (r.status() >= 500) errors.push(`HTTP ${r.status()} ${r.url()}`); });
  // Shopify redirects to the app's public URL (https://ghosttrack.test) and the app back into
  // admin.shopify.com. Playwright does not intercept redirect hops, so the two requests that answer those
  // redirects are replayed here and their Location rewritten to where the test servers listen.
  const rewrite = (location) => {
    const u = new URL(location);
    if (u.host === 'ghosttrack.test') return appUrl + u.pathname + u.search;
    if (u.host === 'admin.shopify.com') return adminUrl;
    return location;
  };
  const hop = async (route) => {
    const response = await route.fetch({ maxRedirects: 0 });
    const location = response.headers()['location'];
    if (!location) return route.fulfill({ response });
    const target = JSON.stringify(rewrite(location));
    return route.fulfill({ status: 200, contentType: 'text/html', body: `<!doctype html><title>Redirecting</title><script>location.replace(${target})</script>` });
  };
  await page.route('**/admin/charges/*/approve*', hop);
  await page.route('**/billing/shopify/return*', hop);

  let frame;
  async function enterAdmin() {
    await page.goto(adminUrl);
    frame = await (await page.waitForSelector('#app-frame')).contentFrame();
    await frame.waitForSelector('main h1', { timeout: 20_000 });
    await page.waitForSelector('#admin-nav a', { timeout: 10_000 });
  }
  async function audit(name) {
    // Through the DevTools protocol: the panel's CSP refuses injected inline scripts.
    await frame.evaluate(axeSource);
    const violations = await frame.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
    });
    const path = `${shotsDir}/panel-${name}.png`;
    await page.screenshot({ path, fullPage: true });
    summary.screenshots.push(path);
    summary.pages[name] = { violations };
  }
  async function open(label, ready) {
    await page.click(`#admin-nav a:text-is("${label}")`);
    await frame.waitForFunction((t) => document.querySelector('main h1')?.textContent === t, label, { timeout: 10_000 });
    await frame.waitForSelector(ready, { timeout: 10_000 });
  }

  await enterAdmin();
  await frame.waitForSelector('.quota-banner', { timeout: 10_000 }).catch(() => {});
  summary.bannerBefore = await frame.$eval('.quota-banner', (e) => e.textContent).catch(() => null);

  // Alerts: the policy form refuses a bad threshold by name, then saves.
  await open('Alerts', 'form.policy');
  await audit('alerts');
  await frame.fill('#burst_window_minutes', '0');
  await frame.dispatchEvent('#burst_window_minutes', 'change');
  await frame.click('form.policy button[type=submit]');
  await frame.waitForSelector('form.policy [role=alert]', { timeout: 5_000 });
  summary.policyError = await frame.textContent('form.policy [role=alert]');
  summary.invalidMarked = await frame.getAttribute('#burst_window_minutes', 'aria-invalid');
  await frame.fill('#burst_window_minutes', '15');
  await frame.dispatchEvent('#burst_window_minutes', 'change');
  await frame.click('form.policy button[type=submit]');
  await frame.waitForSelector('form.policy [role=status]', { timeout: 5_000 });
  // A test alert, then the dead letter back in the queue.
  const before = await frame.$$eval('#deliveries tr.delivery', (rows) => rows.length);
  await frame.click('button.test-alert');
  await frame.waitForFunction((n) => document.querySelectorAll('#deliveries tr.delivery').length > n, before, { timeout: 5_000 });
  summary.testAlertSent = true;
  await frame.waitForSelector('#dead-letters button.retry', { timeout: 5_000 });
  await audit('alerts-dead-letter');
  await frame.click('#dead-letters button.retry');
  await frame.waitForFunction(() => !document.querySelector('#dead-letters'), null, { timeout: 5_000 });
  summary.deadLetterRetried = true;

  // Rules: a threshold within the bounds is saved for this shop.
  await open('Rules', 'article.rule form.rule-settings');
  const card = 'article.rule[data-rule="rate/burst"]';
  await frame.fill(`${card} #threshold-rate-burst`, '3');
  await frame.click(`${card} button[type=submit]`);
  await frame.waitForSelector(`${card} [role=status]`, { timeout: 5_000 });
  summary.ruleState = await frame.textContent(`${card} .rule-state`);
  await audit('rules-edit');

  // Billing: upgrade through Shopify's confirmation page in the top window.
  await open('Billing', 'article.plan');
  await audit('billing');
  await frame.click('button[data-plan="pro"]');
  await page.waitForSelector('#approve', { timeout: 10_000 });
  summary.confirmationUrl = page.url();
  await page.screenshot({ path: `${shotsDir}/panel-billing-confirmation.png`, fullPage: true });
  await page.click('#approve');
  await page.waitForURL((u) => u.toString().startsWith(adminUrl.split('?')[0]), { timeout: 10_000 });
  frame = await (await page.waitForSelector('#app-frame')).contentFrame();
  await frame.waitForSelector('main h1', { timeout: 20_000 });
  await open('Billing', '#current-plan');
  await frame.waitForFunction(() => document.querySelector('#current-plan')?.textContent.includes('Pro'), null, { timeout: 5_000 });
  summary.planAfter = await frame.textContent('#current-plan');
  summary.bannerAfter = await frame.$eval('.quota-banner', (e) => e.textContent).catch(() => null);
  await audit('billing-pro');

  await page.setViewportSize({ width: 360, height: 800 });
  await open('Alerts', 'form.policy');
  await audit('alerts-360');

  summary.serious = Object.entries(summary.pages).flatMap(([name, p]) =>
    p.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${name}: ${v.id} (${v.help})`));
  summary.errors = errors;
  summary.ok = errors.length === 0 && summary.serious.length === 0;
} catch (e) {
  summary.errors = [...errors, String((e && e.stack) || e)];
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(summary) + '\n');
process.exitCode = summary.ok ? 0 : 1;
