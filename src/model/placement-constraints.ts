import { InvalidSpecError } from './model-errors.js';

// Docker's placement constraints (`--constraint node.labels.zone==eu`), parsed and matched the way swarmkit's
// constraint package does: the attribute name is case-insensitive, a label key is case-sensitive, values compare
// case-insensitively, and a node without the label has it as "" (so `node.labels.zone!=eu` matches it).
// Hand-written: no maintained npm package implements swarmkit's grammar, and it is a dozen lines.

/** The two operators Docker accepts. */
export type ConstraintOperator = '==' | '!=';

/** One parsed constraint. */
export interface Constraint {
  /** What it reads of a node: its id, its name (node.hostname / node.name) or one label. */
  attribute: 'id' | 'name' | 'label';
  /** The label key, for attribute "label". */
  label?: string;
  operator: ConstraintOperator;
  value: string;
  /** The canonical text (spaces around the operator removed), as stored and shown. */
  text: string;
}

/** What a node offers to constraints. */
export interface PlacementNode {
  id: string;
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** The forms a constraint may take, for messages. */
export const CONSTRAINT_RULE = 'node.id==ID, node.hostname==NAME (or node.name==NAME), node.labels.KEY==VALUE, or the same with !=';

// The same characters as a node label key (records.ts LABEL_KEY), kept here so records.ts can import this module.
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$/;
const SHAPE = /^\s*([^=!\s]+)\s*(==|!=)\s*(.*?)\s*$/;

/** Why `text` is not a constraint meshnet understands, or undefined when it is one. */
export function constraintProblem(text: string): string | undefined {
  const parsed = tryParse(text);
  return typeof parsed === 'string' ? parsed : undefined;
}

/** Parses one constraint; InvalidSpecError naming the accepted forms when it is not one. */
export function parseConstraint(text: string): Constraint {
  const parsed = tryParse(text);
  if (typeof parsed === 'string') throw new InvalidSpecError(parsed);
  return parsed;
}

function tryParse(text: string): Constraint | string {
  const bad = (why: string): string => `invalid constraint ${JSON.stringify(text)}: ${why}; use ${CONSTRAINT_RULE}`;
  const m = SHAPE.exec(text);
  if (!m) return bad('it needs == or != between an attribute and a value');
  const [, key, operator, value] = m as unknown as [string, string, ConstraintOperator, string];
  if (value === '') return bad('the value is empty');
  if (value.includes('\0')) return bad('the value contains NUL');
  const canonical = `${key}${operator}${value}`;
  const lower = key.toLowerCase();
  if (lower === 'node.id') return { attribute: 'id', operator, value, text: canonical };
  if (lower === 'node.hostname' || lower === 'node.name') return { attribute: 'name', operator, value, text: canonical };
  if (lower.startsWith('node.labels.')) {
    const label = key.slice('node.labels.'.length);
    if (!LABEL_KEY.test(label)) return bad(`label key ${JSON.stringify(label)} is not letters, digits, ".", "-", "_" and "/"`);
    return { attribute: 'label', label, operator, value, text: canonical };
  }
  return bad(`unknown attribute ${JSON.stringify(key)}`);
}

/** True when `node` satisfies every constraint (an empty list matches every node). */
export function nodeMatches(node: PlacementNode, constraints: readonly Constraint[]): boolean {
  return constraints.every((c) => {
    const actual = c.attribute === 'id' ? node.id : c.attribute === 'name' ? node.name : (node.labels[c.label!] ?? '');
    const equal = actual.toLowerCase() === c.value.toLowerCase();
    return c.operator === '==' ? equal : !equal;
  });
}

/** The canonical text of a constraint, so `a == b` and `a==b` are the same entry for --constraint-rm. */
export function canonicalConstraint(text: string): string {
  return parseConstraint(text).text;
}
