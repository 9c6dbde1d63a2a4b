// The training options that tune the augmentation, as the loader's AugmentOptions: one mapping for the trainer's
// loader and the run's recorded metadata.
import type { AugmentOptions } from '../data/augment.js';

export interface AugmentSettings {
  rotation: number;
  zoom: number;
  shift: number;
  randomErasing: number;
  lowRes: number;
  blur: number;
  jpeg: number;
}

export function augmentOf(o: AugmentSettings): AugmentOptions {
  return {
    rotation: o.rotation,
    zoom: o.zoom,
    shift: o.shift,
    erase: o.randomErasing,
    lowRes: o.lowRes,
    blur: o.blur,
    jpeg: o.jpeg,
  };
}
