/**
 * Parity with torchvision on the shipped default model (models/shapes-cpwc-r50-fpn): its
 * reference.json holds torchvision's own outputs for the trained weights on test-split images
 * and photographs (trained weights give well-separated scores).
 */
import { DEFAULT_MODEL_DIR } from '../../src/detection';
import { describeParity } from './describe-parity';

describeParity(DEFAULT_MODEL_DIR);
