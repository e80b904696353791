/**
 * kmagic for JupyterLab 4 and Notebook 7.
 *
 * - `kmagic-labextension:language`: the kmodel CodeMirror language, registered
 *   for `.kmodel` files, and switched on in any editor (notebook cells,
 *   consoles) whose text starts with `%%kmodel` or `%%kblock`.
 * - `kmagic-labextension:starters`: commands that insert starter cells.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import {
  EditorExtensionRegistry,
  IEditorExtensionRegistry,
  IEditorLanguageRegistry
} from '@jupyterlab/codemirror';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { INotebookTracker } from '@jupyterlab/notebook';

import { kmodel } from './language';
import { addStarterCommands } from './starters';
import { kmodelSwitch } from './switcher';

/** The MIME type of kmodel text. */
export const KMODEL_MIME = 'text/x-kmodel';

const languagePlugin: JupyterFrontEndPlugin<void> = {
  id: 'kmagic-labextension:language',
  description: 'kmodel syntax highlighting in %%kmodel / %%kblock cells and .kmodel files.',
  autoStart: true,
  requires: [IEditorLanguageRegistry, IEditorExtensionRegistry],
  activate: (
    app: JupyterFrontEnd,
    languages: IEditorLanguageRegistry,
    extensions: IEditorExtensionRegistry
  ) => {
    languages.addLanguage({
      name: 'kmodel',
      displayName: 'kmodel',
      mime: KMODEL_MIME,
      extensions: ['kmodel'],
      support: kmodel()
    });
    extensions.addExtension({
      name: 'kmagic:kmodel-cells',
      factory: options =>
        EditorExtensionRegistry.createImmutableExtension(
          kmodelSwitch(options.model.sharedModel.getSource())
        )
    });
  }
};

const startersPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kmagic-labextension:starters',
  description: 'Commands that insert kmodel starter cells (MLP, CNN, RNN, residual, transformer).',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, IMainMenu],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    mainMenu: IMainMenu | null
  ) => {
    addStarterCommands(app, tracker, palette, mainMenu);
  }
};

export default [languagePlugin, startersPlugin];
