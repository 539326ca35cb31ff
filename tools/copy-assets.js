#!/usr/bin/env node
// Copies the non-TypeScript files the build needs (the demo page) from src/ to dist/.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const assets = [['src/server/public', 'dist/server/public']];
for (const [from, to] of assets) {
  fs.rmSync(path.join(root, to), { recursive: true, force: true });
  fs.cpSync(path.join(root, from), path.join(root, to), { recursive: true });
}
