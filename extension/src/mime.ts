/**
 * The notebook output renderer for `application/vnd.workbench.graph+json`: the graph that
 * `workbench.inspect(...)` displays, with per-node timings when a profile was attached. Saved
 * outputs render again after a reload, with no kernel running.
 */

import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Panel } from '@lumino/widgets';

import { readPayload } from './model';
import { element } from './panel';
import { GraphView } from './view';

export const MIME_TYPE = 'application/vnd.workbench.graph+json';

class GraphOutput extends Panel implements IRenderMime.IRenderer {
  private readonly view = new GraphView();

  constructor() {
    super();
    this.addClass('wb-graph-output');
    this.addWidget(this.view);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    try {
      await this.view.setPayload(readPayload(model.data[MIME_TYPE]));
    } catch (error) {
      this.view.hide();
      this.node.append(element('div', 'wb-graph-error', String(error)));
    }
  }
}

export const rendererFactory: IRenderMime.IRendererFactory = {
  // NOTE: safe, because nothing in the output is run or parsed as markup, so the graph also
  // shows in a notebook that is not trusted.
  safe: true,
  mimeTypes: [MIME_TYPE],
  defaultRank: 10,
  createRenderer: () => new GraphOutput()
};

const extension: IRenderMime.IExtension = {
  id: 'onnx-workbench:graph-output',
  rendererFactory,
  rank: 10,
  dataType: 'json'
};

export default extension;
