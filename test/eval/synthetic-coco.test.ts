/** The seeded synthetic COCO generator the differential test and the CLI tests run on. */
import { syntheticCoco } from './synthetic-coco';

describe('syntheticCoco', () => {
  it('gives the same dataset for the same seed and a different one for another seed', () => {
    const a = syntheticCoco({ seed: 5, images: 12, categories: 4 });
    expect(JSON.stringify(syntheticCoco({ seed: 5, images: 12, categories: 4 }))).toBe(JSON.stringify(a));
    expect(JSON.stringify(syntheticCoco({ seed: 6, images: 12, categories: 4 }).dt)).not.toBe(JSON.stringify(a.dt));
  });

  it('writes valid COCO: unique positive ids, detections only on listed images, boxes with w, h >= 0', () => {
    const { gt, dt, counts } = syntheticCoco({ seed: 11, images: 40, categories: 9 });
    const imageIds = new Set(gt.images.map((i) => i.id));
    expect(imageIds.size).toBe(40);
    expect(gt.categories).toHaveLength(9);
    const annIds = gt.annotations.map((a) => a.id);
    expect(new Set(annIds).size).toBe(annIds.length);
    expect(Math.min(...annIds)).toBeGreaterThanOrEqual(1);
    for (const a of gt.annotations) expect(imageIds.has(a.image_id)).toBe(true);
    for (const d of dt) {
      expect(imageIds.has(d.image_id)).toBe(true);
      expect(d.bbox[2] >= 0 && d.bbox[3] >= 0 && d.score > 0 && d.score <= 1).toBe(true);
    }
    expect([counts.gt_annotations, counts.detections]).toEqual([gt.annotations.length, dt.length]);
  });

  it('puts in the edge cases its counts report', () => {
    const { gt, dt, counts } = syntheticCoco({ seed: 3, images: 30, categories: 6 });
    const categoryIds = new Set(gt.categories.map((c) => c.id));
    expect(dt.filter((d) => !categoryIds.has(d.category_id))).toHaveLength(counts.detections_unknown_category);
    expect(gt.annotations.filter((a) => a.iscrowd === 1)).toHaveLength(counts.gt_crowd);
    expect(gt.annotations.filter((a) => a.area === 1024)).toHaveLength(counts.gt_area_1024);
    const withGt = new Set(gt.annotations.map((a) => a.image_id));
    const withDt = new Set(dt.map((d) => d.image_id));
    const empty = gt.images.filter((i) => !withGt.has(i.id) && !withDt.has(i.id));
    expect(empty.length).toBeGreaterThanOrEqual(counts.images_empty);
    const perCell = new Map<string, number>();
    for (const d of dt) perCell.set(`${d.image_id}/${d.category_id}`, (perCell.get(`${d.image_id}/${d.category_id}`) ?? 0) + 1);
    expect(Math.max(...perCell.values())).toBeGreaterThan(100);
  });

  it('ties scores across the maxDets=100 cut of the crowded (image, category)', () => {
    for (const seed of [1, 2, 3, 4]) {
      const { dt } = syntheticCoco({ seed, images: 5, categories: 2 });
      const perCell = new Map<string, number[]>();
      for (const d of dt) {
        const key = `${d.image_id}/${d.category_id}`;
        perCell.set(key, [...(perCell.get(key) ?? []), d.score]);
      }
      const crowded = [...perCell.values()].find((scores) => scores.length > 100)!.sort((x, y) => y - x);
      expect([seed, crowded[98] === crowded[99] && crowded[99] === crowded[100]]).toEqual([seed, true]);
    }
  });

  it.each([
    [{ seed: 1, images: 3, categories: 4 }, 'images must be an integer >= 4, got 3'],
    [{ seed: 1, images: 10, categories: 1 }, 'categories must be an integer >= 2, got 1'],
    [{ seed: 1, images: 10, categories: 4, maxObjectsPerImage: 0 }, 'maxObjectsPerImage must be an integer >= 1, got 0'],
  ])('refuses %j', (options, message) => {
    expect(() => syntheticCoco(options)).toThrow(message);
  });
});
