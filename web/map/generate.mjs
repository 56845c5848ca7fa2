// Writes web/src/logic/world-110m.txt: the world map of the Geography page as projected SVG path
// strings keyed by ISO 3166-1 alpha-2, so the panel draws it offline (no tiles, no network).
//
// Run by hand when the shapes should change (the output is committed):
//   cd web/map && npm ci && node generate.mjs
//
// Source: world-atlas 2.0 `countries-110m` (Natural Earth 1:110m, public domain), whose ids are
// ISO 3166-1 numeric codes; i18n-iso-countries maps them to alpha-2 and gives English names. Three
// shapes carry no numeric id and are mapped by name (ID_LESS). Projection: Equal Earth (equal-area,
// so shaded areas compare fairly), fitted to WIDTH; coordinates rounded to DIGITS decimals.
// Antarctica is left out (no storefront traffic, a fifth of the map's height).
//
// Output format, one line each: `W H` (the viewBox), then `CC<TAB>Name<TAB>path` (relative
// commands: `m`, `l`, `z`).

import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { geoEqualEarth, geoPath } from 'd3-geo';
import { feature } from 'topojson-client';
import countries from 'i18n-iso-countries';

const require = createRequire(import.meta.url);
const WIDTH = 960;
const DIGITS = 0;
const OUT = new URL('../src/logic/world-110m.txt', import.meta.url);
// Shapes without a numeric id in world-atlas, by their `name` property. GeoIP databases report
// Kosovo as XK and the other two as part of their ISO country.
const ID_LESS = { Kosovo: 'XK', 'N. Cyprus': 'CY', Somaliland: 'SO' };
const NAMES = { XK: 'Kosovo' };

const topology = JSON.parse(readFileSync(require.resolve('world-atlas/countries-110m.json'), 'utf8'));
const all = feature(topology, topology.objects.countries).features;
const shapes = all.filter((f) => f.id !== '010'); // Antarctica
const collection = { type: 'FeatureCollection', features: shapes };
const projection = geoEqualEarth().fitWidth(WIDTH, collection);
const path = geoPath(projection).digits(DIGITS);
const [[, y0], [, y1]] = path.bounds(collection);
const height = Math.ceil(y1 - y0);
projection.translate([projection.translate()[0], projection.translate()[1] - y0]);

// Rewrites d3's absolute `M…L…Z` rings as relative moves and line-tos without repeated points
// (rounding makes many neighbours equal): about half the bytes, the same drawing.
function compact(d) {
  if (!d) return '';
  let out = '';
  let [cx, cy] = [0, 0];
  for (const ring of d.split('Z').filter(Boolean)) {
    const points = ring.slice(1).split('L').map((p) => p.split(',').map(Number));
    const kept = points.filter(([x, y], i) => i === 0 || x !== points[i - 1][0] || y !== points[i - 1][1]);
    if (kept.length < 3) continue;
    out += kept.map(([x, y], i) => {
      const s = `${i === 0 ? 'm' : i === 1 ? 'l' : ' '}${x - cx} ${y - cy}`.replace(/ -/g, '-');
      [cx, cy] = [x, y];
      return s;
    }).join('') + 'z';
  }
  return out;
}

const byCode = new Map();
for (const f of shapes) {
  const code = f.id ? countries.numericToAlpha2(f.id) : ID_LESS[f.properties.name];
  if (!code) throw new Error(`no ISO alpha-2 code for ${f.id} ${f.properties.name}`);
  const d = compact(path(f));
  if (!d) continue;
  const name = NAMES[code] ?? countries.getName(code, 'en', { select: 'official' }) ?? f.properties.name;
  const entry = byCode.get(code) ?? { name, d: '' };
  entry.d += d;
  byCode.set(code, entry);
}
const lines = [`${WIDTH} ${height}`];
for (const [code, { name, d }] of [...byCode].sort(([a], [b]) => a.localeCompare(b))) {
  lines.push(`${code}\t${name}\t${d}`);
}
writeFileSync(OUT, lines.join('\n') + '\n');
console.log(`${byCode.size} countries, ${WIDTH}x${height}, ${lines.join('\n').length} bytes -> ${OUT.pathname}`);
