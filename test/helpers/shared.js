// Paths into ../shared (data and golden vectors that must never be committed).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sharedDir = join(repoRoot, '..', 'shared');
export const goldenPath = join(sharedDir, 'golden', 'adcorre-cases.json');

/** The golden cases, or null (with the reason) when ../shared is absent. */
export function loadGolden() {
  if (!existsSync(goldenPath)) return { cases: null, reason: `${goldenPath} is absent` };
  return { cases: JSON.parse(readFileSync(goldenPath, 'utf8')).cases, reason: null };
}
