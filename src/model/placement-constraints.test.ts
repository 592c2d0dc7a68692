import { describe, expect, it } from 'vitest';
import { canonicalConstraint, constraintProblem, nodeMatches, parseConstraint } from './placement-constraints.js';
import { InvalidSpecError } from './model-errors.js';

const node = { id: 'host-b', name: 'host-b.example', labels: { zone: 'eu', 'com.example/rack': 'R1' } };
const matches = (...texts: string[]) => nodeMatches(node, texts.map(parseConstraint));

describe('parseConstraint', () => {
  it('reads every attribute Docker has, with both operators', () => {
    expect(parseConstraint('node.id==host-b')).toEqual({ attribute: 'id', operator: '==', value: 'host-b', text: 'node.id==host-b' });
    expect(parseConstraint('node.hostname!=x')).toMatchObject({ attribute: 'name', operator: '!=', value: 'x' });
    expect(parseConstraint('node.name==x')).toMatchObject({ attribute: 'name', operator: '==', value: 'x' });
    expect(parseConstraint('node.labels.com.example/rack==R1')).toMatchObject({ attribute: 'label', label: 'com.example/rack', value: 'R1' });
  });

  it('drops spaces around the operator and takes the attribute name in any case, as swarmkit does', () => {
    expect(parseConstraint('  node.labels.zone  ==  eu ').text).toBe('node.labels.zone==eu');
    expect(parseConstraint('Node.Hostname==a')).toMatchObject({ attribute: 'name' });
    expect(canonicalConstraint('node.id != a')).toBe('node.id!=a');
  });

  it('refuses what is not a constraint, naming the accepted forms', () => {
    for (const bad of ['node.id', 'node.id=a', 'node.id==', 'engine.labels.x==1', 'node.role==manager', 'node.labels.-x==1', 'node.labels.==1', '==a', 'node.id==a\0b']) {
      expect(constraintProblem(bad), bad).toMatch(/^invalid constraint .*use node\.id==ID, node\.hostname==NAME/);
      expect(() => parseConstraint(bad)).toThrow(InvalidSpecError);
    }
    expect(constraintProblem('node.labels.zone==eu')).toBeUndefined();
  });
});

describe('nodeMatches', () => {
  it('matches id, name and labels with == and !=', () => {
    expect(matches('node.id==host-b')).toBe(true);
    expect(matches('node.id==host-a')).toBe(false);
    expect(matches('node.id!=host-a')).toBe(true);
    expect(matches('node.hostname==host-b.example')).toBe(true);
    expect(matches('node.name!=host-b.example')).toBe(false);
    expect(matches('node.labels.zone==eu')).toBe(true);
    expect(matches('node.labels.zone!=eu')).toBe(false);
  });

  it('compares values without case, label keys with case', () => {
    expect(matches('node.labels.zone==EU')).toBe(true);
    expect(matches('node.labels.Zone==eu')).toBe(false);
  });

  it('takes a missing label as empty: == never matches it, != always does', () => {
    expect(matches('node.labels.gpu==1')).toBe(false);
    expect(matches('node.labels.gpu!=1')).toBe(true);
  });

  it('needs every constraint; none matches every node', () => {
    expect(matches('node.labels.zone==eu', 'node.id==host-b')).toBe(true);
    expect(matches('node.labels.zone==eu', 'node.id==host-a')).toBe(false);
    expect(matches()).toBe(true);
  });
});
