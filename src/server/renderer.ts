/**
 * The server's render step (POST /v1/detect?render=1): the library's renderDetections on the
 * image decoded under the server's own pixel limit, so a large image that passed detection is
 * not refused by the renderer's default limit.
 */
import { decodeImage } from '../detection/image';
import { renderDetections } from '../detection/render';
import type { RenderImage } from './app';

export function createRenderer(maxPixels: number): RenderImage {
  return async (image, detections, format) => renderDetections(await decodeImage(image, { maxPixels }), detections, { format });
}
