/**
 * The graph description the workbench sends (`workbench.inspect(...).graph`), the timings a
 * profile adds, and their flattening into the boxes and arrows that the layout places.
 *
 * Nothing here touches the DOM, so the layout worker and the unit tests can use it.
 */

export type Shape = (number | string | null)[] | null;

export interface ValueInfo {
  name: string;
  shape: Shape;
  dtype: string;
}

export interface EdgeInfo {
  source: string;
  target: string;
  tensor: string;
  shape: Shape;
  dtype: string;
}

export interface InitializerInfo {
  shape: number[];
  dtype: string;
  bytes: number;
  sparse?: boolean;
}

export interface NodeInfo {
  id: string;
  name: string;
  op_type: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, unknown>;
  subgraphs?: Record<string, GraphDescription>;
  implicit_inputs?: string[];
}

export interface GraphDescription {
  nodes: NodeInfo[];
  edges: EdgeInfo[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Record<string, InitializerInfo>;
}

export interface NodeTiming {
  ms: number;
  share: number;
  op_type?: string;
  fused_with?: string[];
  fused_into?: string[];
}

export interface Timings {
  runtime: string;
  unit: string;
  total_ms: number;
  nodes: Record<string, NodeTiming>;
}

/** What the MIME bundle and the server endpoint carry. */
export interface GraphPayload {
  version: number;
  name: string;
  graph: GraphDescription;
  timings?: Timings | null;
}

export type BoxKind = 'op' | 'input' | 'output';

/** One box to draw: an operator, or a graph input or output. */
export interface Box {
  id: string;
  kind: BoxKind;
  label: string;
  width: number;
  height: number;
  node?: NodeInfo;
  value?: ValueInfo;
  /** The subgraph (`<node id>/<attribute>`) the box sits in; absent at the top level. */
  cluster?: string;
  /** Whether the node holds subgraphs, and whether they are drawn. */
  collapsed?: boolean;
}

export interface Arrow {
  source: string;
  target: string;
  tensor: string;
  /** An arrow from a node into the inputs of its expanded subgraph. */
  nested?: boolean;
}

export interface FlatGraph {
  boxes: Box[];
  arrows: Arrow[];
  /** Tensor name to shape and dtype, gathered from every graph level. */
  tensors: Map<string, ValueInfo>;
  initializers: Map<string, InitializerInfo>;
}

export const BOX_HEIGHT = 28;
const CHAR_WIDTH = 7;
const PADDING = 20;
const MIN_WIDTH = 48;
const MAX_LABEL = 40;

/** A label short enough to draw in a box. */
export function shorten(text: string, limit = MAX_LABEL): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

function boxWidth(label: string): number {
  return Math.max(MIN_WIDTH, label.length * CHAR_WIDTH + PADDING);
}

/** A shape as `float32[1,3,224,224]`, with `?` for unknown sizes. */
export function formatValue(dtype: string, shape: Shape): string {
  if (shape === null) {
    return `${dtype}[?]`;
  }
  return `${dtype}[${shape.map(dim => (dim === null ? '?' : String(dim))).join(',')}]`;
}

/**
 * Boxes and arrows of a description. Nodes holding If, Loop or Scan subgraphs are drawn
 * collapsed unless their id is in `expanded`; an expanded node's subgraphs are drawn below it,
 * their boxes tagged with the subgraph they belong to.
 */
export function flatten(
  graph: GraphDescription,
  expanded: ReadonlySet<string> = new Set()
): FlatGraph {
  const flat: FlatGraph = { boxes: [], arrows: [], tensors: new Map(), initializers: new Map() };
  addLevel(flat, graph, '', expanded, undefined);
  return flat;
}

function addLevel(
  flat: FlatGraph,
  graph: GraphDescription,
  prefix: string,
  expanded: ReadonlySet<string>,
  cluster: string | undefined
): string[] {
  const level: Box[] = [];
  for (const [name, info] of Object.entries(graph.initializers)) {
    flat.initializers.set(name, info);
  }
  for (const value of [...graph.inputs, ...graph.outputs]) {
    flat.tensors.set(value.name, value);
  }
  for (const edge of graph.edges) {
    flat.tensors.set(edge.tensor, { name: edge.tensor, shape: edge.shape, dtype: edge.dtype });
  }

  for (const value of graph.inputs) {
    const label = shorten(value.name);
    const box = valueBox(`${prefix}input:${value.name}`, 'input', label, value, cluster);
    flat.boxes.push(box);
    level.push(box);
  }
  for (const node of graph.nodes) {
    const label = shorten(node.op_type);
    const holds = node.subgraphs !== undefined && Object.keys(node.subgraphs).length > 0;
    const box: Box = {
      id: node.id,
      kind: 'op',
      label,
      width: boxWidth(label) + (holds ? 14 : 0),
      height: BOX_HEIGHT,
      node
    };
    if (cluster !== undefined) {
      box.cluster = cluster;
    }
    if (holds) {
      box.collapsed = !expanded.has(node.id);
    }
    flat.boxes.push(box);
    level.push(box);
    if (holds && expanded.has(node.id)) {
      addSubgraphs(flat, node, expanded);
    }
  }
  for (const value of graph.outputs) {
    const label = shorten(value.name);
    flat.boxes.push(valueBox(`${prefix}output:${value.name}`, 'output', label, value, cluster));
  }
  for (const edge of graph.edges) {
    flat.arrows.push({ source: edge.source, target: edge.target, tensor: edge.tensor });
  }
  return level.map(box => box.id);
}

function addSubgraphs(flat: FlatGraph, node: NodeInfo, expanded: ReadonlySet<string>): void {
  for (const [attribute, subgraph] of Object.entries(node.subgraphs ?? {})) {
    const prefix = `${node.id}/${attribute}/`;
    const level = addLevel(flat, subgraph, prefix, expanded, `${node.id}/${attribute}`);
    // The subgraph hangs below its node: an arrow to each of its entry boxes keeps it there.
    const entries = new Set(level.filter(id => !id.startsWith(`${prefix}output:`)));
    for (const edge of subgraph.edges) {
      entries.delete(edge.target);
    }
    for (const entry of entries) {
      flat.arrows.push({ source: node.id, target: entry, tensor: '', nested: true });
    }
  }
}

function valueBox(
  id: string,
  kind: BoxKind,
  label: string,
  value: ValueInfo,
  cluster: string | undefined
): Box {
  const box: Box = { id, kind, label, width: boxWidth(label), height: BOX_HEIGHT, value };
  if (cluster !== undefined) {
    box.cluster = cluster;
  }
  return box;
}

/** Ids of the boxes whose node name, op type or tensor name contains the query. */
export function search(boxes: readonly Box[], query: string): string[] {
  const needle = query.trim().toLowerCase();
  if (needle === '') {
    return [];
  }
  return boxes
    .filter(box => {
      const texts = box.node
        ? [box.node.name, box.node.op_type, box.node.domain]
        : [box.value?.name ?? ''];
      return texts.some(text => text.toLowerCase().includes(needle));
    })
    .map(box => box.id);
}

/** The payload inside a MIME bundle or a server answer, checked just enough to draw it. */
export function readPayload(value: unknown): GraphPayload {
  const payload = isRecord(value) ? value : null;
  const graph = payload === null ? null : readGraph(payload.graph);
  if (payload === null || graph === null) {
    throw new Error(
      'This is not a workbench graph: it lacks the nodes, edges, inputs and outputs.'
    );
  }
  return {
    version: typeof payload.version === 'number' ? payload.version : 1,
    name: typeof payload.name === 'string' ? payload.name : 'model',
    graph,
    timings: readTimings(payload.timings)
  };
}

// A saved notebook or a server answer is data from outside: every field is checked and given
// its type here, so that nothing later (layout, search, the details panel) meets a null, a
// number where text belongs, or a key inherited from Object.prototype such as "constructor".

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : '';
}

function texts(value: unknown): string[] {
  return Array.isArray(value) ? value.map(text) : [];
}

function finite(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function readShape(value: unknown): Shape {
  if (!Array.isArray(value)) {
    return null;
  }
  return value.map(dim => (typeof dim === 'number' || typeof dim === 'string' ? dim : null));
}

/** A record without a prototype: lookups by untrusted names find only what was put in. */
function table<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function readValue(value: unknown): ValueInfo | null {
  if (!isRecord(value) || typeof value.name !== 'string') {
    return null;
  }
  return { name: value.name, shape: readShape(value.shape), dtype: text(value.dtype) };
}

function readEdge(value: unknown): EdgeInfo | null {
  if (!isRecord(value) || typeof value.source !== 'string' || typeof value.target !== 'string') {
    return null;
  }
  return {
    source: value.source,
    target: value.target,
    tensor: text(value.tensor),
    shape: readShape(value.shape),
    dtype: text(value.dtype)
  };
}

function readNode(value: unknown, index: number): NodeInfo | null {
  if (!isRecord(value)) {
    return null;
  }
  const node: NodeInfo = {
    id: typeof value.id === 'string' && value.id !== '' ? value.id : `node-${index}`,
    name: text(value.name),
    op_type: text(value.op_type),
    domain: text(value.domain),
    inputs: texts(value.inputs),
    outputs: texts(value.outputs),
    attributes: isRecord(value.attributes) ? { ...value.attributes } : {}
  };
  if (isRecord(value.subgraphs)) {
    const subgraphs = table<GraphDescription>();
    for (const [name, held] of Object.entries(value.subgraphs)) {
      const graph = readGraph(held);
      if (graph !== null) {
        subgraphs[name] = graph;
      }
    }
    node.subgraphs = subgraphs;
  }
  if (Array.isArray(value.implicit_inputs)) {
    node.implicit_inputs = texts(value.implicit_inputs);
  }
  return node;
}

function readInitializers(value: unknown): Record<string, InitializerInfo> {
  const found = table<InitializerInfo>();
  if (!isRecord(value)) {
    return found;
  }
  for (const [name, entry] of Object.entries(value)) {
    if (isRecord(entry)) {
      const shape = Array.isArray(entry.shape) ? entry.shape.map(dim => finite(dim) ?? 0) : [];
      found[name] = {
        shape,
        dtype: text(entry.dtype),
        bytes: Math.max(0, finite(entry.bytes) ?? 0),
        ...(entry.sparse === true ? { sparse: true } : {})
      };
    }
  }
  return found;
}

function present<T>(items: (T | null)[]): T[] {
  return items.filter((item): item is T => item !== null);
}

function readGraph(value: unknown): GraphDescription | null {
  if (
    !isRecord(value) ||
    !Array.isArray(value.nodes) ||
    !Array.isArray(value.edges) ||
    !Array.isArray(value.inputs) ||
    !Array.isArray(value.outputs)
  ) {
    return null;
  }
  return {
    nodes: present(value.nodes.map(readNode)),
    edges: present(value.edges.map(readEdge)),
    inputs: present(value.inputs.map(readValue)),
    outputs: present(value.outputs.map(readValue)),
    initializers: readInitializers(value.initializers)
  };
}

/** Timings with finite, non-negative times only; an entry without them is left out. */
function readTimings(value: unknown): Timings | null {
  if (!isRecord(value) || !isRecord(value.nodes)) {
    return null;
  }
  const nodes = table<NodeTiming>();
  for (const [name, entry] of Object.entries(value.nodes)) {
    const ms = isRecord(entry) ? finite(entry.ms) : null;
    const share = isRecord(entry) ? finite(entry.share) : null;
    if (!isRecord(entry) || ms === null || share === null || ms < 0 || share < 0) {
      continue;
    }
    nodes[name] = {
      ms,
      share: Math.min(share, 1),
      ...(typeof entry.op_type === 'string' ? { op_type: entry.op_type } : {}),
      ...(Array.isArray(entry.fused_with) ? { fused_with: texts(entry.fused_with) } : {}),
      ...(Array.isArray(entry.fused_into) ? { fused_into: texts(entry.fused_into) } : {})
    };
  }
  const total = finite(value.total_ms);
  return {
    runtime: text(value.runtime),
    unit: text(value.unit) || 'ms',
    total_ms:
      total !== null && total >= 0 ? total : Object.values(nodes).reduce((sum, e) => sum + e.ms, 0),
    nodes
  };
}
