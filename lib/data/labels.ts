// The project's one label space, and every dataset's mapping into it.
// Canonical order (the reference code's tester): neutral, happy, sad,
// surprise, fear, disgust, anger; the 8-class mode appends contempt.
import { parseDigits } from '../validate.js';

export const EXPRESSIONS = ['neutral', 'happy', 'sad', 'surprise', 'fear', 'disgust', 'anger', 'contempt'] as const;
export type Expression = (typeof EXPRESSIONS)[number];
export type ClassCount = 7 | 8;

/** Class names in canonical order for the 7- or 8-class label space. */
export function labelNames(classes: ClassCount = 7): Expression[] {
  return EXPRESSIONS.slice(0, classes);
}

const index = (name: Expression): number => EXPRESSIONS.indexOf(name);

/** FER-2013 emotion codes 0..6: angry, disgust, fear, happy, sad, surprise, neutral. */
export const FER2013_CODES: readonly Expression[] = ['anger', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];

/** RAF-DB basic codes 1..7: surprise, fear, disgust, happiness, sadness, anger, neutral (index 0 unused). */
export const RAFDB_CODES: readonly (Expression | null)[] = [
  null,
  'surprise',
  'fear',
  'disgust',
  'happy',
  'sad',
  'anger',
  'neutral',
];

/**
 * AffectNet codes 0..10: neutral, happy, sad, surprise, fear, disgust, anger,
 * contempt, none, uncertain, no-face. 8..10 are not expressions.
 */
export const AFFECTNET_CODES: readonly (Expression | null)[] = [
  'neutral',
  'happy',
  'sad',
  'surprise',
  'fear',
  'disgust',
  'anger',
  'contempt',
  null,
  null,
  null,
];

/** FER+ vote columns, in the order of fer2013new.csv. */
export const FERPLUS_COLUMNS = [
  'neutral',
  'happiness',
  'surprise',
  'sadness',
  'anger',
  'disgust',
  'fear',
  'contempt',
  'unknown',
  'NF',
] as const;
export const FERPLUS_EXPRESSIONS: readonly (Expression | null)[] = [
  'neutral',
  'happy',
  'surprise',
  'sad',
  'anger',
  'disgust',
  'fear',
  'contempt',
  null,
  null,
];

/** Folder names (case-insensitive) accepted for each class. */
export const FOLDER_ALIASES: Readonly<Record<Expression, readonly string[]>> = {
  neutral: ['neutral'],
  happy: ['happy', 'happiness'],
  sad: ['sad', 'sadness'],
  surprise: ['surprise', 'surprised'],
  fear: ['fear', 'fearful'],
  disgust: ['disgust', 'disgusted'],
  anger: ['anger', 'angry'],
  contempt: ['contempt'],
};

/** The outcome of mapping a dataset's code: a class index, or why the sample is left out. */
export type Mapped = { label: number } | { excluded: string } | { unknown: string };

function inSpace(name: Expression | null | undefined, classes: ClassCount, what: string): Mapped {
  if (name === undefined) return { unknown: what };
  if (name === null) return { excluded: what };
  const i = index(name);
  return i < classes ? { label: i } : { excluded: `${name} (not in the ${classes}-class label space)` };
}

/** A class code: a number, or text in digits (07 is 7; 3.0, 0x1 and 1e0 are not codes). */
function code(raw: string | number): number | null {
  const v = typeof raw === 'number' ? raw : parseDigits(raw);
  return Number.isInteger(v) ? v : null;
}

export function fer2013Label(raw: string | number, classes: ClassCount = 7): Mapped {
  const c = code(raw);
  return inSpace(c === null ? undefined : FER2013_CODES[c], classes, `FER-2013 code ${raw}`);
}

export function rafdbLabel(raw: string | number, classes: ClassCount = 7): Mapped {
  const c = code(raw);
  const name = c === null || c < 1 ? undefined : RAFDB_CODES[c];
  return inSpace(name, classes, `RAF-DB code ${raw}`);
}

export function affectnetLabel(raw: string | number, classes: ClassCount = 7): Mapped {
  const c = code(raw);
  const name = c === null || c < 0 ? undefined : AFFECTNET_CODES[c];
  const what =
    c !== null && c >= 8 && c <= 10
      ? `AffectNet code ${c} (${['none', 'uncertain', 'no-face'][c - 8]})`
      : `AffectNet code ${raw}`;
  return inSpace(name, classes, what);
}

/** A class folder's name; undefined when it is not an expression name. */
export function folderLabel(name: string, classes: ClassCount = 7): Mapped | undefined {
  const lower = name.toLowerCase();
  for (const expression of EXPRESSIONS) {
    if (FOLDER_ALIASES[expression].includes(lower)) return inSpace(expression, classes, `folder ${name}`);
  }
  return undefined;
}

/** A label given as a name (any accepted spelling) or as a canonical index. */
export function nameOrIndexLabel(raw: string, classes: ClassCount = 7): Mapped {
  const trimmed = raw.trim();
  const c = code(trimmed);
  if (c !== null) return c >= 0 && c < classes ? { label: c } : { unknown: `label ${trimmed}` };
  return folderLabel(trimmed, classes) ?? { unknown: `label ${trimmed}` };
}
