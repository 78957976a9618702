// Why the graph viewer lays graphs out itself: its layered layout against elkjs and dagre.
//
//   benchmarks/layout_libraries.sh            installs the two libraries in a scratch folder
//   node benchmarks/layout_libraries.mjs DIR  DIR holds node_modules with elkjs and @dagrejs/dagre
//
// Each library lays out the synthetic graphs of benchmarks/extension_perf.py (elementwise ops in
// four lanes, a skip connection into every fourth block from eight blocks back) at 1,000 and
// 10,000 nodes, top to bottom, in a child process of its own with a time limit, so that one
// that overflows its stack or runs away costs only its own row. Needs the extension's compiled
// TypeScript (extension/lib, made by `npm run build:lib` in extension/).

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const LIMIT_MS = 120_000;
const SIZES = [1000, 10000];
const here = fileURLToPath(import.meta.url);

/** The synthetic graph as plain nodes (with box sizes like the viewer's) and edges. */
function synthetic(count, lanes = 4) {
  const nodes = [{ id: 'input:x', width: 64, height: 28 }];
  const edges = [];
  const blocks = [Array(lanes).fill('input:x')];
  for (let index = 0; index < count;) {
    const block = [];
    const previous = blocks[blocks.length - 1];
    const skip = blocks.length % 4 === 0 && blocks.length > 8 ? blocks[blocks.length - 8] : null;
    for (let lane = 0; lane < Math.min(lanes, count - index); lane += 1, index += 1) {
      const id = `n${index}`;
      nodes.push({ id, width: 72, height: 28 });
      edges.push({ source: previous[lane % previous.length], target: id });
      if (skip) edges.push({ source: skip[lane % skip.length], target: id });
      block.push(id);
    }
    blocks.push(block);
  }
  return { nodes, edges };
}

async function layOut(library, count, folder) {
  const graph = synthetic(count);
  const started = performance.now();
  if (library === 'workbench') {
    const ours = await import(path.resolve(path.dirname(here), '../extension/lib/layout.js'));
    ours.layout(graph);
  } else {
    const require = createRequire(path.join(path.resolve(folder), 'index.js'));
    if (library === 'dagre') {
      const dagre = require('@dagrejs/dagre');
      const g = new dagre.graphlib.Graph();
      g.setGraph({ rankdir: 'TB' });
      g.setDefaultEdgeLabel(() => ({}));
      for (const node of graph.nodes)
        g.setNode(node.id, { width: node.width, height: node.height });
      for (const edge of graph.edges) g.setEdge(edge.source, edge.target);
      dagre.layout(g);
    } else {
      const ELK = require('elkjs/lib/elk.bundled.js');
      await new ELK().layout({
        id: 'root',
        layoutOptions: { 'elk.algorithm': 'layered', 'elk.direction': 'DOWN' },
        children: graph.nodes,
        edges: graph.edges.map((edge, i) => ({
          id: `e${i}`,
          sources: [edge.source],
          targets: [edge.target]
        }))
      });
    }
  }
  return { ms: performance.now() - started, edges: graph.edges.length };
}

function version(library, folder) {
  if (library === 'workbench') return '';
  const name = library === 'dagre' ? '@dagrejs/dagre' : 'elkjs';
  const require = createRequire(path.join(path.resolve(folder), 'index.js'));
  return ` ${require(`${name}/package.json`).version}`;
}

const [, , folder, library, size] = process.argv;
if (!folder) {
  console.error(
    'usage: node benchmarks/layout_libraries.mjs DIR (DIR/node_modules holds the libraries)'
  );
  process.exit(2);
}
if (library) {
  // One measurement, in a child of the driver below.
  const { ms, edges } = await layOut(library, Number(size), folder);
  console.log(JSON.stringify({ ms, edges }));
} else {
  console.log(`node ${process.version}, ${process.platform} ${process.arch}`);
  for (const name of ['workbench', 'dagre', 'elkjs']) {
    for (const count of SIZES) {
      let result;
      try {
        const out = execFileSync(process.execPath, [here, folder, name, String(count)], {
          timeout: LIMIT_MS,
          stdio: ['ignore', 'pipe', 'pipe']
        });
        const { ms, edges } = JSON.parse(out.toString().trim().split('\n').pop());
        result = `${(ms / 1000).toFixed(2)} s (${edges} edges)`;
      } catch (error) {
        const text = `${error.stderr ?? ''}`;
        const why = error.signal
          ? `stopped after ${LIMIT_MS / 1000} s`
          : (text.match(/^[A-Za-z]*Error: [^\n]{0,100}/m) ?? ['failed'])[0];
        result = `no layout: ${why}`;
      }
      console.log(
        `${(name + version(name, folder)).padEnd(18)} ${String(count).padStart(6)} nodes: ${result}`
      );
    }
  }
}
