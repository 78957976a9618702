/**
 * The graph-to-layout transformation: a description flattened into boxes and arrows, then
 * placed in rows. Run with Node's test runner on the compiled files (`npm test`).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { closestInOrder, layout, type Layout, type LayoutInput } from '../src/layout';
import { flatten, formatValue, readPayload, search, type GraphDescription } from '../src/model';
import { heat, largestShare, nodeColour } from '../src/timings';

function chain(names: string[]): LayoutInput {
  return {
    nodes: names.map(id => ({ id, width: 60, height: 28 })),
    edges: names.slice(1).map((id, i) => ({ source: names[i] ?? '', target: id }))
  };
}

function placed(result: Layout, id: string): { x: number; y: number; rank: number } {
  const node = result.nodes.find(each => each.id === id);
  assert.ok(node, `${id} was not placed`);
  return node;
}

function overlapping(result: Layout): string[] {
  const found: string[] = [];
  const byRank = new Map<number, Layout['nodes']>();
  for (const node of result.nodes) {
    byRank.set(node.rank, [...(byRank.get(node.rank) ?? []), node]);
  }
  for (const row of byRank.values()) {
    const sorted = [...row].sort((a, b) => a.x - b.x);
    for (let i = 1; i < sorted.length; i++) {
      const [a, b] = [sorted[i - 1], sorted[i]];
      if (a && b && b.x - b.width / 2 < a.x + a.width / 2) {
        found.push(`${a.id}/${b.id}`);
      }
    }
  }
  return found;
}

/** x -> MatMul -> Add -> Relu -> y, with a weight and a skip from x into Add. */
const description: GraphDescription = {
  nodes: [
    {
      id: 'n0',
      name: 'fc',
      op_type: 'MatMul',
      domain: '',
      inputs: ['x', 'w'],
      outputs: ['h'],
      attributes: {}
    },
    {
      id: 'n1',
      name: 'skip',
      op_type: 'Add',
      domain: '',
      inputs: ['h', 'x'],
      outputs: ['s'],
      attributes: {}
    },
    {
      id: 'n2',
      name: 'act',
      op_type: 'Relu',
      domain: '',
      inputs: ['s'],
      outputs: ['y'],
      attributes: {}
    }
  ],
  edges: [
    { source: 'input:x', target: 'n0', tensor: 'x', shape: ['batch', 4], dtype: 'float32' },
    { source: 'input:x', target: 'n1', tensor: 'x', shape: ['batch', 4], dtype: 'float32' },
    { source: 'n0', target: 'n1', tensor: 'h', shape: ['batch', 4], dtype: 'float32' },
    { source: 'n1', target: 'n2', tensor: 's', shape: ['batch', 4], dtype: 'float32' },
    { source: 'n2', target: 'output:y', tensor: 'y', shape: ['batch', 4], dtype: 'float32' }
  ],
  inputs: [{ name: 'x', shape: ['batch', 4], dtype: 'float32' }],
  outputs: [{ name: 'y', shape: ['batch', 4], dtype: 'float32' }],
  initializers: { w: { shape: [4, 4], dtype: 'float32', bytes: 64 } }
};

test('a chain is one node per row, top to bottom, in one column', () => {
  const result = layout(chain(['a', 'b', 'c', 'd']));

  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map(id => placed(result, id).rank),
    [0, 1, 2, 3]
  );
  const ys = ['a', 'b', 'c', 'd'].map(id => placed(result, id).y);
  assert.ok(ys.every((y, i) => i === 0 || y > (ys[i - 1] ?? Infinity)));
  assert.equal(new Set(['a', 'b', 'c', 'd'].map(id => placed(result, id).x)).size, 1);
});

test('a skip connection bends around, and every edge runs from its source to its target', () => {
  const flat = flatten(description);
  const result = layout({
    nodes: flat.boxes.map(box => ({ id: box.id, width: box.width, height: box.height })),
    edges: flat.arrows
  });

  assert.equal(placed(result, 'n1').rank, 2);
  const skip = result.edges.find(edge => edge.source === 'input:x' && edge.target === 'n1');
  assert.ok(skip);
  assert.equal(skip.points.length, 6, 'one bend point for the row it crosses');
  for (const edge of result.edges) {
    const [source, target] = [placed(result, edge.source), placed(result, edge.target)];
    assert.equal(edge.points[0], source.x);
    assert.equal(edge.points[edge.points.length - 2], target.x);
    assert.ok(source.y < target.y);
  }
  assert.deepEqual(overlapping(result), []);
});

test('a node with no input sits right above its consumer, not at the top', () => {
  const input = chain(['a', 'b', 'c', 'd']);
  input.nodes.push({ id: 'constant', width: 60, height: 28 });
  input.edges.push({ source: 'constant', target: 'd' });

  const result = layout(input);

  assert.equal(placed(result, 'constant').rank, 2);
});

test('a cycle is laid out with one edge turned back, not dropped', () => {
  const input = chain(['a', 'b', 'c']);
  input.edges.push({ source: 'c', target: 'a' });

  const result = layout(input);

  assert.equal(result.edges.length, 3);
  const back = result.edges.find(edge => edge.source === 'c');
  assert.ok(back);
  assert.equal(back.points[0], placed(result, 'c').x);
  assert.equal(back.points[1], placed(result, 'c').y - 14, 'it leaves c from its top');
});

test('a wide layer keeps its order and its gaps', () => {
  const fan: LayoutInput = { nodes: [{ id: 'root', width: 60, height: 28 }], edges: [] };
  for (let i = 0; i < 30; i++) {
    fan.nodes.push({ id: `leaf${i}`, width: 40 + (i % 3) * 30, height: 28 });
    fan.edges.push({ source: 'root', target: `leaf${i}` });
  }

  const result = layout(fan);

  assert.deepEqual(overlapping(result), []);
  const leaves = result.nodes.filter(node => node.id.startsWith('leaf'));
  const mean = leaves.reduce((sum, node) => sum + node.x, 0) / leaves.length;
  assert.ok(Math.abs(placed(result, 'root').x - mean) < 1, 'the root is centred over its fan');
});

test('placing a row keeps order and gaps at the least total displacement', () => {
  // Three boxes of width 10 want to sit on one spot; gap 2 means centres 12 apart.
  const placedRow = closestInOrder([0, 1, 2], [50, 50, 50], [10, 10, 10], 2);
  assert.deepEqual(placedRow, [38, 50, 62]);
  // Boxes already apart stay where they want to be.
  assert.deepEqual(closestInOrder([0, 1], [0, 100], [10, 10], 2), [0, 100]);
});

test('ten thousand nodes are placed in well under a second', () => {
  const input = chain(Array.from({ length: 10_000 }, (_, i) => `n${i}`));
  for (let i = 40; i < 10_000; i += 40) {
    input.edges.push({ source: `n${i - 32}`, target: `n${i}` });
  }
  const started = performance.now();

  const result = layout(input);

  const elapsed = performance.now() - started;
  assert.equal(result.nodes.length, 10_000);
  assert.ok(elapsed < 2000, `took ${elapsed.toFixed(0)} ms`);
});

test('subgraphs stay collapsed until their node is expanded', () => {
  const branch: GraphDescription = {
    nodes: [
      {
        id: 'n0',
        name: 'if',
        op_type: 'If',
        domain: '',
        inputs: ['cond'],
        outputs: ['y'],
        attributes: {},
        implicit_inputs: ['x'],
        subgraphs: {
          then_branch: {
            nodes: [
              {
                id: 'n0/then_branch/n0',
                name: 'r',
                op_type: 'Relu',
                domain: '',
                inputs: ['x'],
                outputs: ['t'],
                attributes: {}
              }
            ],
            edges: [
              {
                source: 'n0/then_branch/n0',
                target: 'n0/then_branch/output:t',
                tensor: 't',
                shape: null,
                dtype: 'float32'
              }
            ],
            inputs: [],
            outputs: [{ name: 't', shape: null, dtype: 'float32' }],
            initializers: {}
          }
        }
      }
    ],
    edges: [],
    inputs: [],
    outputs: [],
    initializers: {}
  };

  const collapsed = flatten(branch);
  assert.deepEqual(
    collapsed.boxes.map(box => box.id),
    ['n0']
  );
  assert.equal(collapsed.boxes[0]?.collapsed, true);

  const open = flatten(branch, new Set(['n0']));
  assert.deepEqual(
    open.boxes.map(box => box.id),
    ['n0', 'n0/then_branch/n0', 'n0/then_branch/output:t']
  );
  assert.equal(open.boxes[1]?.cluster, 'n0/then_branch');
  assert.deepEqual(
    open.arrows.filter(arrow => arrow.nested === true).map(arrow => arrow.target),
    ['n0/then_branch/n0']
  );
});

test("shapes, search and payload checks speak the user's words", () => {
  const flat = flatten(description);

  assert.equal(formatValue('float32', ['batch', null, 3]), 'float32[batch,?,3]');
  assert.equal(formatValue('int64', null), 'int64[?]');
  assert.deepEqual(search(flat.boxes, 'relu'), ['n2']);
  assert.deepEqual(search(flat.boxes, 'SKIP'), ['n1']);
  assert.deepEqual(search(flat.boxes, '  '), []);
  assert.deepEqual(flat.initializers.get('w'), { shape: [4, 4], dtype: 'float32', bytes: 64 });
  assert.throws(() => readPayload({ graph: { nodes: 'no' } }), /not a workbench graph/);
  assert.equal(readPayload({ graph: description }).timings, null);
});

test('the slowest node gets the darkest colour, untimed nodes none', () => {
  const timings = {
    runtime: 'onnxruntime',
    unit: 'ms',
    total_ms: 2,
    nodes: { fc: { ms: 1.5, share: 0.75 }, act: { ms: 0.5, share: 0.25 } }
  };

  assert.equal(largestShare(timings), 0.75);
  assert.equal(nodeColour(timings, 'fc', 0.75), heat(1));
  assert.equal(nodeColour(timings, 'skip', 0.75), null);
  assert.notEqual(heat(0), heat(1));
  assert.equal(heat(Number.NaN), heat(0));
});

test('a malformed saved output is read into well-typed parts that later steps can trust', () => {
  const payload = readPayload({
    graph: {
      nodes: [
        null,
        {
          id: 'a',
          name: null,
          op_type: 7,
          attributes: null,
          inputs: 'x',
          subgraphs: { body: 5, fine: { nodes: [], edges: [], inputs: [], outputs: [] } }
        }
      ],
      edges: [null, { source: 'input:x', target: 'a', tensor: 5 }, { source: 1, target: 'a' }],
      inputs: [{ shape: [1] }, { name: 'x', shape: 'wide', dtype: null }],
      outputs: [],
      initializers: null
    },
    timings: {
      total_ms: Number.NaN,
      nodes: {
        a: { ms: '1', share: 0.5 },
        b: { ms: 2, share: 0.5 },
        c: { ms: -1, share: 0.1 },
        d: { ms: 1, share: Number.POSITIVE_INFINITY }
      }
    }
  });

  const { graph, timings } = payload;
  assert.equal(graph.nodes.length, 1);
  const node = graph.nodes[0];
  assert.ok(node);
  assert.deepEqual([node.name, node.op_type, node.inputs, node.attributes], ['', '7', [], {}]);
  assert.deepEqual(Object.keys(node.subgraphs ?? {}), ['fine']);
  assert.deepEqual(
    graph.edges.map(edge => edge.tensor),
    ['5']
  );
  assert.deepEqual(graph.inputs, [{ name: 'x', shape: null, dtype: '' }]);
  assert.deepEqual(Object.keys(graph.initializers), []);
  assert.ok(timings);
  assert.deepEqual(Object.keys(timings.nodes), ['b']);
  assert.equal(timings.total_ms, 2);
  // Names inherited from Object.prototype are no timed nodes.
  assert.equal(timings.nodes.constructor, undefined);
  assert.equal(nodeColour(timings, 'constructor', largestShare(timings)), null);
  const flat = flatten(graph);
  assert.deepEqual(search(flat.boxes, '7'), ['a']);
});
