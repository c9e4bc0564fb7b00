// The devices layer every map draws (the operations map, the dashboards' and the wall's small
// maps): one clustered GeoJSON source, so a province of 100,000 devices is a few hundred
// circles at the province's zoom, not 100,000.
//
// A cluster tells the truth about what it holds: its number, and the colour of the worst
// status inside it (`clusterProperties` keep the highest rank and a count per level), so a red
// device never hides in a green cluster. A status change is a property of the device's
// feature, sent as a diff (`updateData`) that MapLibre's worker folds into its cluster index;
// changes are gathered for a moment and sent together, so a burst of 2,000 costs one
// re-clustering, not 2,000. The point itself changes colour at once through feature-state.

export const RANK = {
  unknown: 0, normal: 1, info: 2, offline: 3, fault: 4, warning: 5, major: 6, critical: 7,
};
export const COLORS = {
  critical: '#ff453a', major: '#ff9f0a', warning: '#ffd60a', fault: '#bf5af2',
  offline: '#6e7681', info: '#64d2ff', normal: '#30d158', unknown: '#8b949e',
};
const LEVELS = Object.keys(RANK).sort((a, b) => RANK[b] - RANK[a]); // worst first

// A point's level: its feature-state (set at once on a change) or its property.
export const LEVEL = ['coalesce', ['feature-state', 'level'], ['get', 'level'], 'unknown'];
export const POINT_COLOR = ['match', LEVEL, ...Object.entries(COLORS).flat(), COLORS.unknown];
const CLUSTER_COLOR = ['match', ['get', 'rank'],
  ...LEVELS.flatMap((l) => [RANK[l], COLORS[l]]), COLORS.unknown];

export const EMPTY = { type: 'FeatureCollection', features: [] };
export const IS_CLUSTER = ['has', 'point_count'];
export const IS_POINT = ['!', ['has', 'point_count']];

// Clusters up to this zoom; past it every device is its own marker.
export const CLUSTER_MAX_ZOOM = 12;

// The source's definition: clustered, with the worst rank and a count per level kept on each
// cluster.
export function deviceSource() {
  const count = (l) => ['+', ['case', ['==', ['get', 'rank'], RANK[l]], 1, 0]];
  return {
    type: 'geojson',
    data: EMPTY,
    promoteId: 'id',
    cluster: true,
    clusterRadius: 40,
    clusterMaxZoom: CLUSTER_MAX_ZOOM,
    clusterProperties: {
      rank: ['max', ['get', 'rank']],
      critical: count('critical'),
      major: count('major'),
      warning: count('warning'),
      fault: count('fault'),
      offline: count('offline'),
    },
  };
}

// A device as a feature; `props` carries what else a map shows (name, kind, still).
export function feature(d, props = {}) {
  const level = d.level || 'unknown';
  return {
    type: 'Feature',
    geometry: { type: 'Point', coordinates: [d.lon, d.lat] },
    properties: { id: d.id, level, rank: RANK[level] ?? 0, ...props },
  };
}

// The cluster layers over `source`: a circle sized by how many it holds, coloured by its worst
// device (a glow when that is critical or major), and the number on it.
export function clusterLayers(source, font, { large = false, prefix = '' } = {}) {
  const k = large ? 1.4 : 1;
  return [
    {
      id: `${prefix}cluster-glow`, type: 'circle', source, filter: ['all', IS_CLUSTER, ['>=', ['get', 'rank'], RANK.major]],
      paint: {
        'circle-radius': ['step', ['get', 'point_count'], 22 * k, 100, 27 * k, 1000, 33 * k, 10000, 40 * k],
        'circle-color': CLUSTER_COLOR,
        'circle-blur': 0.7,
        'circle-opacity': 0.55,
      },
    },
    {
      id: `${prefix}clusters`, type: 'circle', source, filter: IS_CLUSTER,
      paint: {
        'circle-radius': ['step', ['get', 'point_count'], 13 * k, 100, 17 * k, 1000, 21 * k, 10000, 26 * k],
        'circle-color': CLUSTER_COLOR,
        'circle-stroke-color': '#0b1219',
        'circle-stroke-width': 2,
      },
    },
    {
      id: `${prefix}cluster-count`, type: 'symbol', source, filter: IS_CLUSTER,
      layout: {
        'text-field': ['get', 'point_count_abbreviated'],
        'text-font': [font],
        'text-size': 12 * k,
        'text-allow-overlap': true,
        'text-ignore-placement': true,
      },
      paint: { 'text-color': '#0b1219' },
    },
  ];
}

// Status changes for one source, gathered and sent as one diff.
export class LevelBatch {
  constructor(map, source, delayMs = 40) {
    this.map = map;
    this.source = source;
    this.delayMs = delayMs;
    this.pending = new Map();
    this.timer = null;
  }

  // The device `id` is now at `level`.
  set(id, level) {
    this.map.setFeatureState({ source: this.source, id }, { level });
    this.pending.set(id, level);
    if (!this.timer) this.timer = setTimeout(() => this.flush(), this.delayMs);
  }

  flush() {
    this.timer = null;
    if (!this.pending.size) return;
    const update = [];
    for (const [id, level] of this.pending) {
      update.push({ id, addOrUpdateProperties: [
        { key: 'level', value: level }, { key: 'rank', value: RANK[level] ?? 0 }] });
    }
    this.pending = new Map();
    this.map.getSource(this.source).updateData({ update });
  }

  // A whole new set replaces whatever was waiting.
  clear() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending = new Map();
  }
}

// A click on a cluster zooms to where it comes apart.
export function zoomIntoClusters(map, source, layer) {
  map.on('click', layer, async (e) => {
    const f = e.features && e.features[0];
    if (!f) return;
    const zoom = await map.getSource(source).getClusterExpansionZoom(f.properties.cluster_id);
    map.easeTo({ center: f.geometry.coordinates, zoom: Math.min(zoom, CLUSTER_MAX_ZOOM + 1) });
  });
  map.on('mouseenter', layer, () => { map.getCanvas().style.cursor = 'zoom-in'; });
  map.on('mouseleave', layer, () => { map.getCanvas().style.cursor = ''; });
}

// What a cluster holds, for its hover card: the count and the devices not normal, by level.
export function clusterCard(props) {
  const card = document.createElement('div');
  card.className = 'cluster-card';
  const total = document.createElement('div');
  total.textContent = `${props.point_count}`;
  total.className = 'cluster-total';
  card.appendChild(total);
  for (const l of ['critical', 'major', 'warning', 'fault', 'offline']) {
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
