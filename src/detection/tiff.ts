/**
 * A structural check of a TIFF before it is handed to the decoder, which does neither of these
 * itself: libvips' `failOn: 'truncated'` does not notice strips that end past the end of the file
 * (libtiff fills them with zeros), and reading the metadata walks every page (IFD) of the file.
 * Only classic TIFF (magic 42) is read; the first page is the one that is decoded.
 */
import { DetectError } from './errors';

/** Pages (IFDs) a TIFF may have; the server decodes only the first. */
export const MAX_TIFF_PAGES = 256;

const TAG_IMAGE_WIDTH = 256;
const TAG_IMAGE_LENGTH = 257;
const TAG_BITS_PER_SAMPLE = 258;
const TAG_COMPRESSION = 259;
const TAG_STRIP_OFFSETS = 273;
const TAG_SAMPLES_PER_PIXEL = 277;
const TAG_STRIP_BYTE_COUNTS = 279;
const TAG_PLANAR_CONFIG = 284;
const TAG_TILE_OFFSETS = 324;
const TAG_TILE_BYTE_COUNTS = 325;

const TYPE_SIZES: Readonly<Record<number, number>> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8 };

function truncated(detail: string): DetectError {
  return new DetectError('IMAGE_DECODE_FAILED', `the tiff image is truncated or corrupt: ${detail}`);
}

class Reader {
  private readonly view: DataView;
  readonly little: boolean;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.little = bytes[0] === 0x49;
  }

  private need(offset: number, size: number, what: string): void {
    if (offset < 0 || offset + size > this.bytes.length)
      throw truncated(`${what} at byte ${offset} is past the end of the file (${this.bytes.length} bytes)`);
  }

  u16(offset: number, what: string): number {
    this.need(offset, 2, what);
    return this.view.getUint16(offset, this.little);
  }

  u32(offset: number, what: string): number {
    this.need(offset, 4, what);
    return this.view.getUint32(offset, this.little);
  }

  /** The integer values of one IFD entry (SHORT or LONG), inline or at its offset. */
  values(entry: number, what: string): number[] {
    const type = this.u16(entry + 2, what);
    const count = this.u32(entry + 4, what);
    const size = TYPE_SIZES[type];
    if (size === undefined) throw truncated(`${what} has an unknown field type ${type}`);
    if (type !== 3 && type !== 4) throw truncated(`${what} must be SHORT or LONG, got field type ${type}`);
    const start = count * size <= 4 ? entry + 8 : this.u32(entry + 8, what);
    this.need(start, count * size, what);
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(type === 3 ? this.u16(start + 2 * i, what) : this.u32(start + 4 * i, what));
    return out;
  }
}

/** The entries of the IFD at `offset` (tag → entry offset) and the offset of the next IFD. */
function readIfd(reader: Reader, offset: number, page: number): { entries: Map<number, number>; next: number } {
  const count = reader.u16(offset, `page ${page}'s directory`);
  const entries = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const entry = offset + 2 + 12 * i;
    entries.set(reader.u16(entry, `page ${page}'s directory entry ${i}`), entry);
  }
  return { entries, next: reader.u32(offset + 2 + 12 * count, `page ${page}'s next-directory offset`) };
}

function checkFirstPage(reader: Reader, entries: Map<number, number>): void {
  const one = (tag: number, fallback: number | undefined, name: string): number => {
    const entry = entries.get(tag);
    if (entry === undefined) {
      if (fallback === undefined) throw truncated(`the first page has no ${name}`);
      return fallback;
    }
    return reader.values(entry, name)[0] ?? 0;
  };
  const tiled = entries.has(TAG_TILE_OFFSETS);
  const offsetsEntry = entries.get(tiled ? TAG_TILE_OFFSETS : TAG_STRIP_OFFSETS);
  const countsEntry = entries.get(tiled ? TAG_TILE_BYTE_COUNTS : TAG_STRIP_BYTE_COUNTS);
  const unit = tiled ? 'tile' : 'strip';
  if (offsetsEntry === undefined) throw truncated(`the first page has no ${unit} offsets`);
  if (countsEntry === undefined) throw truncated(`the first page has no ${unit} byte counts`);
  const offsets = reader.values(offsetsEntry, `${unit} offsets`);
  const counts = reader.values(countsEntry, `${unit} byte counts`);
  if (offsets.length !== counts.length) throw truncated(`${offsets.length} ${unit} offsets but ${counts.length} byte counts`);
  let stored = 0;
  for (let i = 0; i < offsets.length; i++) {
    const end = (offsets[i] ?? 0) + (counts[i] ?? 0);
    if (end > reader.bytes.length)
      throw truncated(`${unit} ${i} ends at byte ${end}, past the end of the file (${reader.bytes.length} bytes)`);
    stored += counts[i] ?? 0;
  }
  // uncompressed strips hold every pixel: fewer stored bytes than pixels need is a short image
  if (!tiled && one(TAG_COMPRESSION, 1, 'compression') === 1) {
    const width = one(TAG_IMAGE_WIDTH, undefined, 'width');
    const height = one(TAG_IMAGE_LENGTH, undefined, 'height');
    const samples = one(TAG_SAMPLES_PER_PIXEL, 1, 'samples per pixel');
    const bits = one(TAG_BITS_PER_SAMPLE, 1, 'bits per sample');
    const planes = one(TAG_PLANAR_CONFIG, 1, 'planar configuration') === 2 ? samples : 1;
    const needed = Math.ceil((width * bits * (samples / planes)) / 8) * height * planes;
    if (stored < needed) throw truncated(`its uncompressed strips hold ${stored} bytes, ${width}x${height} pixels need ${needed}`);
  }
}

/**
 * Throws DetectError for a TIFF whose first page's strips or tiles do not fit in the file
 * (IMAGE_DECODE_FAILED) or that has more than `maxPages` pages (IMAGE_TOO_LARGE), reading only
 * the directories: at most `maxPages + 1` of them.
 */
export function checkTiff(bytes: Uint8Array, maxPages = MAX_TIFF_PAGES): void {
  const reader = new Reader(bytes);
  let offset = reader.u32(4, 'the first directory offset');
  const seen = new Set<number>();
  let page = 0;
  while (offset !== 0) {
    if (seen.has(offset)) throw truncated(`page ${page + 1}'s directory loops back to an earlier one`);
    seen.add(offset);
    page += 1;
    if (page > maxPages)
      throw new DetectError(
        'IMAGE_TOO_LARGE',
        `the tiff image has more than ${maxPages} pages (only the first is used; the limit keeps the page walk bounded)`,
      );
    const ifd = readIfd(reader, offset, page);
    if (page === 1) checkFirstPage(reader, ifd.entries);
    offset = ifd.next;
  }
  if (page === 0) throw truncated('it has no pages');
}
