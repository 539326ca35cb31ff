/** Parity with torchvision on the tiny C4 fixture model (one feature map, layer4 box head). */
import * as path from 'node:path';
import { describeParity } from './describe-parity';

describeParity(path.join(__dirname, '..', 'fixtures', 'models', 'tiny-c4'));
