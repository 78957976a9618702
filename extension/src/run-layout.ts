/**
 * Where the layout runs: in place for small graphs, in a worker for large ones.
 */

import { layout, type Layout, type LayoutInput } from './layout';

/** From this many boxes on, the layout runs in a worker so the page stays responsive. */
export const WORKER_THRESHOLD = 400;

export function computeLayout(input: LayoutInput): Promise<Layout> {
  if (input.nodes.length < WORKER_THRESHOLD) {
    return Promise.resolve(layout(input));
  }
  let worker: Worker;
  try {
    worker = new Worker(new URL('./layout-worker.js', import.meta.url));
  } catch {
    // NOTE: a page that forbids workers (a strict content security policy) still gets its
    // graph, placed on the main thread.
    return Promise.resolve(layout(input));
  }
  return new Promise(resolve => {
    worker.onmessage = (event: MessageEvent<Layout>): void => {
      worker.terminate();
      resolve(event.data);
    };
    worker.onerror = (): void => {
      worker.terminate();
      resolve(layout(input));
    };
    worker.postMessage(input);
  });
}
