#!/usr/bin/env node
// Decodes an image exactly as the TypeScript pipeline does (dist/detection/image.js, built from
// src/detection/image.ts) so the Python export's reference fixtures see the same RGB pixels.
//
//   node tools/node/decode-image.mjs IMAGE OUT.rgb
//
// Writes the raw 8-bit RGB pixels (row-major HWC) to OUT.rgb and prints {"width", "height", "channels"}
// as JSON on stdout. Needs `npx tsc -p tsconfig.build.json` (npm run build) to have produced dist/.
import { createRequire } from 'node:module';
import { readFile, writeFile } from 'node:fs/promises';

const require = createRequire(import.meta.url);

async function main(argv) {
  if (argv.length !== 2 || argv[0] === '--help' || argv[0] === '-h') {
    process.stderr.write('usage: node tools/node/decode-image.mjs IMAGE OUT.rgb\n');
    return argv[0] === '--help' || argv[0] === '-h' ? 0 : 2;
  }
  const [imagePath, outPath] = argv;
  let decodeImage;
  try {
    ({ decodeImage } = require('../../dist/detection/image.js'));
  } catch (cause) {
    process.stderr.write(`cannot load dist/detection/image.js (run: npx tsc -p tsconfig.build.json): ${cause.message}\n`);
    return 1;
  }
  const image = await decodeImage(await readFile(imagePath));
  await writeFile(outPath, image.data);
  process.stdout.write(`${JSON.stringify({ width: image.width, height: image.height, channels: 3 })}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`decode-image: ${error.code ? `${error.code}: ` : ''}${error.message}\n`);
    process.exitCode = 1;
  },
);
