// The lab lives in src/lab so that the demo can use it too; tests import it from here.
export * from '../../src/lab/lab.js';
