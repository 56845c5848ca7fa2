// What the tracker records when a script moves the pointer through real Chromium (docs/DETECTION.md, "Calibration
// of the pointer rules"). A blank page runs the tracker's sampling of tracker/ghosttrack.js (2 px grid, samples
// ≥ 16 ms apart, unchanged positions skipped); playwright-core moves the mouse three ways; the script prints, per
// way, the dt distribution and how many 12-step windows the straight/steady features would judge and flag
// (the constants of backend/src/detect/features.rs). Not part of the harness run; for the numbers in the doc.
//
//   node tests/quality/pointer-probe.mjs            # headless
//   xvfb-run -a node tests/quality/pointer-probe.mjs headed
import { chromium } from 'playwright-core';

const PAGE = `<!doctype html><body style="width:1200px;height:800px;margin:0"><script>
window.path = []; let prevT = 0, prevX = 0, prevY = 0, lastSample = -99;
document.addEventListener('mousemove', (e) => {
  const t = Math.round(performance.now()), x = Math.round(e.pageX / 2) * 2, y = Math.round(e.pageY / 2) * 2;
  if (t - lastSample < 16 || (x == prevX && y == prevY)) return;
  path.push(t - prevT, x - prevX, y - prevY); prevT = lastSample = t; prevX = x; prevY = y;
}, { capture: true, passive: true });
</script></body>`;

// backend/src/detect/features.rs
const WINDOW = 12, MIN_PX = 48, PAUSE_MS = 100, STRAIGHT_MIN = 0.998, STEADY_CV_MAX = 0.15;

function judge(samples) {
  const dts = new Map();
  let cur = [], windows = 0, straight = 0, steady = 0;
  for (let i = 3; i + 2 < samples.length; i += 3) {
    const [dt, dx, dy] = samples.slice(i, i + 3);
    dts.set(dt, (dts.get(dt) || 0) + 1);
    if (dt > PAUSE_MS || (dx === 0 && dy === 0)) {
      cur = [];
      if (dx === 0 && dy === 0) continue;
    }
    cur.push([dx, dy]);
    if (cur.length < WINDOW) continue;
    const len = cur.map(([a, b]) => Math.hypot(a, b));
    const total = len.reduce((s, v) => s + v, 0);
    const sx = cur.reduce((s, v) => s + v[0], 0), sy = cur.reduce((s, v) => s + v[1], 0);
    cur = [];
    if (total < MIN_PX) continue;
    windows++;
    if (Math.hypot(sx, sy) / total >= STRAIGHT_MIN) straight++;
    const mean = total / WINDOW;
    const sd = Math.sqrt(Math.max(0, len.reduce((s, v) => s + v * v, 0) / WINDOW - mean * mean));
    if (sd / mean <= STEADY_CV_MAX) steady++;
  }
  const top = [...dts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([d, n]) => `${d} ms ×${n}`).join(', ');
  return { samples: (samples.length - 3) / 3, dt: top, windows, straight, steady };
}

const headed = process.argv[2] === 'headed';
const browser = await chromium.launch({
  executablePath: process.env.GHOSTTRACK_CHROMIUM || '/usr/bin/chromium', headless: !headed, args: ['--no-sandbox'],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
await page.setContent(PAGE);
await page.mouse.move(100, 100);
const reset = () => page.evaluate(() => { window.path = []; });
const result = {};
for (const steps of [20, 50]) {
  // Interpolated moves back and forth (playwright's {steps}), a rest of 300 ms between targets.
  await reset();
  for (let i = 0; i < 6; i++) {
    await page.mouse.move(i % 2 ? 100 : 900 - i * 20, i % 2 ? 120 + i * 30 : 600, { steps });
    await new Promise((r) => setTimeout(r, 300));
  }
  result[`mouse.move steps:${steps}`] = judge(await page.evaluate(() => window.path));
}
// One move per loop turn, 10 ms apart, along a line.
await reset();
for (let i = 0; i <= 60; i++) {
  await page.mouse.move(100 + i * 13, 100 + i * 7);
  await new Promise((r) => setTimeout(r, 10));
}
result['loop, 10 ms sleeps'] = judge(await page.evaluate(() => window.path));
console.log(JSON.stringify({ headed, ...result }, null, 1));
await browser.close();
