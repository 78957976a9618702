/**
 * The details panel of one node: op type, domain, attributes, inputs and outputs with their
 * shapes and dtypes, initializer sizes, subgraphs and, under a timing overlay, its time.
 *
 * Every piece of text from the model goes through `textContent`: a node named `<script>` is
 * shown as those characters and never becomes an element.
 */

import type { Box, FlatGraph, InitializerInfo, Timings } from './model';
import { formatValue } from './model';
import { formatMs, formatShare } from './timings';

export interface PanelActions {
  /** Show or hide the subgraphs of a node. */
  toggle(nodeId: string): void;
  close(): void;
}

/** A DOM element holding text only. */
export function element(tag: string, className?: string, text?: string): HTMLElement {
  const made = document.createElement(tag);
  if (className !== undefined) {
    made.className = className;
  }
  if (text !== undefined) {
    made.textContent = text;
  }
  return made;
}

export function fillPanel(
  panel: HTMLElement,
  box: Box,
  flat: FlatGraph,
  timings: Timings | null,
  actions: PanelActions
): void {
  panel.replaceChildren();
  const close = element('button', 'wb-graph-close', '×');
  close.title = 'Close';
  close.addEventListener('click', () => {
    actions.close();
  });
  panel.append(close);

  const node = box.node;
  if (node === undefined) {
    const value = box.value;
    panel.append(
      element('h3', 'wb-graph-title', box.kind === 'input' ? 'Graph input' : 'Graph output')
    );
    if (value !== undefined) {
      panel.append(
        rows([
          ['name', value.name],
          ['type', formatValue(value.dtype, value.shape)]
        ])
      );
    }
    return;
  }

  panel.append(element('h3', 'wb-graph-title', node.op_type));
  panel.append(
    rows([
      ['name', node.name === '' ? '(unnamed)' : node.name],
      ['domain', node.domain === '' ? 'ai.onnx (default)' : node.domain],
      ['id', node.id]
    ])
  );
  if (timings !== null) {
    panel.append(timingSection(timings, node.name));
  }

  const attributes = Object.entries(node.attributes);
  if (attributes.length > 0) {
    panel.append(element('h4', undefined, 'Attributes'));
    panel.append(rows(attributes.map(([name, value]) => [name, JSON.stringify(value)])));
  }
  panel.append(element('h4', undefined, 'Inputs'));
  panel.append(tensorList([...node.inputs, ...(node.implicit_inputs ?? [])], flat));
  panel.append(element('h4', undefined, 'Outputs'));
  panel.append(tensorList(node.outputs, flat));

  if (node.subgraphs !== undefined) {
    panel.append(element('h4', undefined, 'Subgraphs'));
    const names = Object.entries(node.subgraphs).map(
      ([name, graph]) => `${name} (${graph.nodes.length} nodes)`
    );
    panel.append(element('div', 'wb-graph-note', names.join(', ')));
    const toggle = element(
      'button',
      'wb-graph-toggle',
      box.collapsed === true ? 'Expand' : 'Collapse'
    );
    toggle.addEventListener('click', () => {
      actions.toggle(node.id);
    });
    panel.append(toggle);
  }
}

function timingSection(timings: Timings, name: string): HTMLElement {
  const entry = timings.nodes[name];
  if (entry === undefined) {
    return rows([['time', `not timed on ${timings.runtime}`]]);
  }
  const found: [string, string][] = [
    ['time', `${formatMs(entry.ms)} (${formatShare(entry.share)} of ${formatMs(timings.total_ms)})`]
  ];
  if (entry.fused_with !== undefined && entry.fused_with.length > 0) {
    found.push(['fused with', entry.fused_with.join(', ')]);
  }
  if (entry.fused_into !== undefined && entry.fused_into.length > 0) {
    found.push(['fused into', entry.fused_into.join(', ')]);
  }
  found.push(['runtime', timings.runtime]);
  return rows(found);
}

function tensorList(names: string[], flat: FlatGraph): HTMLElement {
  const list = element('ul', 'wb-graph-tensors');
  for (const name of names) {
    const item = element('li');
    if (name === '') {
      item.append(element('span', 'wb-graph-note', '(optional input left out)'));
      list.append(item);
      continue;
    }
    item.append(element('span', 'wb-graph-tensor', name));
    const initializer = flat.initializers.get(name);
    const value = flat.tensors.get(name);
    if (initializer !== undefined) {
      item.append(element('span', 'wb-graph-type', ` ${describeInitializer(initializer)}`));
    } else if (value !== undefined) {
      item.append(element('span', 'wb-graph-type', ` ${formatValue(value.dtype, value.shape)}`));
    }
    list.append(item);
  }
  return list;
}

/** An initializer by type, shape and size: its values never reach the browser. */
export function describeInitializer(info: InitializerInfo): string {
  const sparse = info.sparse === true ? ' sparse' : '';
  return `${formatValue(info.dtype, info.shape)} initializer${sparse}, ${formatBytes(info.bytes)}`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) {
    return `${bytes} bytes`;
  }
  const units = ['KiB', 'MiB', 'GiB'];
  let scaled = bytes / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return `${scaled.toFixed(1)} ${units[unit] ?? 'GiB'}`;
}

function rows(entries: [string, string][]): HTMLElement {
  const table = element('dl', 'wb-graph-rows');
  for (const [key, value] of entries) {
    table.append(element('dt', undefined, key), element('dd', undefined, value));
  }
  return table;
}
