/**
 * `cpwc-detect <command> …` — each command lives in its own module under src/cli/
 * and exports `run(argv: string[]): Promise<number>` (the process exit code).
 */
import { reportUsageError } from './usage';

const COMMANDS: Record<string, { module: string; summary: string }> = {
  detect: { module: './detect', summary: 'detect objects in images (prints detections, can render them)' },
  eval: { module: './eval', summary: 'COCO bbox mAP: score a results file, or run a model over a dataset' },
  serve: { module: './serve', summary: 'serve a model directory over HTTP' },
};

interface CommandModule {
  run(argv: string[]): Promise<number>;
}

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return (
    `Usage: cpwc-detect <command> [options]\n\nCommands:\n${lines.join('\n')}\n\n` +
    "Run 'cpwc-detect <command> --help' for a command's options.\n"
  );
}

async function main(argv: string[]): Promise<number> {
  // onnxruntime-node 1.30 starts a telemetry client on Linux unless told not to; a detection
  // server has no business phoning home. Set before the command module loads onnxruntime.
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  const [name, ...rest] = argv;
  if (name === undefined) return reportUsageError('', `no command given (one of ${Object.keys(COMMANDS).join(', ')})`);
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) return reportUsageError('', `unknown command '${name}' (one of ${Object.keys(COMMANDS).join(', ')})`);
  const mod = (await import(command.module)) as CommandModule;
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`cpwc-detect: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
