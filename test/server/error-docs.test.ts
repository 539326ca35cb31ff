/**
 * docs/server.md's error table is the contract clients read: every code of ERRORS (the server's
 * and the detection library's) is in it with the status ERRORS gives it, and it lists no code that
 * does not exist (fastify's test/errors model).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ERRORS, type ErrorCode } from '../../src/server/errors';

interface DocumentedCode {
  code: string;
  status: number;
  line: number;
}

/**
 * The rows of the table under `## heading`: `| \`CODE\`, \`CODE\` | status | when |`. A row that
 * names no code in its first cell, or whose status is not a number, is reported as itself so the
 * test names it.
 */
function documentedCodes(markdown: string, heading: string): DocumentedCode[] {
  const lines = markdown.split('\n');
  const start = lines.indexOf(`## ${heading}`);
  if (start < 0) throw new Error(`no '## ${heading}' section`);
  const rows: DocumentedCode[] = [];
  for (const [i, text] of lines.entries()) {
    if (i <= start) continue;
    if (text.startsWith('## ')) break;
    // a table row splits into ['', code, status, when, '']; the header and the rule are skipped
    const [, first = '', status = '', when] = text.split('|').map((cell) => cell.trim());
    if (when === undefined || first === 'code' || /^-+$/.test(first)) continue;
    const codes = [...first.matchAll(/`([A-Z][A-Z_]*)`/g)].map((m) => m[1] ?? '');
    if (codes.length === 0) throw new Error(`line ${i + 1}: no code in '${first}'`);
    for (const code of codes) rows.push({ code, status: Number(status), line: i + 1 });
  }
  return rows;
}

const serverDoc = readFileSync(path.join(__dirname, '..', '..', 'docs', 'server.md'), 'utf8');
const documented = documentedCodes(serverDoc, 'Errors');

describe('docs/server.md error table', () => {
  it('documents every code of ERRORS', () => {
    const missing = Object.keys(ERRORS).filter((code) => !documented.some((row) => row.code === code));
    expect(missing).toEqual([]);
  });

  it('documents no code that ERRORS lacks, and each code once', () => {
    const unknown = documented.filter((row) => !Object.hasOwn(ERRORS, row.code));
    expect(unknown).toEqual([]);
    const twice = documented.filter((row, i) => documented.findIndex((other) => other.code === row.code) !== i);
    expect(twice).toEqual([]);
  });

  it('gives each code the status of ERRORS', () => {
    const wrong = documented
      .filter((row) => Object.hasOwn(ERRORS, row.code) && ERRORS[row.code as ErrorCode].status !== row.status)
      .map((row) => ({ ...row, expected: ERRORS[row.code as ErrorCode].status }));
    expect(wrong).toEqual([]);
  });
});
