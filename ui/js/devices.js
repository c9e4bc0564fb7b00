// The devices layer every map draws (the operations map, the dashboards' and the wall's small
// maps). A province of 100,000 devices is a few hundred clusters at the province's zoom, not
// 100,000 circles.
//
// A cluster tells the truth about what it holds: its number, and the colour of the worst status
// inside it, so a red device never hides in a green cluster. Devices do not move, their status
// does, so the clusters are cells of a fixed quadtree of the world (a cell of zoom z holds the
// four of zoom z + 1 under it), each keeping how many devices it holds at each level. A status
// change moves one count per zoom (13 steps), so 2,000 changes cost microseconds, not a
// re-clustering of 100,000 points; the clusters in view are then redrawn once per frame. A cell
// is drawn near the mean place of its devices (kept within the middle half of the cell, so two
// neighbours never sit on each other), so the grid does not show; a cell of one device is drawn
// where the device is. Past the clusters' zoom every device is its own marker, coloured through
// feature-state at once; the map holds only the markers around the view (about a view to
// spare on each side), replaced when the view leaves them.

import * as maplibregl from '/vendor/maplibre-gl.mjs';

// One map worker, whatever the browser reports: the devices are clustered here, on the page,
// so the worker only cuts the basemap's tiles and the markers around the view, and each worker
// is a whole JavaScript engine of its own (WebKit reports four or eight cores against
// fingerprinting, which gave the desktop window two workers on a two-core workstation: about
// 15 MB of its memory for nothing).
maplibregl.setWorkerCount(1);

export const RANK = {
  unknown: 0, normal: 1, info: 2, offline: 3, fault: 4, warning: 5, major: 6, critical: 7,
};
export const COLORS = {
  critical: '#ff453a', major: '#ff9f0a', warning: '#ffd60a', fault: '#bf5af2',
  offline: '#6e7681', info: '#64d2ff', normal: '#30d158', unknown: '#8b949e',
};
const BY_RANK = Object.keys(RANK).sort((a, b) => RANK[a] - RANK[b]); // rank -> level

// A point's level: its feature-state (set at once on a change) or its property.
export const LEVEL = ['coalesce', ['feature-state', 'level'], ['get', 'level'], 'unknown'];
export const POINT_COLOR = ['match', LEVEL, ...Object.entries(COLORS).flat(), COLORS.unknown];
const CLUSTER_COLOR = ['match', ['get', 'rank'],
  ...BY_RANK.flatMap((l) => [RANK[l], COLORS[l]]), COLORS.unknown];

export const EMPTY = { type: 'FeatureCollection', features: [] };

// Clusters up to this zoom; past it (from zoom 12.5 on) every device is its own marker.
export const CLUSTER_MAX_ZOOM = 12;
export const POINTS_FROM_ZOOM = CLUSTER_MAX_ZOOM + 0.5;
// The devices' own markers are given to the map only from this zoom on, and only those around
// the view: at the province's zoom nobody sees them, and handing MapLibre's worker 100,000
// points to index would cost the first render a second and more.
const POINTS_DATA_FROM_ZOOM = POINTS_FROM_ZOOM - 1.5;
// A cell's side on the screen at its own zoom, px (57–113 px as the zoom goes between).
const CELL_PX = 80;
const WORLD_PX = 512;
const NOT_NORMAL = ['critical', 'major', 'warning', 'fault', 'offline'];

// Web Mercator at zoom 0, in cells' units, and back.
function unworld(x, y) {
  const n = Math.PI - 2 * Math.PI * ((y * CELL_PX) / WORLD_PX);
  return [((x * CELL_PX) / WORLD_PX) * 360 - 180, (Math.atan(Math.sinh(n)) * 180) / Math.PI];
}

function world(lon, lat) {
  const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return [
    ((lon + 180) / 360) * WORLD_PX / CELL_PX,
    (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * WORLD_PX / CELL_PX,
  ];
}

const key = (cx, cy) => cx * 1048576 + cy;

function newCell(id, cx, cy, only) {
  return { id, cx, cy, n: 0, x: 0, y: 0, w: 180, s: 90, e: -180, nn: -90,
    counts: new Int32Array(8), only };
}

// One map's devices: a GeoJSON source of the devices themselves (`source`) and one of the
// clusters in view (`source-clusters`).
export class DeviceLayer {
  constructor(source, { font, large = false, prefix = '' } = {}) {
    this.source = source;
    this.clusters = `${source}-clusters`;
    this.font = font;
    this.large = large;
    this.prefix = prefix;
    this.map = null;
    this.devices = new Map(); // id -> { x, y, rank, id, lon, lat, level, props }
    this.pointsBox = null; // [w, s, e, n] of the markers the map holds, 'none', or null
    this.cells = []; // per zoom: Map key -> cell
    this.dirty = false;
    this.level = -1; // the zoom the clusters in view were made for
  }

  // The sources to put in the map's style.
  sources() {
    return {
      [this.source]: { type: 'geojson', data: EMPTY, promoteId: 'id' },
      [this.clusters]: { type: 'geojson', data: EMPTY },
    };
  }

  // The cluster layers: a circle sized by how many it holds, in its worst device's colour (a
  // glow when that is critical or major), its number; a cell of one device is drawn as a dot.
  clusterLayers() {
    const k = this.large ? 1.4 : 1;
    const p = this.prefix;
    const src = this.clusters;
    const many = ['>', ['get', 'count'], 1];
    const size = (a, b, c, d) => ['step', ['get', 'count'], a * k, 100, b * k, 1000, c * k, 10000, d * k];
    return [
      { id: `${p}cluster-glow`, type: 'circle', source: src, maxzoom: POINTS_FROM_ZOOM,
        filter: ['>=', ['get', 'rank'], RANK.major],
        paint: { 'circle-radius': size(22, 27, 33, 40), 'circle-color': CLUSTER_COLOR,
          'circle-blur': 0.7, 'circle-opacity': 0.55 } },
      { id: `${p}clusters`, type: 'circle', source: src, maxzoom: POINTS_FROM_ZOOM, filter: many,
        paint: { 'circle-radius': size(13, 17, 21, 26), 'circle-color': CLUSTER_COLOR,
          'circle-stroke-color': '#0b1219', 'circle-stroke-width': 2 } },
      { id: `${p}cluster-singles`, type: 'circle', source: src, maxzoom: POINTS_FROM_ZOOM,
        filter: ['==', ['get', 'count'], 1],
        paint: { 'circle-radius': (this.large ? 7 : 5), 'circle-color': CLUSTER_COLOR,
          'circle-stroke-color': '#0b1219', 'circle-stroke-width': 1.5 } },
      { id: `${p}cluster-count`, type: 'symbol', source: src, maxzoom: POINTS_FROM_ZOOM, filter: many,
        layout: { 'text-field': ['get', 'label'], 'text-font': [this.font], 'text-size': 12 * k,
          'text-allow-overlap': true, 'text-ignore-placement': true },
        paint: { 'text-color': '#0b1219' } },
    ];
  }

  // Called once the map exists: the clusters follow the view.
  attach(map) {
    this.map = map;
    const redraw = () => this.schedule();
    map.on('move', redraw);
    map.on('resize', redraw);
  }

  // Replaces every device: [{id, lon, lat, level, ...}]; `props(d)` what else its feature carries.
  setAll(list, props = () => ({})) {
    this.devices = new Map();
    this.cells = Array.from({ length: CLUSTER_MAX_ZOOM + 1 }, () => new Map());
    // The finest cells from the devices, then each zoom's from the one under it.
    const top = this.cells[CLUSTER_MAX_ZOOM];
    const f = 2 ** CLUSTER_MAX_ZOOM;
    for (const d of list) {
      const level = d.level || 'unknown';
      const [x, y] = world(d.lon, d.lat);
      const dev = { x, y, rank: RANK[level] ?? 0, id: d.id, lon: d.lon, lat: d.lat, level,
        props: props(d) };
      this.devices.set(d.id, dev);
      const cx = Math.floor(x * f);
      const cy = Math.floor(y * f);
      const k = key(cx, cy);
      let c = top.get(k);
      if (!c) {
        c = newCell(k, cx, cy, d.id);
        top.set(k, c);
      }
      c.n += 1;
      c.x += x;
      c.y += y;
      c.w = Math.min(c.w, d.lon); c.e = Math.max(c.e, d.lon);
      c.s = Math.min(c.s, d.lat); c.nn = Math.max(c.nn, d.lat);
      c.counts[dev.rank] += 1;
    }
    for (let z = CLUSTER_MAX_ZOOM - 1; z >= 0; z -= 1) {
      const up = this.cells[z];
      for (const c of this.cells[z + 1].values()) {
        const px = Math.floor(c.cx / 2);
        const py = Math.floor(c.cy / 2);
        const k = key(px, py);
        let p = up.get(k);
        if (!p) {
          p = newCell(k, px, py, c.only);
          up.set(k, p);
        }
        p.n += c.n;
        p.x += c.x;
        p.y += c.y;
        p.w = Math.min(p.w, c.w); p.e = Math.max(p.e, c.e);
        p.s = Math.min(p.s, c.s); p.nn = Math.max(p.nn, c.nn);
        for (let r = 0; r < 8; r += 1) p.counts[r] += c.counts[r];
      }
    }
    if (this.map) this.map.removeFeatureState({ source: this.source });
    this.pointsBox = null;
    this.level = -1;
    this.schedule();
  }

  // The devices' own markers around the view, from POINTS_DATA_FROM_ZOOM on (see above).
  points() {
    const map = this.map;
    const src = map && map.getSource(this.source);
    if (!src) return;
    if (map.getZoom() < POINTS_DATA_FROM_ZOOM) {
      if (this.pointsBox !== 'none') src.setData(EMPTY);
      this.pointsBox = 'none';
      return;
    }
    const b = map.getBounds();
    const [w, s, e, n] = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
    const p = this.pointsBox;
    if (Array.isArray(p) && w >= p[0] && s >= p[1] && e <= p[2] && n <= p[3]) return;
    const [dx, dy] = [e - w, n - s];
    const box = [w - dx, s - dy, e + dx, n + dy];
    const features = [];
    for (const d of this.devices.values()) {
      if (d.lon < box[0] || d.lon > box[2] || d.lat < box[1] || d.lat > box[3]) continue;
      features.push({ type: 'Feature', geometry: { type: 'Point', coordinates: [d.lon, d.lat] },
        properties: { id: d.id, level: d.level, ...d.props } });
    }
    src.setData({ ...EMPTY, features });
    this.pointsBox = box;
  }

  // The device `id` is now at `level`: its marker at once, its clusters in the next frame.
  setLevel(id, level) {
    const dev = this.devices.get(id);
    if (this.map) this.map.setFeatureState({ source: this.source, id }, { level });
    if (!dev) return;
    const rank = RANK[level] ?? 0;
    dev.level = level;
    if (rank === dev.rank) return;
    for (let z = 0; z <= CLUSTER_MAX_ZOOM; z += 1) {
      const f = 2 ** z;
      const c = this.cells[z].get(key(Math.floor(dev.x * f), Math.floor(dev.y * f)));
      c.counts[dev.rank] -= 1;
      c.counts[rank] += 1;
    }
    dev.rank = rank;
    this.level = -1;
    this.schedule();
  }

  schedule() {
    if (this.dirty || !this.map) return;
    this.dirty = true;
    requestAnimationFrame(() => {
      this.dirty = false;
      this.redraw();
    });
  }

  // The zoom whose cells are drawn at the map's zoom (a wall's bigger circles get cells twice
  // as wide).
  cellZoom() {
    const z = Math.round(this.map.getZoom()) - (this.large ? 1 : 0);
    return Math.max(0, Math.min(CLUSTER_MAX_ZOOM, z));
  }

  // The clusters in view (with a margin), as the clusters source's data.
  redraw() {
    const map = this.map;
    if (!map || !map.getSource(this.clusters) || !this.cells.length) return; // no devices yet
    this.points();
    if (map.getZoom() >= POINTS_FROM_ZOOM) {
      if (this.level !== 99) map.getSource(this.clusters).setData(EMPTY);
      this.level = 99;
      return;
    }
    const z = this.cellZoom();
    const b = map.getBounds();
    const f = 2 ** z;
    const [vx0, vy0] = world(b.getWest(), b.getNorth()).map((v) => Math.floor(v * f) - 1);
    const [vx1, vy1] = world(b.getEast(), b.getSouth()).map((v) => Math.floor(v * f) + 1);
    // What is drawn covers the view with half a view to spare on each side, so panning
    // redraws only when it leaves that.
    const d = this.drawnBox;
    if (this.level === z && d && vx0 >= d[0] && vy0 >= d[1] && vx1 <= d[2] && vy1 <= d[3]) return;
    const [mx, my] = [Math.ceil((vx1 - vx0) / 2), Math.ceil((vy1 - vy0) / 2)];
    const [x0, y0, x1, y1] = [vx0 - mx, vy0 - my, vx1 + mx, vy1 + my];
    const features = [];
    for (const c of this.cells[z].values()) {
      if (c.cx < x0 || c.cx > x1 || c.cy < y0 || c.cy > y1) continue;
      features.push(this.feature(c, z));
    }
    map.getSource(this.clusters).setData({ ...EMPTY, features });
    this.level = z;
    this.drawnBox = [x0, y0, x1, y1];
    this.drawn = features.length;
  }

  feature(c, z) {
    let rank = 0;
    for (let r = 7; r >= 0; r -= 1) if (c.counts[r] > 0) { rank = r; break; }
    const props = { cell: `${z}/${c.id}`, count: c.n, rank, label: abbreviate(c.n) };
    for (const l of NOT_NORMAL) props[l] = c.counts[RANK[l]];
    const f = 2 ** z;
    let [x, y] = [c.x / c.n, c.y / c.n];
    if (c.n === 1) {
      props.device = c.only;
    } else {
      const keep = (v, cell) => (cell + 0.5 + Math.max(-0.25, Math.min(0.25, v * f - cell - 0.5))) / f;
      [x, y] = [keep(x, c.cx), keep(y, c.cy)];
    }
    return { type: 'Feature', geometry: { type: 'Point', coordinates: unworld(x, y) },
      properties: props };
  }

  // The cluster device `id` is in at the current zoom (its properties and place), or null.
  holding(id) {
    const dev = this.devices.get(id);
    if (!dev || !this.map || this.map.getZoom() >= POINTS_FROM_ZOOM) return null;
    const z = this.cellZoom();
    const f = 2 ** z;
    const c = this.cells[z].get(key(Math.floor(dev.x * f), Math.floor(dev.y * f)));
    return c ? this.feature(c, z) : null;
  }

  // A click on a cluster zooms to its devices; on a lone device, `onDevice(id)`.
  clickable(onDevice) {
    const map = this.map;
    const p = this.prefix;
    map.on('click', `${p}clusters`, (e) => {
      const f = e.features && e.features[0];
      if (!f) return;
      const [z, id] = f.properties.cell.split('/').map(Number);
      const c = this.cells[z].get(id);
      if (!c) return;
      map.fitBounds([[c.w, c.s], [c.e, c.nn]], { padding: 80, maxZoom: POINTS_FROM_ZOOM + 1 });
    });
    if (onDevice) {
      map.on('click', `${p}cluster-singles`, (e) => {
        const f = e.features && e.features[0];
        if (f && f.properties.device) onDevice(String(f.properties.device));
      });
    }
    for (const layer of [`${p}clusters`, `${p}cluster-singles`]) {
      map.on('mouseenter', layer, () => { map.getCanvas().style.cursor = 'pointer'; });
      map.on('mouseleave', layer, () => { map.getCanvas().style.cursor = ''; });
    }
  }
}

function abbreviate(n) {
  if (n >= 10000) return `${Math.round(n / 1000)}k`;
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`;
  return String(n);
}

// What a cluster holds, for its hover card: the count and the devices not normal, by level.
export function clusterCard(props) {
  const card = document.createElement('div');
  card.className = 'cluster-card';
  const total = document.createElement('div');
  total.textContent = `${props.count}`;
  total.className = 'cluster-total';
  card.appendChild(total);
  for (const l of NOT_NORMAL) {
    if (!props[l]) continue;
    const row = document.createElement('div');
    row.className = `cluster-row ${l}`;
    const dot = document.createElement('i');
    dot.className = `dot ${l}`;
    row.append(dot, ` ${props[l]}`);
    card.appendChild(row);
  }
  return card;
}
