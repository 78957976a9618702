/**
 * Drawing a laid-out graph on a canvas, and finding the box under a point.
 *
 * Labels are drawn with `fillText`, so a node name is never parsed as markup. Only what lies in
 * the visible area is drawn, and labels are left out when they would be too small to read, so
 * a 10,000-node graph pans and zooms smoothly.
 */

import type { Layout, PlacedEdge, PlacedNode } from './layout';
import type { Box, FlatGraph, Timings } from './model';
import { largestShare, nodeColour } from './timings';

export interface View {
  scale: number;
  /** Screen position of the world origin, in CSS pixels. */
  x: number;
  y: number;
}

interface Bounds {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

interface Cluster {
  name: string;
  bounds: Bounds;
}

/** A layout joined to the boxes it places, with what drawing and hit testing need. */
export class Scene {
  readonly boxes = new Map<string, Box>();
  readonly placed = new Map<string, PlacedNode>();
  readonly edgeBounds: Bounds[];
  readonly clusters: Cluster[];
  readonly fills = new Map<string, string>();
  /** Indices of the edges that lead from a node into its expanded subgraph. */
  readonly nested = new Set<number>();

  constructor(
    readonly flat: FlatGraph,
    readonly layout: Layout,
    readonly timings: Timings | null
  ) {
    for (const box of flat.boxes) {
      this.boxes.set(box.id, box);
    }
    for (const node of layout.nodes) {
      this.placed.set(node.id, node);
    }
    this.edgeBounds = layout.edges.map(edge => pointBounds(edge.points));
    this.clusters = clusterBounds(flat.boxes, this.placed);
    const nestedPairs = new Set(
      flat.arrows
        .filter(arrow => arrow.nested === true)
        .map(arrow => `${arrow.source}\n${arrow.target}`)
    );
    layout.edges.forEach((edge, i) => {
      if (nestedPairs.has(`${edge.source}\n${edge.target}`)) {
        this.nested.add(i);
      }
    });
    if (timings !== null) {
      const largest = largestShare(timings);
      for (const box of flat.boxes) {
        const colour = box.node ? nodeColour(timings, box.node.name, largest) : null;
        if (colour !== null) {
          this.fills.set(box.id, colour);
        }
      }
    }
  }

  /** The box under a point in world coordinates, if any. */
  hit(worldX: number, worldY: number): Box | undefined {
    for (const node of this.layout.nodes) {
      if (
        Math.abs(worldX - node.x) <= node.width / 2 &&
        Math.abs(worldY - node.y) <= node.height / 2
      ) {
        return this.boxes.get(node.id);
      }
    }
    return undefined;
  }
}

export interface Marks {
  selected: string | null;
  matches: ReadonlySet<string>;
}

const EDGE = '#9aa3ad';
const NESTED_EDGE = '#6b8fd6';
const OP_FILL = '#e8eef7';
const OP_STROKE = '#4a6fa5';
const VALUE_FILL = '#f1f1f1';
const VALUE_STROKE = '#8a8a8a';
const UNTIMED_FILL = '#fafafa';
const MATCH = '#e69500';
const SELECTED = '#d6336c';
const MIN_LABEL_PX = 6;

/** Draw the scene into a 2D context whose canvas is `width` × `height` CSS pixels. */
export function draw(
  context: CanvasRenderingContext2D,
  scene: Scene,
  view: View,
  marks: Marks,
  size: { width: number; height: number; ratio: number }
): void {
  const { width, height, ratio } = size;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  context.setTransform(
    ratio * view.scale,
    0,
    0,
    ratio * view.scale,
    ratio * view.x,
    ratio * view.y
  );
  const visible: Bounds = {
    left: -view.x / view.scale,
    top: -view.y / view.scale,
    right: (width - view.x) / view.scale,
    bottom: (height - view.y) / view.scale
  };
  const pixel = 1 / view.scale;

  drawClusters(context, scene, visible, pixel);
  drawEdges(context, scene, visible, pixel);
  const shown = scene.layout.nodes.filter(node => overlaps(nodeBounds(node), visible));
  drawBoxes(context, scene, shown, pixel);
  drawOutlines(context, shown, marks, pixel);
  if (view.scale * 12 >= MIN_LABEL_PX) {
    drawLabels(context, scene, shown);
  }
}

function drawClusters(
  context: CanvasRenderingContext2D,
  scene: Scene,
  visible: Bounds,
  pixel: number
): void {
  context.setLineDash([4 * pixel, 3 * pixel]);
  context.lineWidth = pixel;
  context.strokeStyle = NESTED_EDGE;
  context.fillStyle = NESTED_EDGE;
  context.font = '11px sans-serif';
  context.textAlign = 'left';
  context.textBaseline = 'bottom';
  for (const cluster of scene.clusters) {
    const { left, top, right, bottom } = cluster.bounds;
    if (!overlaps(cluster.bounds, visible)) {
      continue;
    }
    context.strokeRect(left, top, right - left, bottom - top);
    context.fillText(cluster.name, left + 2, top - 2);
  }
  context.setLineDash([]);
}

function drawEdges(
  context: CanvasRenderingContext2D,
  scene: Scene,
  visible: Bounds,
  pixel: number
): void {
  context.lineWidth = pixel;
  const heads: PlacedEdge[] = [];
  for (const [style, dashed] of [
    [EDGE, false],
    [NESTED_EDGE, true]
  ] as const) {
    context.strokeStyle = style;
    context.setLineDash(dashed ? [4 * pixel, 3 * pixel] : []);
    context.beginPath();
    scene.layout.edges.forEach((edge, i) => {
      const bounds = scene.edgeBounds[i];
      if (scene.nested.has(i) !== dashed || bounds === undefined || !overlaps(bounds, visible)) {
        return;
      }
      const points = edge.points;
      context.moveTo(points[0] ?? 0, points[1] ?? 0);
      for (let k = 2; k < points.length; k += 2) {
        context.lineTo(points[k] ?? 0, points[k + 1] ?? 0);
      }
      heads.push(edge);
    });
    context.stroke();
  }
  context.setLineDash([]);
  if (pixel < 2.5) {
    context.fillStyle = EDGE;
    context.beginPath();
    for (const edge of heads) {
      arrowHead(context, edge.points);
    }
    context.fill();
  }
}

function arrowHead(context: CanvasRenderingContext2D, points: number[]): void {
  const n = points.length;
  const [x0, y0, x1, y1] = [
    points[n - 4] ?? 0,
    points[n - 3] ?? 0,
    points[n - 2] ?? 0,
    points[n - 1] ?? 0
  ];
  const angle = Math.atan2(y1 - y0, x1 - x0);
  const size = 6;
  context.moveTo(x1, y1);
  context.lineTo(x1 - size * Math.cos(angle - 0.4), y1 - size * Math.sin(angle - 0.4));
  context.lineTo(x1 - size * Math.cos(angle + 0.4), y1 - size * Math.sin(angle + 0.4));
  context.closePath();
}

function drawBoxes(
  context: CanvasRenderingContext2D,
  scene: Scene,
  shown: PlacedNode[],
  pixel: number
): void {
  // One path per fill colour: thousands of boxes cost a handful of draw calls.
  const groups = new Map<string, PlacedNode[]>();
  for (const node of shown) {
    const box = scene.boxes.get(node.id);
    const fill =
      box?.kind !== 'op'
        ? VALUE_FILL
        : scene.timings !== null
          ? (scene.fills.get(node.id) ?? UNTIMED_FILL)
          : OP_FILL;
    const group = groups.get(fill) ?? [];
    group.push(node);
    groups.set(fill, group);
  }
  for (const [fill, nodes] of groups) {
    context.fillStyle = fill;
    context.beginPath();
    for (const node of nodes) {
      context.rect(node.x - node.width / 2, node.y - node.height / 2, node.width, node.height);
    }
    context.fill();
  }
  context.lineWidth = pixel;
  for (const [stroke, kind] of [
    [OP_STROKE, 'op'],
    [VALUE_STROKE, 'value']
  ] as const) {
    context.strokeStyle = stroke;
    context.beginPath();
    for (const node of shown) {
      const isOp = scene.boxes.get(node.id)?.kind === 'op';
      if (isOp === (kind === 'op')) {
        context.rect(node.x - node.width / 2, node.y - node.height / 2, node.width, node.height);
      }
    }
    context.stroke();
  }
}

function drawOutlines(
  context: CanvasRenderingContext2D,
  shown: PlacedNode[],
  marks: Marks,
  pixel: number
): void {
  for (const [colour, test] of [
    [MATCH, (id: string): boolean => marks.matches.has(id)],
    [SELECTED, (id: string): boolean => id === marks.selected]
  ] as const) {
    context.strokeStyle = colour;
    context.lineWidth = Math.max(2.5, 2.5 * pixel);
    context.beginPath();
    for (const node of shown) {
      if (test(node.id)) {
        context.rect(
          node.x - node.width / 2 - 2,
          node.y - node.height / 2 - 2,
          node.width + 4,
          node.height + 4
        );
      }
    }
    context.stroke();
  }
}

function drawLabels(context: CanvasRenderingContext2D, scene: Scene, shown: PlacedNode[]): void {
  context.font = '12px sans-serif';
  context.textAlign = 'center';
  context.textBaseline = 'middle';
  context.fillStyle = '#1b1b1b';
  for (const node of shown) {
    const box = scene.boxes.get(node.id);
    if (box === undefined) {
      continue;
    }
    const marker = box.collapsed === undefined ? '' : box.collapsed ? ' ⊕' : ' ⊖';
    context.fillText(box.label + marker, node.x, node.y);
  }
}

function nodeBounds(node: PlacedNode): Bounds {
  return {
    left: node.x - node.width / 2,
    top: node.y - node.height / 2,
    right: node.x + node.width / 2,
    bottom: node.y + node.height / 2
  };
}

function pointBounds(points: number[]): Bounds {
  const bounds = { left: Infinity, top: Infinity, right: -Infinity, bottom: -Infinity };
  for (let k = 0; k < points.length; k += 2) {
    const x = points[k] ?? 0;
    const y = points[k + 1] ?? 0;
    bounds.left = Math.min(bounds.left, x);
    bounds.right = Math.max(bounds.right, x);
    bounds.top = Math.min(bounds.top, y);
    bounds.bottom = Math.max(bounds.bottom, y);
  }
  return bounds;
}

function overlaps(a: Bounds, b: Bounds): boolean {
  return a.left <= b.right && a.right >= b.left && a.top <= b.bottom && a.bottom >= b.top;
}

function clusterBounds(boxes: Box[], placed: Map<string, PlacedNode>): Cluster[] {
  const found = new Map<string, Bounds>();
  for (const box of boxes) {
    const node = placed.get(box.id);
    if (box.cluster === undefined || node === undefined) {
      continue;
    }
    // A box inside nested subgraphs also widens every enclosing cluster.
    for (const name of enclosing(box.cluster)) {
      const bounds = found.get(name) ?? {
        left: Infinity,
        top: Infinity,
        right: -Infinity,
        bottom: -Infinity
      };
      const own = nodeBounds(node);
      bounds.left = Math.min(bounds.left, own.left - 8);
      bounds.top = Math.min(bounds.top, own.top - 8);
      bounds.right = Math.max(bounds.right, own.right + 8);
      bounds.bottom = Math.max(bounds.bottom, own.bottom + 8);
      found.set(name, bounds);
    }
  }
  return [...found].map(([name, bounds]) => ({ name, bounds }));
}

function enclosing(cluster: string): string[] {
  // Cluster names look like n3/body or n3/body/n1/else_branch: node id, attribute, repeated.
  const parts = cluster.split('/');
  const names: string[] = [];
  for (let end = 2; end <= parts.length; end += 2) {
    names.push(parts.slice(0, end).join('/'));
  }
  return names;
}
