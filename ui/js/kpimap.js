// Small maps for dashboards and the video wall (MapLibre GL JS, bundled under /vendor):
// the communes coloured by a KPI's status, and/or the live devices, and a marker to focus
// on. Each map belongs to one panel (by its container); panels are created once and kept,
// so a wall rotating for weeks never piles up WebGL contexts.

import * as maplibregl from '/vendor/maplibre-gl.mjs';
import { DeviceLayer, POINTS_FROM_ZOOM, POINT_COLOR } from './devices.js';

const NGHE_AN = [[103.85, 18.53], [105.98, 20.02]];
const FONT = 'Be Vietnam Pro';
const maps = new Map(); // key -> { map, ready, basemap }
const pendingFocus = new Map(); // key -> [lon, lat, name], asked before the map existed


function fonts() {
  const f = (subset, range) => ({
    url: `${location.origin}/fonts/be-vietnam-pro-${subset}-400-normal.woff2`,
    'unicode-range': range,
  });
  return {
    [FONT]: [
      f('vietnamese', ['U+0102-0103', 'U+0110-0111', 'U+0128-0129', 'U+0168-0169', 'U+01A0-01A1',
        'U+01AF-01B0', 'U+0300-0301', 'U+0303-0304', 'U+0308-0309', 'U+0323', 'U+0329',
        'U+1EA0-1EF9', 'U+20AB']),
      f('latin-ext', ['U+0100-02BA', 'U+1E00-1E9F']),
      f('latin', ['U+0000-00FF']),
    ],
  };
}

// Creates the map of `key` in `container` (once; later calls only make it fit its box).
// `basemapJson`: what /api/basemap answered; `large`: the wall's bigger type.
export function kpiMapInit(key, container, basemapJson, large) {
  const old = maps.get(key);
  if (old && old.map.getContainer() === container) { old.map.resize(); return; }
  if (old) { old.map.remove(); maps.delete(key); }
  const info = JSON.parse(basemapJson || '{"kind":"none"}');
  const sources = {
    focus: { type: 'geojson', data: { type: 'FeatureCollection', features: [] } },
  };
  const layers = [{ id: 'bg', type: 'background', paint: { 'background-color': '#0b1219' } }];
  if (info.kind === 'geojson') {
    sources.units = { type: 'geojson', data: `${location.origin}${info.url}` };
  } else if (info.kind === 'pmtiles') {
    sources.units = {
      type: 'vector', tiles: [`${location.origin}${info.url}`],
      minzoom: info.min_zoom ?? 0, maxzoom: info.max_zoom ?? 14, bounds: info.bounds ?? undefined,
    };
  }
  if (sources.units) {
    const layer = info.kind === 'pmtiles' ? { 'source-layer': info.layer } : {};
    layers.push({ id: 'units-fill', type: 'fill', source: 'units', ...layer,
      paint: { 'fill-color': '#142233', 'fill-opacity': 0.9 } });
    layers.push({ id: 'units-line', type: 'line', source: 'units', ...layer,
      paint: { 'line-color': '#2f4a66', 'line-width': 0.8 } });
  }
  // The same clustered devices layer as the operations map.
  const devices = new DeviceLayer('devices', { font: FONT, large });
  Object.assign(sources, devices.sources());
  layers.push(...devices.clusterLayers());
  layers.push({ id: 'devices', type: 'circle', source: 'devices', minzoom: POINTS_FROM_ZOOM,
    paint: { 'circle-radius': large ? 7 : 4, 'circle-color': POINT_COLOR,
      'circle-stroke-color': '#0b1219', 'circle-stroke-width': 1 } });
  layers.push({ id: 'focus-halo', type: 'circle', source: 'focus',
    paint: { 'circle-radius': large ? 34 : 18, 'circle-color': '#ff453a', 'circle-opacity': 0.25,
      'circle-stroke-color': '#ff453a', 'circle-stroke-width': 3 } });
  layers.push({ id: 'focus-label', type: 'symbol', source: 'focus',
    layout: { 'text-field': ['get', 'name'], 'text-font': [FONT], 'text-size': large ? 22 : 12,
      'text-offset': [0, 2.2], 'text-anchor': 'top' },
    paint: { 'text-color': '#ffffff', 'text-halo-color': '#0b1219', 'text-halo-width': 2 } });
  const map = new maplibregl.Map({
    container, bounds: NGHE_AN, fitBoundsOptions: { padding: 10 }, attributionControl: false,
    interactive: !large, style: { version: 8, 'font-faces': fonts(), sources, layers },
  });
  const ready = new Promise((resolve) => map.on('load', resolve));
  devices.attach(map);
  if (!large) devices.clickable();
  // A tile or style that fails is named on the panel (and in the console), not just blank.
  map.on('error', (ev) => {
    const why = (ev && ev.error && ev.error.message) || String(ev);
    container.dataset.error = why;
    console.error(`map ${key}: ${why}`);
  });
  const entry = {
    map, ready, layer: info.kind === 'pmtiles' ? info.layer : null, colors: null,
    shown: new Map(), devices,
  };
  maps.set(key, entry);
  // A panel that changes size (the wall's first layout, a window moved to another monitor)
  // shows the whole province again unless it is on an alert.
  new ResizeObserver(() => {
    map.resize();
    if (!container.dataset.focus) map.fitBounds(NGHE_AN, { padding: 10, duration: 0 });
  }).observe(container);
  container.dataset.map = 'ready';
  if (pendingFocus.has(key)) {
    const [lon, lat, name] = pendingFocus.get(key);
    pendingFocus.delete(key);
    kpiMapFocus(key, lon, lat, name);
  }
}

// Colours the communes: {code: colour}; the others keep the plain fill.
export async function kpiMapColor(key, json) {
  const e = maps.get(key);
  if (!e) return;
  await e.ready;
  if (!e.map.getLayer('units-fill')) return;
  const colors = JSON.parse(json);
  const pairs = Object.entries(colors);
  const expr = pairs.length
    ? ['match', ['to-string', ['get', 'code']], ...pairs.flat(), '#142233']
    : '#142233';
  e.map.setPaintProperty('units-fill', 'fill-color', expr);
  e.map.getContainer().dataset.colored = String(pairs.length);
}

// The devices as dots: [{id, lon, lat, level}]. Lists that come while the map is still
// loading replace each other: only the last is drawn.
export async function kpiMapDevices(key, json) {
  const e = maps.get(key);
  if (!e) return;
  const waiting = e.pendingDevices !== undefined;
  e.pendingDevices = json;
  if (waiting) return;
  await e.ready;
  const list = JSON.parse(e.pendingDevices);
  delete e.pendingDevices;
  e.shown = new Map(list.map((d) => [d.id, d.level]));
  e.devices.setAll(list);
  e.map.getContainer().dataset.devices = String(list.length);
}

// Some of the `n` devices the map holds changed level: [{id, level}]. False when it does not
// hold those `n` (not drawn yet, or made again): then the whole list is sent instead.
export function kpiMapLevels(key, n, json) {
  const e = maps.get(key);
  if (!e || e.pendingDevices !== undefined || e.shown.size !== n) return false;
  for (const d of JSON.parse(json)) {
    e.shown.set(d.id, d.level);
    e.devices.setLevel(d.id, d.level);
  }
  return true;
}

// Zooms on a place and rings it (an alert's device); no place: the whole province.
export async function kpiMapFocus(key, lon, lat, name) {
  const e = maps.get(key);
  if (!e) { pendingFocus.set(key, [lon, lat, name]); return; }
  await e.ready;
  const src = e.map.getSource('focus');
  if (Number.isFinite(lon) && Number.isFinite(lat) && name) {
    src.setData({ type: 'FeatureCollection', features: [{ type: 'Feature',
      geometry: { type: 'Point', coordinates: [lon, lat] }, properties: { name } }] });
    e.map.jumpTo({ center: [lon, lat], zoom: 11.5 });
    e.map.getContainer().dataset.focus = name;
  } else {
    delete e.map.getContainer().dataset.focus;
    src.setData({ type: 'FeatureCollection', features: [] });
    e.map.fitBounds(NGHE_AN, { padding: 10, duration: 0 });
  }
}

// How many maps exist (for the soak test).
export function kpiMapCount() {
  return maps.size;
}
