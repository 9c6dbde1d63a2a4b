// One PATH look-up for the install and prebuild scripts (both run before
// anything else of the package is built, so plain Node.js only).
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The first of `names` found as an executable on PATH (or the absolute path given), else undefined. */
export function findProgram(names) {
  for (const name of names) {
    if (!name) continue;
    if (name.includes('/') || name.includes('\\')) {
      if (existsSync(name)) return name;
      continue;
    }
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      for (const ext of process.platform === 'win32' ? ['.exe', '.cmd', ''] : ['']) {
        const candidate = join(dir, name + ext);
        if (dir && existsSync(candidate)) return candidate;
      }
    }
  }
  return undefined;
}
