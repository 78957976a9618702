/**
 * The graph viewer: a canvas with pan, zoom, fit and search, a details panel for the clicked
 * node, and a legend when the graph carries timings. Used by the file viewer and by the
 * notebook output renderer alike.
 */

import { Widget } from '@lumino/widgets';

import { draw, Scene, type View } from './canvas';
import { BOX_HEIGHT, flatten, search, type GraphPayload } from './model';
import { element, fillPanel } from './panel';
import { computeLayout } from './run-layout';
import { formatMs, formatShare, heat, largestShare } from './timings';

const MIN_SCALE = 0.0005;
const MAX_SCALE = 4;
const CLICK_SLOP = 4;
const PANEL_WIDTH = 340;

export class GraphView extends Widget {
  private readonly canvas: HTMLCanvasElement;
  private readonly panel: HTMLElement;
  private readonly legend: HTMLElement;
  private readonly status: HTMLElement;
  private readonly matchesText: HTMLElement;
  private readonly searchBox: HTMLInputElement;
  private payload: GraphPayload | null = null;
  private scene: Scene | null = null;
  private view: View = { scale: 1, x: 0, y: 0 };
  private readonly expanded = new Set<string>();
  private selected: string | null = null;
  private matches: string[] = [];
  private matchIndex = -1;
  private frame = 0;
  private drag: { x: number; y: number; moved: boolean } | null = null;
  private readonly resizer: ResizeObserver;

  constructor() {
    super();
    this.addClass('wb-graph');
    this.node.tabIndex = -1;
    const toolbar = element('div', 'wb-graph-toolbar');
    this.searchBox = document.createElement('input');
    this.searchBox.className = 'wb-graph-search';
    this.searchBox.placeholder = 'Search node or op';
    this.searchBox.setAttribute('aria-label', 'Search node or op');
    this.matchesText = element('span', 'wb-graph-matches');
    this.status = element('span', 'wb-graph-status', 'Laying out…');
    toolbar.append(
      this.searchBox,
      this.matchesText,
      this.button('Fit', 'Show the whole graph', () => {
        this.fitGraph();
      }),
      this.button('+', 'Zoom in', () => {
        this.zoomAt(1.25);
      }),
      this.button('−', 'Zoom out', () => {
        this.zoomAt(0.8);
      }),
      this.status
    );
    const body = element('div', 'wb-graph-body');
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'wb-graph-canvas';
    this.legend = element('div', 'wb-graph-legend');
    this.legend.hidden = true;
    this.panel = element('div', 'wb-graph-panel');
    this.panel.hidden = true;
    body.append(this.canvas, this.legend, this.panel);
    this.node.append(toolbar, body);

    this.searchBox.addEventListener('input', () => {
      this.runSearch(false);
    });
    this.searchBox.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        this.runSearch(true);
      }
    });
    this.listenToPointer();
    this.resizer = new ResizeObserver(() => {
      this.requestDraw();
    });
    this.resizer.observe(body);
  }

  /** Show a graph; resolves once it is laid out and painted. */
  async setPayload(payload: GraphPayload): Promise<void> {
    this.payload = payload;
    this.expanded.clear();
    this.selected = null;
    this.panel.hidden = true;
    await this.relayout(true);
    this.showLegend();
  }

  /** Say, in place of the graph, why there is none. */
  showError(message: string): void {
    this.node.dataset.state = 'error';
    this.status.textContent = message;
  }

  override dispose(): void {
    this.resizer.disconnect();
    cancelAnimationFrame(this.frame);
    super.dispose();
  }

  private button(text: string, title: string, action: () => void): HTMLElement {
    const made = element('button', 'wb-graph-button', text);
    made.title = title;
    made.addEventListener('click', action);
    return made;
  }

  private async relayout(first: boolean): Promise<void> {
    const payload = this.payload;
    if (payload === null) {
      return;
    }
    this.node.dataset.state = 'layout';
    const started = performance.now();
    const flat = flatten(payload.graph, this.expanded);
    const placed = await computeLayout({
      nodes: flat.boxes.map(box => ({ id: box.id, width: box.width, height: box.height })),
      edges: flat.arrows.map(arrow => ({ source: arrow.source, target: arrow.target }))
    });
    if (payload !== this.payload) {
      return; // a newer graph arrived meanwhile
    }
    this.scene = new Scene(flat, placed, payload.timings ?? null);
    const ops = flat.boxes.filter(box => box.kind === 'op').length;
    this.status.textContent = `${ops.toLocaleString()} nodes, ${flat.arrows.length.toLocaleString()} edges`;
    this.node.dataset.nodes = String(ops);
    if (first) {
      this.initialView();
    }
    this.runSearch(false);
    this.paint();
    this.node.dataset.state = 'ready';
    this.node.dataset.firstPaintMs = (performance.now() - started).toFixed(1);
  }

  /** The whole graph when it fits readably, otherwise its top at a readable size. */
  private initialView(): void {
    const scene = this.scene;
    if (scene === null) {
      return;
    }
    const { width, height } = this.canvasSize();
    const fitAll = Math.min(width / (scene.layout.width + 40), height / (scene.layout.height + 40));
    if (fitAll >= 0.5) {
      this.fitGraph();
      return;
    }
    const scale = Math.max(0.5, Math.min(1, width / (scene.layout.width + 40)));
    this.view = { scale, x: (width - scene.layout.width * scale) / 2, y: 20 };
  }

  fitGraph(): void {
    const scene = this.scene;
    if (scene === null) {
      return;
    }
    const { width, height } = this.canvasSize();
    const scale = clamp(
      Math.min(width / (scene.layout.width + 40), height / (scene.layout.height + 40), 1.5),
      MIN_SCALE,
      MAX_SCALE
    );
    this.view = {
      scale,
      x: (width - scene.layout.width * scale) / 2,
      y: (height - scene.layout.height * scale) / 2
    };
    this.requestDraw();
  }

  private zoomAt(factor: number, screenX?: number, screenY?: number): void {
    const { width, height } = this.canvasSize();
    const x = screenX ?? width / 2;
    const y = screenY ?? height / 2;
    const scale = clamp(this.view.scale * factor, MIN_SCALE, MAX_SCALE);
    const worldX = (x - this.view.x) / this.view.scale;
    const worldY = (y - this.view.y) / this.view.scale;
    this.view = { scale, x: x - worldX * scale, y: y - worldY * scale };
    this.requestDraw();
  }

  private centreOn(id: string): void {
    const node = this.scene?.placed.get(id);
    if (node === undefined) {
      return;
    }
    const { width, height } = this.canvasSize();
    const scale = Math.max(this.view.scale, 0.8);
    // The details panel covers the right side; centre in what stays visible.
    const free = this.panel.hidden ? width : Math.max(width / 2, width - PANEL_WIDTH);
    this.view = { scale, x: free / 2 - node.x * scale, y: height / 2 - node.y * scale };
  }

  private runSearch(step: boolean): void {
    const scene = this.scene;
    if (scene === null) {
      return;
    }
    const query = this.searchBox.value;
    const found = search(scene.flat.boxes, query);
    const changed = found.join('\n') !== this.matches.join('\n');
    this.matches = found;
    if (changed) {
      this.matchIndex = -1;
    }
    if (found.length > 0 && (step || changed)) {
      this.matchIndex = (this.matchIndex + 1) % found.length;
      const id = found[this.matchIndex] ?? '';
      this.select(id);
      this.centreOn(id);
    }
    this.matchesText.textContent =
      query.trim() === ''
        ? ''
        : found.length === 0
          ? 'no match'
          : `${this.matchIndex + 1} of ${found.length}`;
    this.requestDraw();
  }

  private select(id: string | null): void {
    const scene = this.scene;
    const box = id === null ? undefined : scene?.boxes.get(id);
    this.selected = box === undefined ? null : box.id;
    if (box === undefined || scene === null) {
      this.panel.hidden = true;
      this.requestDraw();
      return;
    }
    fillPanel(this.panel, box, scene.flat, scene.timings, {
      toggle: nodeId => {
        void this.toggle(nodeId);
      },
      close: () => {
        this.select(null);
      }
    });
    this.panel.hidden = false;
    this.requestDraw();
  }

  private async toggle(nodeId: string): Promise<void> {
    if (this.expanded.has(nodeId)) {
      for (const id of [...this.expanded]) {
        if (id === nodeId || id.startsWith(`${nodeId}/`)) {
          this.expanded.delete(id);
        }
      }
    } else {
      this.expanded.add(nodeId);
    }
    const anchor = this.scene?.placed.get(nodeId);
    const before = anchor === undefined ? null : { x: anchor.x, y: anchor.y };
    await this.relayout(false);
    // Keep the toggled node where it was on screen.
    const after = this.scene?.placed.get(nodeId);
    if (before !== null && after !== undefined) {
      this.view.x += (before.x - after.x) * this.view.scale;
      this.view.y += (before.y - after.y) * this.view.scale;
    }
    this.select(nodeId);
  }

  private showLegend(): void {
    const timings = this.payload?.timings ?? null;
    this.legend.replaceChildren();
    this.legend.hidden = timings === null;
    if (timings === null) {
      return;
    }
    const largest = largestShare(timings);
    const bar = element('div', 'wb-graph-legend-bar');
    bar.style.background = `linear-gradient(to right, ${[0, 0.33, 0.66, 1].map(heat).join(', ')})`;
    this.legend.append(
      element('div', 'wb-graph-legend-title', `Share of time on ${timings.runtime}`),
      bar,
      element('div', 'wb-graph-legend-scale', `0%  …  ${formatShare(largest)}`),
      element(
        'div',
        'wb-graph-note',
        `${formatMs(timings.total_ms)} per run in nodes; pale: not timed`
      )
    );
  }

  private listenToPointer(): void {
    const canvas = this.canvas;
    canvas.addEventListener('pointerdown', event => {
      this.drag = { x: event.clientX, y: event.clientY, moved: false };
      canvas.setPointerCapture(event.pointerId);
    });
    canvas.addEventListener('pointermove', event => {
      const drag = this.drag;
      if (drag === null) {
        return;
      }
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < CLICK_SLOP) {
        return;
      }
      drag.moved = true;
      this.view.x += dx;
      this.view.y += dy;
      drag.x = event.clientX;
      drag.y = event.clientY;
      this.requestDraw();
    });
    canvas.addEventListener('pointerup', event => {
      const drag = this.drag;
      this.drag = null;
      if (drag !== null && !drag.moved) {
        const box = this.boxAt(event);
        this.select(box?.id ?? null);
      }
    });
    canvas.addEventListener('dblclick', event => {
      const box = this.boxAt(event);
      if (box?.collapsed !== undefined) {
        void this.toggle(box.id);
      }
    });
    canvas.addEventListener(
      'wheel',
      event => {
        event.preventDefault();
        const rect = canvas.getBoundingClientRect();
        const factor = Math.exp(-clamp(event.deltaY, -100, 100) * 0.002);
        this.zoomAt(factor, event.clientX - rect.left, event.clientY - rect.top);
      },
      { passive: false }
    );
  }

  private boxAt(event: MouseEvent): ReturnType<Scene['hit']> {
    const rect = this.canvas.getBoundingClientRect();
    const worldX = (event.clientX - rect.left - this.view.x) / this.view.scale;
    const worldY = (event.clientY - rect.top - this.view.y) / this.view.scale;
    return this.scene?.hit(worldX, worldY);
  }

  private canvasSize(): { width: number; height: number } {
    const parent = this.canvas.parentElement;
    return {
      width: Math.max(1, parent?.clientWidth ?? 1),
      height: Math.max(BOX_HEIGHT, parent?.clientHeight ?? 1)
    };
  }

  private requestDraw(): void {
    if (this.frame === 0) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.paint();
      });
    }
  }

  private paint(): void {
    const scene = this.scene;
    const context = this.canvas.getContext('2d');
    if (scene === null || context === null) {
      return;
    }
    const started = performance.now();
    const { width, height } = this.canvasSize();
    const ratio = window.devicePixelRatio || 1;
    if (
      this.canvas.width !== Math.round(width * ratio) ||
      this.canvas.height !== Math.round(height * ratio)
    ) {
      this.canvas.width = Math.round(width * ratio);
      this.canvas.height = Math.round(height * ratio);
      this.canvas.style.width = `${width}px`;
      this.canvas.style.height = `${height}px`;
    }
    draw(
      context,
      scene,
      this.view,
      { selected: this.selected, matches: new Set(this.matches) },
      {
        width,
        height,
        ratio
      }
    );
    this.node.dataset.frameMs = (performance.now() - started).toFixed(2);
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}
