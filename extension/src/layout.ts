/**
 * A layered (Sugiyama-style) layout of a directed graph, made for the shape of ONNX models:
 * long chains, a few skip connections, up to tens of thousands of nodes.
 *
 * The steps: reverse the edges that close cycles, give every node a rank (its row) by longest
 * path, put a small dummy node wherever an edge crosses a row, order each row by the barycentre
 * of its neighbours, then place nodes left to right as close to their neighbours as their order
 * and widths allow. Every step is linear or n log n in the nodes and edges, so 10,000 nodes take
 * a fraction of a second; the viewer still runs it in a worker for large graphs. elkjs and dagre
 * were measured on the same graphs and are one to two orders of magnitude slower (dagre does not
 * finish 10,000 nodes): see benchmarks/layout_libraries.sh and the README.
 *
 * Pure functions on plain data: no DOM, so it runs in a worker and under Node's test runner.
 */

export interface LayoutNodeInput {
  id: string;
  width: number;
  height: number;
}

export interface LayoutEdgeInput {
  source: string;
  target: string;
}

export interface LayoutInput {
  nodes: LayoutNodeInput[];
  edges: LayoutEdgeInput[];
}

export interface LayoutOptions {
  rankGap: number;
  nodeGap: number;
  sweeps: number;
}

/** A placed node; `x` and `y` are its centre. */
export interface PlacedNode {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
  rank: number;
}

/** An edge as a polyline, `points` being x0, y0, x1, y1, ... from source to target. */
export interface PlacedEdge {
  source: string;
  target: string;
  points: number[];
}

export interface Layout {
  nodes: PlacedNode[];
  edges: PlacedEdge[];
  width: number;
  height: number;
}

export const DEFAULT_OPTIONS: LayoutOptions = { rankGap: 36, nodeGap: 18, sweeps: 4 };
const DUMMY_WIDTH = 6;

interface Work {
  count: number; // real nodes come first, dummies after them
  width: number[];
  height: number[];
  rank: number[];
  preds: number[][];
  succs: number[][];
}

export function layout(input: LayoutInput, options: Partial<LayoutOptions> = {}): Layout {
  const settings = { ...DEFAULT_OPTIONS, ...options };
  const index = new Map<string, number>();
  input.nodes.forEach((node, i) => index.set(node.id, i));
  const pairs = uniquePairs(input.edges, index);
  const flipped = acyclic(input.nodes.length, pairs);
  const rank = assignRanks(input.nodes.length, pairs);

  const work: Work = {
    count: input.nodes.length,
    width: input.nodes.map(node => node.width),
    height: input.nodes.map(node => node.height),
    rank,
    preds: input.nodes.map(() => []),
    succs: input.nodes.map(() => [])
  };
  const chains = pairs.map(([from, to]) => splitEdge(work, from, to));
  const rows = orderRows(work, settings.sweeps);
  const x = placeRows(work, rows, settings.nodeGap);
  const rowY = rowCentres(work, rows, settings.rankGap);

  let left = Infinity;
  for (let v = 0; v < work.count; v++) {
    left = Math.min(left, (x[v] ?? 0) - (work.width[v] ?? 0) / 2);
  }
  left = Number.isFinite(left) ? left : 0;
  const nodes = input.nodes.map((node, v) => ({
    id: node.id,
    x: (x[v] ?? 0) - left,
    y: rowY[rank[v] ?? 0] ?? 0,
    width: node.width,
    height: node.height,
    rank: rank[v] ?? 0
  }));

  const routes = new Map<number, number[]>();
  const count = input.nodes.length;
  pairs.forEach(([from, to], i) => {
    const chain = chains[i] ?? [];
    const points: number[] = [];
    for (const v of [from, ...chain, to]) {
      const y = rowY[work.rank[v] ?? 0] ?? 0;
      const half =
        v === from ? (work.height[v] ?? 0) / 2 : v === to ? -(work.height[v] ?? 0) / 2 : 0;
      points.push((x[v] ?? 0) - left, y + half);
    }
    const key = from * count + to;
    routes.set(key, flipped.has(key) ? reversePoints(points) : points);
  });

  const edges: PlacedEdge[] = [];
  for (const edge of input.edges) {
    const from = index.get(edge.source);
    const to = index.get(edge.target);
    if (from === undefined || to === undefined || from === to) {
      continue;
    }
    const route = routes.get(from * count + to) ?? routes.get(to * count + from);
    if (route !== undefined) {
      edges.push({ source: edge.source, target: edge.target, points: route });
    }
  }

  const width = nodes.reduce((most, node) => Math.max(most, node.x + node.width / 2), 0);
  const height = nodes.reduce((most, node) => Math.max(most, node.y + node.height / 2), 0);
  return { nodes, edges, width, height };
}

/** Edges as index pairs, each pair once, without self loops or unknown ends. */
function uniquePairs(edges: LayoutEdgeInput[], index: Map<string, number>): [number, number][] {
  const seen = new Set<number>();
  const pairs: [number, number][] = [];
  const count = index.size;
  for (const edge of edges) {
    const from = index.get(edge.source);
    const to = index.get(edge.target);
    if (from === undefined || to === undefined || from === to) {
      continue;
    }
    const key = from < to ? from * count + to : to * count + from;
    if (!seen.has(key)) {
      seen.add(key);
      pairs.push([from, to]);
    }
  }
  return pairs;
}

/** Reverse, in place, the edges that close a cycle; returns the keys of the reversed pairs. */
function acyclic(count: number, pairs: [number, number][]): Set<number> {
  const out: number[][] = Array.from({ length: count }, () => []);
  pairs.forEach(([from], i) => out[from]?.push(i));
  const state = new Uint8Array(count); // 0 unseen, 1 on the stack, 2 done
  const flipped = new Set<number>();
  for (let start = 0; start < count; start++) {
    if (state[start] !== 0) {
      continue;
    }
    // An explicit stack: a chain of 10,000 nodes would overflow the call stack.
    const stack: [number, number][] = [[start, 0]];
    state[start] = 1;
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as [number, number];
      const [v, next] = top;
      const edgeIds = out[v] ?? [];
      if (next >= edgeIds.length) {
        state[v] = 2;
        stack.pop();
        continue;
      }
      top[1] = next + 1;
      const pair = pairs[edgeIds[next] ?? 0] as [number, number];
      const w = pair[1];
      if (state[w] === 1) {
        pair[0] = w;
        pair[1] = v;
        flipped.add(w * count + v);
      } else if (state[w] === 0) {
        state[w] = 1;
        stack.push([w, 0]);
      }
    }
  }
  return flipped;
}

/** Longest-path ranks, then sources pulled down to sit just above their first consumer. */
function assignRanks(count: number, pairs: [number, number][]): number[] {
  const succs: number[][] = Array.from({ length: count }, () => []);
  const indegree = new Array<number>(count).fill(0);
  for (const [from, to] of pairs) {
    succs[from]?.push(to);
    indegree[to] = (indegree[to] ?? 0) + 1;
  }
  const order: number[] = [];
  for (let v = 0; v < count; v++) {
    if (indegree[v] === 0) {
      order.push(v);
    }
  }
  const rank = new Array<number>(count).fill(0);
  for (let head = 0; head < order.length; head++) {
    const v = order[head] ?? 0;
    for (const w of succs[v] ?? []) {
      rank[w] = Math.max(rank[w] ?? 0, (rank[v] ?? 0) + 1);
      indegree[w] = (indegree[w] ?? 0) - 1;
      if (indegree[w] === 0) {
        order.push(w);
      }
    }
  }
  const hasPred = new Uint8Array(count);
  for (const [, to] of pairs) {
    hasPred[to] = 1;
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const v = order[i] ?? 0;
    const below = succs[v] ?? [];
    if (hasPred[v] === 0 && below.length > 0) {
      rank[v] = below.reduce((least, w) => Math.min(least, rank[w] ?? 0), Infinity) - 1;
    }
  }
  const lowest = rank.reduce((least, r) => Math.min(least, r), 0);
  return rank.map(r => r - lowest);
}

/** Link `from` to `to` through one dummy per row crossed; returns the dummies in order. */
function splitEdge(work: Work, from: number, to: number): number[] {
  const chain: number[] = [];
  let previous = from;
  for (let r = (work.rank[from] ?? 0) + 1; r < (work.rank[to] ?? 0); r++) {
    const dummy = work.rank.length;
    work.rank.push(r);
    work.width.push(DUMMY_WIDTH);
    work.height.push(0);
    work.preds.push([]);
    work.succs.push([]);
    link(work, previous, dummy);
    chain.push(dummy);
    previous = dummy;
  }
  link(work, previous, to);
  return chain;
}

function link(work: Work, from: number, to: number): void {
  work.succs[from]?.push(to);
  work.preds[to]?.push(from);
}

/** Rows of node indices, ordered to cross few edges: barycentre sweeps down and up. */
function orderRows(work: Work, sweeps: number): number[][] {
  const rows: number[][] = [];
  // Seed the order depth first, so a chain and its side branches start next to each other.
  const seen = new Uint8Array(work.rank.length);
  const visit = (start: number): void => {
    const stack = [start];
    while (stack.length > 0) {
      const v = stack.pop() as number;
      if (seen[v] === 1) {
        continue;
      }
      seen[v] = 1;
      const r = work.rank[v] ?? 0;
      (rows[r] ??= []).push(v);
      const next = work.succs[v] ?? [];
      for (let i = next.length - 1; i >= 0; i--) {
        stack.push(next[i] ?? 0);
      }
    }
  };
  for (let v = 0; v < work.rank.length; v++) {
    if ((work.preds[v] ?? []).length === 0) {
      visit(v);
    }
  }
  for (let v = 0; v < work.rank.length; v++) {
    visit(v);
  }
  for (let r = 0; r < rows.length; r++) {
    rows[r] ??= [];
  }

  const position = new Float64Array(work.rank.length);
  const number = (row: number[]): void => {
    row.forEach((v, i) => (position[v] = i));
  };
  rows.forEach(number);
  for (let sweep = 0; sweep < sweeps; sweep++) {
    const down = sweep % 2 === 0;
    const sequence = down ? rows.slice(1) : rows.slice(0, -1).reverse();
    for (const row of sequence) {
      const key = new Map<number, number>();
      for (const v of row) {
        const near = down ? work.preds[v] : work.succs[v];
        key.set(v, barycentre(near ?? [], position) ?? position[v] ?? 0);
      }
      row.sort((a, b) => (key.get(a) ?? 0) - (key.get(b) ?? 0));
      number(row);
    }
  }
  return rows;
}

function barycentre(near: number[], position: ArrayLike<number>): number | undefined {
  if (near.length === 0) {
    return undefined;
  }
  let sum = 0;
  for (const w of near) {
    sum += position[w] ?? 0;
  }
  return sum / near.length;
}

/** Horizontal centres: each row packed in order, then pulled toward its neighbours. */
function placeRows(work: Work, rows: number[][], gap: number): Float64Array {
  const x = new Float64Array(work.rank.length);
  for (const row of rows) {
    let cursor = 0;
    for (const v of row) {
      const width = work.width[v] ?? 0;
      x[v] = cursor + width / 2;
      cursor += width + gap;
    }
  }
  const passes: ('down' | 'up' | 'both')[] = ['down', 'up', 'down', 'up', 'both'];
  for (const pass of passes) {
    const sequence = pass === 'up' ? [...rows].reverse() : rows;
    for (const row of sequence) {
      const wanted = row.map(v => {
        const near =
          pass === 'down'
            ? work.preds[v]
            : pass === 'up'
              ? work.succs[v]
              : [...(work.preds[v] ?? []), ...(work.succs[v] ?? [])];
        return barycentre(near ?? [], x) ?? x[v] ?? 0;
      });
      const placed = closestInOrder(row, wanted, work.width, gap);
      row.forEach((v, i) => (x[v] = placed[i] ?? 0));
    }
  }
  return x;
}

/**
 * Positions as close as possible (least squares) to `wanted`, keeping the row's order and the
 * gaps between neighbours: an isotonic regression solved by pooling adjacent violators.
 */
export function closestInOrder(
  row: number[],
  wanted: number[],
  widths: number[],
  gap: number
): number[] {
  const offset: number[] = [];
  let total = 0;
  row.forEach((v, i) => {
    if (i > 0) {
      total += ((widths[row[i - 1] ?? 0] ?? 0) + (widths[v] ?? 0)) / 2 + gap;
    }
    offset.push(total);
  });
  // Blocks of equal shifted value: [sum, count].
  const sums: number[] = [];
  const counts: number[] = [];
  wanted.forEach((value, i) => {
    sums.push(value - (offset[i] ?? 0));
    counts.push(1);
    while (sums.length > 1) {
      const last = sums.length - 1;
      if (
        (sums[last - 1] ?? 0) / (counts[last - 1] ?? 1) <=
        (sums[last] ?? 0) / (counts[last] ?? 1)
      ) {
        break;
      }
      sums[last - 1] = (sums[last - 1] ?? 0) + (sums.pop() ?? 0);
      counts[last - 1] = (counts[last - 1] ?? 0) + (counts.pop() ?? 0);
    }
  });
  const placed: number[] = [];
  sums.forEach((sum, block) => {
    const count = counts[block] ?? 1;
    for (let k = 0; k < count; k++) {
      placed.push(sum / count + (offset[placed.length] ?? 0));
    }
  });
  return placed;
}

function rowCentres(work: Work, rows: number[][], gap: number): number[] {
  const centres: number[] = [];
  let top = 0;
  for (const row of rows) {
    const tallest = row.reduce((most, v) => Math.max(most, work.height[v] ?? 0), 0);
    centres.push(top + tallest / 2);
    top += tallest + gap;
  }
  return centres;
}

function reversePoints(points: number[]): number[] {
  const reversed: number[] = [];
  for (let i = points.length - 2; i >= 0; i -= 2) {
    reversed.push(points[i] ?? 0, points[i + 1] ?? 0);
  }
  return reversed;
}
