/**
 * Checks of packed array layouts, made once where a function takes its arrays: a packed `[rows, width]`
 * array holds row r at `[r * width, (r + 1) * width)`. Once the length is checked, every index of a loop
 * over `r < rows` and `c < width` is in range, which the loops state with `!` (noUncheckedIndexedAccess).
 */
import { DetectError } from './errors';

/** Throws unless `values` is `[rows, width]` packed (length exactly `rows * width`); `name` is the argument's name. */
export function checkPacked(name: string, values: ArrayLike<number>, rows: number, width: number): void {
  if (values.length !== rows * width) {
    throw new DetectError('INVALID_OPTION', `${name} must hold ${rows} x ${width} = ${rows * width} values, got ${values.length}`);
  }
}
