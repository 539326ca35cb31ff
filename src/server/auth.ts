/**
 * API-key checks. Keys are compared as SHA-256 digests with crypto.timingSafeEqual (equal-length
 * inputs, so neither the key nor its length leaks through timing), and every configured key is
 * compared, so the time does not reveal which one matched either.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export class ApiKeys {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  /** True when no keys are configured: every request is let in. */
  get open(): boolean {
    return this.digests.length === 0;
  }

  /** Whether `candidate` is one of the configured keys. */
  accepts(candidate: string | undefined): boolean {
    if (candidate === undefined || candidate === '') return false;
    const candidateDigest = digest(candidate);
    let matched = false;
    for (const keyDigest of this.digests) {
      if (timingSafeEqual(candidateDigest, keyDigest)) matched = true;
    }
    return matched;
  }
}

/** The token of an `Authorization: Bearer TOKEN` header, if there is one. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const header = headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1];
}
