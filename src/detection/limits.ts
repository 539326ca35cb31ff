/**
 * Limits shared by the library, the server and the CLI, so that each one accepts the same requests.
 */

/**
 * Largest `maxDetections` accepted anywhere (library option, server parameter and setting, CLI flag).
 * 100,000: above what a demanding user can get from a model with torchvision's test-time defaults
 * (1,000 proposals per image x 90 classes = 90,000 scored boxes for a COCO model), so "give me
 * everything, e.g. for evaluation at a low threshold" is never refused; still a bound, so a typo
 * (1e9) is an error instead of a silent "no limit". A JSON response of 100,000 detections is about
 * 10 MB.
 */
export const MAX_DETECTIONS_LIMIT = 100_000;
