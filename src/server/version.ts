/**
 * The server's version as protocols report it (KServe v2 server metadata, CodeProject.AI's update
 * check). Kept equal to package.json's version by test/server/protocols.test.ts.
 */
export const SERVER_VERSION = '0.1.0';

/** `major.minor.patch` as numbers. */
export function versionParts(version: string): { major: number; minor: number; patch: number } {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map((part) => Number.parseInt(part, 10));
  return { major, minor, patch };
}
