/**
 * The kmodel language for CodeMirror 6: a StreamLanguage tokenizer whose word
 * lists come from kmagic.registry (src/words.json, generated at build time).
 *
 * Every token kind carries two tags: a standard highlight tag, so JupyterLab's
 * own highlight style colours it from the theme's --jp-mirror-editor-* variables
 * (light and dark alike), and a kmodel tag that `kmodelClasses` turns into a
 * `cm-kmodel-<kind>` class (stable names for CSS and tests).
 */
import {
  LanguageSupport,
  StreamLanguage,
  StreamParser,
  StringStream,
  syntaxHighlighting
} from '@codemirror/language';
import { Tag, tagHighlighter, tags as t } from '@lezer/highlight';

import words from './words.json';

/** The token kinds of kmodel; each becomes a `cm-kmodel-<kind>` class. */
export const TOKEN_KINDS = [
  'magic',
  'option',
  'comment',
  'keyword',
  'layer',
  'activation',
  'number',
  'reference',
  'interpolation',
  'string',
  'name',
  'argument',
  'training',
  'constant',
  'pipe',
  'punctuation',
  'word'
] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/** The standard tag per kind: decides the colour under any JupyterLab theme. */
const STANDARD_TAGS: Record<TokenKind, Tag> = {
  magic: t.meta,
  option: t.attributeName,
  comment: t.comment,
  keyword: t.keyword,
  layer: t.definition(t.name),
  activation: t.atom,
  number: t.number,
  reference: t.special(t.variableName),
  interpolation: t.special(t.string),
  string: t.string,
  name: t.propertyName,
  argument: t.variableName,
  training: t.standard(t.variableName),
  constant: t.bool,
  pipe: t.operator,
  punctuation: t.punctuation,
  word: t.variableName
};

/** One kmodel tag per kind, for the `cm-kmodel-<kind>` classes. */
const KMODEL_TAGS = Object.fromEntries(
  TOKEN_KINDS.map(kind => [kind, Tag.define()])
) as Record<TokenKind, Tag>;

/** StreamLanguage token names (`kmodel_<kind>`) -> [standard tag, kmodel tag]. */
const TOKEN_TABLE = Object.fromEntries(
  TOKEN_KINDS.map(kind => [
    `kmodel_${kind}`,
    [STANDARD_TAGS[kind], KMODEL_TAGS[kind]]
  ])
);

/** Adds `cm-kmodel-<kind>` classes to kmodel tokens (colours stay the theme's). */
export const kmodelClasses = tagHighlighter(
  TOKEN_KINDS.map(kind => ({ tag: KMODEL_TAGS[kind], class: `cm-kmodel-${kind}` }))
);

const lower = (list: string[]): Set<string> =>
  new Set(list.map(word => word.toLowerCase()));

const LAYERS = lower(words.layers);
const ACTIVATIONS = lower(words.activations);
const OPTION_WORDS = lower([...words.padding, ...words.flags]);
const KEYWORDS = lower(words.keywords);
const MERGE_BLOCKS = lower(words.merge_blocks);
const CONSTANTS = lower(words.constants);
const TRAINING = lower([
  ...words.optimizers,
  ...words.losses,
  ...words.metrics,
  ...words.callbacks,
  ...words.calls
]);

/** Tokenizer state; `blocks` are the names of blocks defined earlier in the text. */
export interface IKmodelState {
  /** The next word starts a statement (line start, after `|` or a block's `:`). */
  statementStart: boolean;
  /** What the next word defines: a name (`as NAME`, the model), a block, or nothing. */
  defining: 'nothing' | 'name' | 'block';
  /** The tokenizer is on the `%%kmodel` / `%%kblock` line. */
  magicLine: boolean;
  /** A token other than space has been read: the magic line is over or absent. */
  started: boolean;
  /** Names of blocks defined so far (`block down(f):`, `%%kblock down(f)`), lower case. */
  blocks: Set<string>;
  /** Indentation of the current (last non-blank) line. */
  indent: number;
  /** The current line opens a block: it ends with `:` (before any comment). */
  opens: boolean;
}

const NUMBER = /^(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?(?![\w])/i;
const SHAPE = /^(?:\d+|\?)(?:x(?:\d+|\?))+(?![\w])/i;
const WORD = /^[A-Za-z_][A-Za-z0-9_]*/;

function wordKind(word: string, stream: StringStream, state: IKmodelState): TokenKind {
  const key = word.toLowerCase();
  const atStatement = state.statementStart;
  state.statementStart = false;
  if (state.defining !== 'nothing') {
    if (state.defining === 'block') {
      state.blocks.add(key);
    }
    state.defining = 'nothing';
    return 'name';
  }
  if (stream.match(/^\s*=(?!=)/, false)) {
    return 'argument';
  }
  if (KEYWORDS.has(key)) {
    if (key === 'as') {
      state.defining = 'name';
    } else if (key === 'block') {
      state.defining = 'block';
    }
    return 'keyword';
  }
  if (MERGE_BLOCKS.has(key) && atStatement && stream.match(/^\s*:/, false)) {
    return 'keyword';
  }
  const isLayer = LAYERS.has(key) || state.blocks.has(key);
  if (isLayer && atStatement) {
    return 'layer';
  }
  if (ACTIVATIONS.has(key) || OPTION_WORDS.has(key)) {
    return 'activation';
  }
  if (isLayer) {
    return 'layer';
  }
  if (CONSTANTS.has(key)) {
    return 'constant';
  }
  if (TRAINING.has(key)) {
    return 'training';
  }
  return 'word';
}

/** A {python expression}: brackets nest and quoted strings are skipped, as the kernel reads it. */
function readInterpolation(stream: StringStream): void {
  let depth = 0;
  while (!stream.eol()) {
    const ch = stream.next();
    if (ch === '"' || ch === "'") {
      readString(stream, ch);
    } else if (ch === '{') {
      depth++;
    } else if (ch === '}' && --depth === 0) {
      return;
    }
  }
}

function readString(stream: StringStream, quote: string): void {
  let escaped = false;
  let next: string | void;
  while ((next = stream.next()) !== undefined) {
    if (next === quote && !escaped) {
      return;
    }
    escaped = !escaped && next === '\\';
  }
}

function token(stream: StringStream, state: IKmodelState): TokenKind | null {
  if (stream.sol()) {
    state.statementStart = true;
    state.magicLine = false;
    state.defining = 'nothing';
    state.indent = stream.indentation();
    state.opens = false;
  }
  if (stream.eatSpace()) {
    return null;
  }
  const kind = readToken(stream, state);
  if (kind !== 'comment') {
    state.opens = kind === 'punctuation' && stream.current() === ':';
  }
  return kind;
}

function readToken(stream: StringStream, state: IKmodelState): TokenKind {
  const first = !state.started;
  state.started = true;
  if (first) {
    const magic = stream.match(/^%%k(model|block)(?![\w])/) as RegExpMatchArray | null;
    if (magic) {
      state.magicLine = true;
      state.statementStart = false;
      state.defining = magic[1] === 'block' ? 'block' : 'name';
      return 'magic';
    }
  }
  if (state.magicLine && stream.match(/^--?[A-Za-z][\w-]*/)) {
    return 'option';
  }
  const ch = stream.peek() as string;
  if (ch === '#') {
    stream.skipToEnd();
    return 'comment';
  }
  if (ch === '{') {
    readInterpolation(stream);
    state.statementStart = false;
    return 'interpolation';
  }
  if (ch === '@') {
    stream.next();
    stream.match(WORD);
    return 'reference';
  }
  if (ch === '"' || ch === "'") {
    stream.next();
    readString(stream, ch);
    return 'string';
  }
  if (stream.match(SHAPE) || stream.match(NUMBER) || stream.match(/^\?/)) {
    return 'number';
  }
  const word = stream.match(WORD) as RegExpMatchArray | null;
  if (word) {
    return wordKind(word[0], stream, state);
  }
  stream.next();
  if (ch === '|' || ch === ':') {
    state.statementStart = true;
    return ch === '|' ? 'pipe' : 'punctuation';
  }
  return 'punctuation';
}

/** The kmodel StreamParser (exported for tests and other front ends). */
export const kmodelParser: StreamParser<IKmodelState> = {
  name: 'kmodel',
  startState: () => ({
    statementStart: true,
    defining: 'nothing',
    magicLine: false,
    blocks: new Set<string>(),
    started: false,
    indent: 0,
    opens: false
  }),
  copyState: state => ({ ...state, blocks: new Set(state.blocks) }),
  token: (stream, state) => {
    const kind = token(stream, state);
    return kind === null ? null : `kmodel_${kind}`;
  },
  // A new line keeps the previous line's indentation, one unit deeper after `:`.
  indent: (state, _textAfter, context) =>
    state.opens ? state.indent + context.unit : state.indent,
  languageData: { commentTokens: { line: '#' } },
  tokenTable: TOKEN_TABLE
};

export const kmodelLanguage = StreamLanguage.define<IKmodelState>(kmodelParser);

/** kmodel with its `cm-kmodel-*` classes; colours come from the active theme. */
export function kmodel(): LanguageSupport {
  return new LanguageSupport(kmodelLanguage, [syntaxHighlighting(kmodelClasses)]);
}
