// The map, drawn by MapLibre GL JS (bundled under /vendor, never fetched from the internet).
// Leptos drives it through these few functions; it knows nothing about the server.
//
// Markers are the shared devices layer (`devices.js`): clusters coloured by their worst
// device, and past the clusters' zoom a circle per device coloured by its level and a white
// symbol per device kind.

import * as maplibregl from '/vendor/maplibre-gl.mjs';
import {
  DeviceLayer, LEVEL, POINTS_FROM_ZOOM, POINT_COLOR, clusterCard,
} from './devices.js';

const NGHE_AN = [[103.85, 18.53], [105.98, 20.02]];
const FONT = 'Be Vietnam Pro';

let map = null;
let ready = null;
let shown = new Map(); // id -> level
const devices = new DeviceLayer('entities', { font: 'Be Vietnam Pro' });
let selected = null;

function fontFaces() {
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

// White pictograms for each kind, drawn once on a canvas.
function icon(kind) {
  const s = 32, c = document.createElement('canvas');
  c.width = c.height = s;
  const g = c.getContext('2d');
  g.strokeStyle = g.fillStyle = '#ffffff';
  g.lineWidth = 3; g.lineCap = g.lineJoin = 'round';
  g.beginPath();
  switch (kind) {
    case 'AirQualityStation': // wind
      g.moveTo(6, 11); g.lineTo(21, 11); g.arc(21, 8, 3, Math.PI / 2, -Math.PI / 1.2, true);
      g.moveTo(6, 17); g.lineTo(25, 17);
      g.moveTo(6, 23); g.lineTo(18, 23); g.arc(18, 26, 3, -Math.PI / 2, Math.PI / 1.2);
      g.stroke(); break;
    case 'WaterLevelGauge': // waves
      for (const y of [11, 18, 25]) {
        g.moveTo(5, y);
        g.bezierCurveTo(9, y - 4, 12, y + 4, 16, y);
        g.bezierCurveTo(20, y - 4, 23, y + 4, 27, y);
      }
      g.stroke(); break;
    case 'RainGauge': // drop
      g.moveTo(16, 5); g.bezierCurveTo(10, 14, 8, 18, 8, 21);
      g.arc(16, 21, 8, Math.PI, 0, true); g.bezierCurveTo(24, 18, 22, 14, 16, 5);
      g.fill(); break;
    case 'TrafficCounter': // car
      g.moveTo(6, 20); g.lineTo(8, 12); g.lineTo(24, 12); g.lineTo(26, 20); g.closePath();
      g.fill(); g.beginPath(); g.arc(10.5, 22, 3, 0, 2 * Math.PI); g.arc(21.5, 22, 3, 0, 2 * Math.PI);
      g.fill(); break;
    case 'Camera': // camera
      g.fillRect(5, 11, 16, 11);
      g.moveTo(21, 14); g.lineTo(27, 10); g.lineTo(27, 23); g.lineTo(21, 19); g.closePath(); g.fill();
      break;
    default:
      g.arc(16, 16, 5, 0, 2 * Math.PI); g.fill();
  }
  return g.getImageData(0, 0, s, s);
}

export function mapInit(container, onSelect) {
  map = new maplibregl.Map({
    container,
    bounds: NGHE_AN,
    fitBoundsOptions: { padding: 20 },
    attributionControl: false,
    dragRotate: false,
    pitchWithRotate: false,
    style: {
      version: 8,
      'font-faces': fontFaces(),
      sources: devices.sources(),
      layers: [
        { id: 'background', type: 'background', paint: { 'background-color': '#0b1219' } },
        {
          id: 'halo', type: 'circle', source: 'entities', minzoom: POINTS_FROM_ZOOM,
          filter: ['in', ['get', 'kind'], ['literal', ['AirQualityStation', 'WaterLevelGauge', 'RainGauge', 'TrafficCounter', 'Camera']]],
          paint: {
            'circle-radius': ['interpolate', ['linear'], ['zoom'], 6, 9, 12, 20],
            'circle-color': POINT_COLOR,
            'circle-blur': 0.6,
            'circle-opacity': ['match', LEVEL, ['critical', 'major'], 0.55, 'warning', 0.35, 0],
          },
        },
        ...devices.clusterLayers(),
        {
          id: 'markers', type: 'circle', source: 'entities', minzoom: POINTS_FROM_ZOOM,
          paint: {
            'circle-radius': ['interpolate', ['linear'], ['zoom'], 6, 5, 10, 8, 14, 12],
            'circle-color': POINT_COLOR,
            'circle-stroke-color': ['case', ['boolean', ['feature-state', 'selected'], false], '#ffffff', '#0b1219'],
            'circle-stroke-width': ['case', ['boolean', ['feature-state', 'selected'], false], 3, 1.5],
          },
        },
        {
          id: 'kinds', type: 'symbol', source: 'entities',
          minzoom: POINTS_FROM_ZOOM,
          layout: {
            'icon-image': ['get', 'kind'],
            'icon-size': ['interpolate', ['linear'], ['zoom'], 9.5, 0.35, 14, 0.55],
            'icon-allow-overlap': true,
            'icon-ignore-placement': true,
          },
        },
        {
          id: 'names', type: 'symbol', source: 'entities',
          minzoom: POINTS_FROM_ZOOM,
          layout: {
            'text-field': ['get', 'name'],
            'text-font': [FONT],
            'text-size': 12,
            'text-offset': [0, 1.3],
            'text-anchor': 'top',
            'text-optional': true,
          },
          paint: { 'text-color': '#c9d1d9', 'text-halo-color': '#0b1219', 'text-halo-width': 1.5 },
        },
      ],
    },
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  performance.mark('ioc-map-created');
  ready = new Promise((resolve) => map.on('load', () => {
    performance.mark('ioc-map-loaded');
    resolve();
  }));
  devices.attach(map);
  devices.clickable((id) => onSelect(id));
  // A tile or style that fails is named on the map's element (and in the console).
  map.on('error', (ev) => {
    const why = (ev && ev.error && ev.error.message) || String(ev);
    container.dataset.error = why;
    console.error(`map: ${why}`);
  });
  ready.then(() => {
    for (const k of ['AirQualityStation', 'WaterLevelGauge', 'RainGauge', 'TrafficCounter', 'Camera']) {
      map.addImage(k, icon(k), { pixelRatio: 1 });
    }
  });
  const pick = (e) => {
    const f = e.features && e.features[0];
    if (f) onSelect(String(f.properties.id));
  };
  map.on('click', 'markers', pick);
  map.on('mouseenter', 'markers', () => { map.getCanvas().style.cursor = 'pointer'; });
  map.on('mouseleave', 'markers', () => { map.getCanvas().style.cursor = ''; });
  // The hover card: the device's name and, for a camera with a still, its recent picture,
  // asked again every 10 s while the card stays (the engine asks the camera at most once per
  // interval whoever asks). Built once per device hovered, not on every mouse move.
  const tip = new maplibregl.Popup({ closeButton: false, closeOnClick: false, className: 'map-tip', offset: 10, maxWidth: '260px' });
  let tipId = null;
  let tipTimer = null;
  const tipClear = () => {
    if (tipTimer) clearInterval(tipTimer);
    tipTimer = null;
    tipId = null;
    tip.remove();
  };
  map.on('mousemove', 'markers', (e) => {
    const f = e.features && e.features[0];
    if (!f) return;
    const id = String(f.properties.id);
    if (id === tipId) return;
    tipClear();
    tipId = id;
    const card = document.createElement('div');
    const name = document.createElement('div');
    name.textContent = f.properties.name;
    card.appendChild(name);
    if (f.properties.still === true || f.properties.still === 'true') {
      const img = document.createElement('img');
      img.className = 'tip-still';
      img.alt = '';
      img.dataset.camera = id;
      let n = 0;
      const load = () => { n += 1; img.src = `${location.origin}/api/cameras/${encodeURIComponent(id)}/snapshot?n=${n}`; };
      img.onerror = () => { img.style.display = 'none'; };
      img.onload = () => { img.style.display = ''; };
      load();
      tipTimer = setInterval(load, 10000);
      card.appendChild(img);
    }
    tip.setLngLat(f.geometry.coordinates).setDOMContent(card).addTo(map);
  });
  map.on('mouseleave', 'markers', tipClear);
  // A cluster's card: how many devices, and how many of them at each level that needs eyes.
  let tipCluster = null;
  map.on('mousemove', 'clusters', (e) => {
    const f = e.features && e.features[0];
    if (!f || f.properties.cell === tipCluster) return;
    tipClear();
    tipCluster = f.properties.cell;
    tip.setLngLat(f.geometry.coordinates).setDOMContent(clusterCard(f.properties)).addTo(map);
  });
  map.on('mouseleave', 'clusters', () => { tipCluster = null; tipClear(); });
  new ResizeObserver(() => map.resize()).observe(container);
  window.__iocMap = map; // for end-to-end tests and debugging
  window.__iocLevel = (id) => shown.get(id) ?? null; // the level last given to a device
  window.__iocDevices = devices; // the clusters: `holding(id)`, for tests and benchmarks
}

// The boundaries under the markers: GeoJSON served whole, or PMTiles served as z/x/y tiles.
export async function mapSetBasemap(infoJson) {
  const info = JSON.parse(infoJson);
  await ready;
  if (info.kind === 'none') return;
  // The basemap's tiles are behind sign-in: same-origin requests carry the session cookie.
  if (info.kind === 'geojson') {
    map.addSource('basemap', { type: 'geojson', data: `${location.origin}${info.url}` });
  } else {
    map.addSource('basemap', {
      type: 'vector',
      tiles: [`${location.origin}${info.url}`],
      minzoom: info.min_zoom ?? 0,
      maxzoom: info.max_zoom ?? 14,
      bounds: info.bounds ?? undefined,
    });
  }
  const layer = info.kind === 'pmtiles' ? { 'source-layer': info.layer } : {};
  const name = info.name_field || 'name';
  map.addLayer({ id: 'units-fill', type: 'fill', source: 'basemap', ...layer,
    paint: { 'fill-color': '#142233', 'fill-opacity': 0.85 } }, 'halo');
  map.addLayer({ id: 'units-line', type: 'line', source: 'basemap', ...layer,
    paint: { 'line-color': '#2f4a66', 'line-width': ['interpolate', ['linear'], ['zoom'], 6, 0.6, 12, 1.6] } }, 'halo');
  map.addLayer({ id: 'units-label', type: 'symbol', source: 'basemap', ...layer, minzoom: 8.5,
    layout: { 'text-field': ['get', name], 'text-font': [FONT], 'text-size': 11, 'symbol-placement': 'point' },
    paint: { 'text-color': '#6f8aa6', 'text-halo-color': '#0b1219', 'text-halo-width': 1 } }, 'halo');
}

// Replaces every marker: [{id, name, kind, lon, lat, level}].
export async function mapSetEntities(json) {
  if (!ready) return; // no map yet: it is given the whole picture when it starts
  const list = JSON.parse(json);
  await ready;
  devices.setAll(list, (e) => ({ name: e.name, kind: e.kind, still: !!e.still }));
  performance.mark('ioc-devices-set');
  shown = new Map();
  for (const e of list) shown.set(e.id, e.level);
  if (selected) map.setFeatureState({ source: 'entities', id: selected }, { selected: true });
  summarize();
}

// A cheap summary for tests and the status line: markers drawn and how many per level.
function summarize() {
  const counts = {};
  for (const l of shown.values()) counts[l] = (counts[l] || 0) + 1;
  const c = container();
  c.dataset.markers = String(shown.size);
  c.dataset.levels = JSON.stringify(counts);
}

function container() {
  return map.getContainer();
}

function setLevel(id, level) {
  devices.setLevel(id, level);
  shown.set(id, level);
}

// Changes the colour of some markers: [{id, level}].
export async function mapUpdate(json) {
  if (!ready) return; // no map yet: it is given the whole picture when it starts
  const list = JSON.parse(json);
  await ready;
  for (const e of list) {
    if (shown.get(e.id) !== e.level) setLevel(e.id, e.level);
  }
  summarize();
}

// Highlights one marker; flies to it when `fly`.
export async function mapSelect(id, lon, lat, fly) {
  if (!ready) return; // no map yet: it is given the whole picture when it starts
  await ready;
  if (selected) map.setFeatureState({ source: 'entities', id: selected }, { selected: false });
  selected = id || null;
  if (!selected) return;
  map.setFeatureState({ source: 'entities', id: selected }, { selected: true });
  // Past the clusters' zoom, so the device is a marker of its own.
  if (fly) map.flyTo({ center: [lon, lat], zoom: Math.max(map.getZoom(), POINTS_FROM_ZOOM + 0.5), speed: 1.6 });
}

// Areas of received alerts (CAP polygons/circles): a FeatureCollection.
export async function mapSetAreas(json) {
  if (!ready) return; // no map yet: it is given the whole picture when it starts
  const fc = JSON.parse(json);
  await ready;
  if (!map.getSource('alert-areas')) {
    map.addSource('alert-areas', { type: 'geojson', data: fc });
    const color = ['match', ['get', 'severity'], 'critical', '#ff453a', 'major', '#ff9f0a',
      'warning', '#ffd60a', '#64d2ff'];
    map.addLayer({ id: 'alert-areas-fill', type: 'fill', source: 'alert-areas',
      paint: { 'fill-color': color, 'fill-opacity': ['case', ['get', 'active'], 0.22, 0.08] } }, 'halo');
    map.addLayer({ id: 'alert-areas-line', type: 'line', source: 'alert-areas',
      paint: { 'line-color': color, 'line-width': 2, 'line-dasharray': [2, 1] } }, 'halo');
  } else {
    map.getSource('alert-areas').setData(fc);
  }
  container().dataset.areas = String(fc.features.length);
}

// Fits the view to a GeoJSON geometry.
export async function mapFitGeometry(json) {
  if (!ready) return; // no map yet: it is given the whole picture when it starts
  const g = JSON.parse(json);
  await ready;
  let w = 180, s = 90, e = -180, n = -90;
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else c.forEach(walk);
  };
  walk(g.coordinates);
  if (w <= e) map.fitBounds([[w, s], [e, n]], { padding: 60, maxZoom: 13 });
}

export function mapHome() {
  if (map) map.fitBounds(NGHE_AN, { padding: 20 });
}
