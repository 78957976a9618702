/**
 * The file viewer: `.onnx` files in the file browser open as an interactive graph.
 *
 * The browser never downloads the model file. A content provider asks the server extension
 * (`GET /workbench/graph?path=...`) for the graph description, which holds shapes and sizes
 * but no weight values, and the document opens with that description as its content.
 */

import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { URLExt } from '@jupyterlab/coreutils';
import {
  ABCWidgetFactory,
  DocumentWidget,
  type DocumentRegistry,
  type IDocumentWidget
} from '@jupyterlab/docregistry';
import { ServerConnection, type Contents, type IContentProvider } from '@jupyterlab/services';

import { readPayload } from './model';
import { GraphView } from './view';

const PROVIDER_ID = 'onnx-workbench-graph';
const FACTORY = 'ONNX graph';

/** Reads `.onnx` files as their graph description, through the server extension. */
class GraphContentProvider implements IContentProvider {
  constructor(
    private readonly settings: ServerConnection.ISettings,
    readonly sharedModelFactory: Contents.IDrive['sharedModelFactory']
  ) {}

  async get(localPath: string, options?: Contents.IFetchOptions): Promise<Contents.IModel> {
    const name = localPath.split('/').pop() ?? localPath;
    const model: Contents.IModel = {
      name,
      path: localPath,
      type: 'file',
      writable: false,
      created: new Date().toISOString(),
      last_modified: new Date().toISOString(),
      mimetype: 'application/json',
      format: 'text',
      content: null
    };
    if (options?.content === false) {
      return model;
    }
    const url = `${URLExt.join(this.settings.baseUrl, 'workbench', 'graph')}?path=${encodeURIComponent(localPath)}`;
    const response = await ServerConnection.makeRequest(url, {}, this.settings);
    const text = await response.text();
    if (!response.ok) {
      throw new Error(errorMessage(text, response.status));
    }
    const stamp = (JSON.parse(text) as { last_modified?: unknown }).last_modified;
    const modified = typeof stamp === 'string' ? stamp : new Date().toISOString();
    return {
      ...model,
      content: text,
      size: text.length,
      created: modified,
      last_modified: modified
    };
  }

  save(): Promise<Contents.IModel> {
    return Promise.reject(
      new Error('The ONNX graph view is read-only: the model file is left as it is.')
    );
  }
}

function errorMessage(text: string, status: number): string {
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') {
      return parsed.message;
    }
  } catch {
    // not JSON: fall through to the status
  }
  return `The server could not describe the model (HTTP ${status}).`;
}

class GraphWidgetFactory extends ABCWidgetFactory<IDocumentWidget<GraphView>> {
  protected createNewWidget(context: DocumentRegistry.Context): IDocumentWidget<GraphView> {
    const content = new GraphView();
    const widget = new DocumentWidget({ content, context });
    widget.addClass('wb-graph-document');
    void context.ready
      .then(() => content.setPayload(readPayload(JSON.parse(context.model.toString()))))
      .catch((error: unknown) => {
        content.showError(String(error));
      });
    return widget;
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'onnx-workbench:graph-viewer',
  description: 'Opens .onnx files as interactive graphs.',
  autoStart: true,
  activate: (app: JupyterFrontEnd): void => {
    const contents = app.serviceManager.contents;
    const drive =
      'defaultDrive' in contents ? (contents.defaultDrive as Contents.IDrive) : undefined;
    const registry = drive?.contentProviderRegistry;
    if (drive === undefined || registry === undefined) {
      console.warn(
        'onnx-workbench: this JupyterLab has no content providers; .onnx files stay closed.'
      );
      return;
    }
    registry.register(
      PROVIDER_ID,
      new GraphContentProvider(contents.serverSettings, drive.sharedModelFactory)
    );
    app.docRegistry.addFileType({
      name: 'onnx',
      displayName: 'ONNX model',
      extensions: ['.onnx'],
      mimeTypes: ['application/x-onnx'],
      contentType: 'file',
      fileFormat: 'text',
      iconClass: 'wb-onnx-icon'
    });
    app.docRegistry.addWidgetFactory(
      new GraphWidgetFactory({
        name: FACTORY,
        label: 'ONNX graph',
        modelName: 'text',
        fileTypes: ['onnx'],
        defaultFor: ['onnx'],
        readOnly: true,
        contentProviderId: PROVIDER_ID
      })
    );
  }
};

export default plugin;
