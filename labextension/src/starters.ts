/**
 * Starter cells: commands that put a ready-to-run `%%kmodel` cell into the
 * current notebook, listed in the command palette, a "kmagic" main menu and
 * the notebook's context menu. The cell texts live in starters.json so the
 * Python tests can check that each one builds.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { Menu } from '@lumino/widgets';

import starters from './starters.json';

/** One starter cell. */
export interface IStarter {
  id: string;
  label: string;
  caption: string;
  source: string;
}

export const STARTERS: readonly IStarter[] = starters;

/** The command id that inserts a starter, e.g. `kmagic:insert-mlp`. */
export const commandId = (starter: IStarter): string => `kmagic:insert-${starter.id}`;

const PALETTE_CATEGORY = 'kmagic';

/**
 * Put `source` into the current notebook: into the active cell if it is an
 * empty code cell, otherwise into a new code cell below it.
 */
export function insertStarter(tracker: INotebookTracker, source: string): boolean {
  const panel = tracker.currentWidget;
  if (!panel) {
    return false;
  }
  const notebook = panel.content;
  const active = notebook.activeCell;
  const reusable =
    active !== null &&
    active.model.type === 'code' &&
    active.model.sharedModel.getSource().trim() === '';
  if (!reusable) {
    NotebookActions.insertBelow(notebook);
    if (notebook.activeCell?.model.type !== 'code') {
      NotebookActions.changeCellType(notebook, 'code');
    }
  }
  const cell = notebook.activeCell;
  if (!cell) {
    return false;
  }
  cell.model.sharedModel.setSource(source);
  notebook.scrollToItem(notebook.activeCellIndex).catch(() => undefined);
  return true;
}

function starterMenu(app: JupyterFrontEnd, title: string): Menu {
  const menu = new Menu({ commands: app.commands });
  menu.id = 'jp-kmagic-starters';
  menu.title.label = title;
  for (const starter of STARTERS) {
    menu.addItem({ command: commandId(starter) });
  }
  return menu;
}

/** Register the commands and put them in the palette and menus. */
export function addStarterCommands(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  palette: ICommandPalette | null,
  mainMenu: IMainMenu | null
): void {
  const hasNotebook = (): boolean => tracker.currentWidget !== null;
  for (const starter of STARTERS) {
    app.commands.addCommand(commandId(starter), {
      label: args =>
        args.isPalette ? `Insert kmodel starter: ${starter.label}` : starter.label,
      caption: starter.caption,
      isEnabled: hasNotebook,
      execute: () => insertStarter(tracker, starter.source)
    });
    palette?.addItem({
      command: commandId(starter),
      category: PALETTE_CATEGORY,
      args: { isPalette: true }
    });
  }
  if (mainMenu) {
    const top = new Menu({ commands: app.commands });
    top.id = 'jp-mainmenu-kmagic';
    top.title.label = 'kmagic';
    top.addItem({ type: 'submenu', submenu: starterMenu(app, 'Insert kmodel starter') });
    mainMenu.addMenu(top, true, { rank: 900 });
  }
  app.contextMenu.addItem({
    type: 'submenu',
    submenu: starterMenu(app, 'Insert kmodel starter'),
    selector: '.jp-Notebook .jp-Cell',
    rank: 30
  });
}
