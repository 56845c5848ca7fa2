// The standalone panel's sign-in in headless Chromium: an invitation link (set a password → signed in as an
// analyst, who sees the Privacy page's encryption switch disabled with the reason), the login page (axe-core), a
// wrong password, a good one (cookie session → the panel), sign out, and the login rate limit's message.
// Screenshots go to <screenshots dir>.
//
//   node login.mjs <app-url> <email> <password> <invitation-url> <screenshots-dir>
//
// Prints one JSON line {"ok":…,"pages":{…},"serious":[…],"errors":[…],…}; exits non-zero on failure.

import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const [appUrl, email, password, invitationUrl, shotsDir] = process.argv.slice(2);
if (!shotsDir) {
  console.error('usage: node login.mjs <app-url> <email> <password> <invitation-url> <screenshots-dir>');
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

function watch(page) {
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('response', (r) => { if (r.status() >= 500) errors.push(`HTTP ${r.status()} ${r.url()}`); });
}

async function audit(page, name) {
  // Through the DevTools protocol: the panel's CSP refuses injected inline scripts.
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  const path = `${shotsDir}/panel-${name}.png`;
  await page.screenshot({ path, fullPage: true });
  summary.screenshots.push(path);
  summary.pages[name] = { violations };
}

async function attempt(page, pw) {
  await page.fill('#email', email);
  await page.fill('#password', pw);
  await page.click('form button[type=submit]');
}

try {
  // An invitation link: a new password, then signed in as the invitee.
  const invited = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const ip = await invited.newPage();
  watch(ip);
  await ip.goto(invitationUrl);
  await ip.waitForSelector('#new-password', { timeout: 20_000 });
  await audit(ip, 'accept-invitation');
  await ip.fill('#new-password', 'a long enough invitee password');
  await ip.click('form button[type=submit]');
  await ip.waitForSelector('nav.sidebar', { timeout: 10_000 });
  summary.invitationSignedIn = !(await ip.url()).includes('token=');
  // The invitee is an analyst: the Privacy page shows the encryption state with the switch disabled and why.
  await ip.click('nav.sidebar a:text-is("Privacy")');
  await ip.waitForSelector('#encryption-switch', { timeout: 10_000 });
  summary.analystEncryption = await ip.$eval('#encryption-switch', (b) => ({
    disabled: b.disabled,
    checked: b.getAttribute('aria-checked'),
    reason: document.querySelector('#encryption-locked')?.textContent ?? null,
  }));
  await audit(ip, 'privacy-analyst');
  await invited.close();

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  watch(page);
  const started = Date.now();
  await page.goto(`${appUrl}/app`);
  await page.waitForSelector('#email', { timeout: 20_000 });
  summary.loginRenderMs = Date.now() - started;
  await audit(page, 'login');

  await attempt(page, 'not the password');
  await page.waitForSelector('[role=alert]', { timeout: 5_000 });
  summary.wrongPassword = await page.textContent('[role=alert]');

  await attempt(page, password);
  await page.waitForSelector('nav.sidebar', { timeout: 10_000 });
  await page.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Overview', null, { timeout: 10_000 });
  summary.cookie = (await context.cookies()).find((c) => c.name === 'gt_session') || null;
  await audit(page, 'standalone-overview');

  // A reload keeps the session (the cookie), sign-out ends it.
  await page.reload();
  await page.waitForSelector('nav.sidebar', { timeout: 10_000 });
  await page.click('#sign-out');
  await page.waitForSelector('#email', { timeout: 10_000 });
  await page.reload();
  await page.waitForSelector('#email', { timeout: 10_000 });
  summary.signedOut = true;

  // Too many wrong passwords: the form says when to try again.
  for (let i = 0; i < 10; i++) {
    await attempt(page, `wrong ${i}`);
    await page.waitForFunction((n) => document.querySelector('[role=alert]') && !document.querySelector('form button[disabled]'), i, { timeout: 10_000 });
    const text = await page.textContent('[role=alert]');
    if (text.includes('Too many attempts')) {
      summary.rateLimited = text;
      break;
    }
  }
  await audit(page, 'login-rate-limited');

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
