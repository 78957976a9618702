/**
 * The layout in a worker: a large graph is placed without freezing the page.
 */

import { layout, type LayoutInput } from './layout';

self.onmessage = (event: MessageEvent<LayoutInput>): void => {
  self.postMessage(layout(event.data));
};
