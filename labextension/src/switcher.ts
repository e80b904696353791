/**
 * Switches an editor to kmodel while its text starts with `%%kmodel` or
 * `%%kblock`, and back to the editor's own language (Python in a notebook)
 * as soon as it no longer does.
 *
 * JupyterLab keeps the cell's language in its own compartment, chosen from
 * the cell's MIME type. This extension adds a second compartment holding
 * kmodel at the highest precedence (CodeMirror uses the first `language`
 * facet value), reconfigured by a transaction extender when the first line
 * changes kind. The cell's MIME type is left alone, so kernels, the LSP and
 * saved notebooks still see Python.
 */
import { Compartment, EditorState, Extension, Prec, Text } from '@codemirror/state';

import { kmodel } from './language';

/** `%%kmodel` / `%%kblock` at the start of the text (after blank lines). */
const MAGIC = /^\s*%%k(?:model|block)(?![\w])/;

/** How much of the text the test needs: blank lines plus the magic word. */
const PREFIX_CHARS = 256;

/** Whether `text` is a kmodel cell. */
export function isKmodelText(text: string): boolean {
  return MAGIC.test(text);
}

function docIsKmodel(doc: Text): boolean {
  return isKmodelText(doc.sliceString(0, Math.min(doc.length, PREFIX_CHARS)));
}

/**
 * The switching extension for one editor.
 *
 * @param initialText the text the editor starts with (its model's source), so
 *   a notebook opened from disk is highlighted before anyone types.
 */
export function kmodelSwitch(initialText: string): Extension {
  const compartment = new Compartment();
  const support = Prec.highest(kmodel());
  const content = (on: boolean): Extension => (on ? support : []);
  const isOn = (state: EditorState): boolean => compartment.get(state) === support;
  return [
    compartment.of(content(isKmodelText(initialText))),
    EditorState.transactionExtender.of(tr => {
      if (!tr.docChanged) {
        return null;
      }
      const wanted = docIsKmodel(tr.newDoc);
      if (wanted === isOn(tr.startState)) {
        return null;
      }
      return { effects: compartment.reconfigure(content(wanted)) };
    })
  ];
}
