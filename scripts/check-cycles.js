#!/usr/bin/env node
// Import cycles in lib/ (type-only imports included): a module graph without
// cycles can be read, tested and moved one layer at a time. Part of `npm run
// lint`. Relative imports only ('./x.js' and '../y/z.js' resolve to .ts files);
// TypeScript's own checker does not report cycles, and the one package that
// does (madge) brings a parser per language for what a regular expression over
// `import ... from` and `export ... from` lines does here.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), '..', 'lib'));
const IMPORT = /^\s*(?:import|export)\s[^'"]*?\sfrom\s+['"](\.{1,2}\/[^'"]+)['"]/gm;
const SIDE_EFFECT = /^\s*import\s+['"](\.{1,2}\/[^'"]+)['"]/gm;

function sources(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const found = new Set();
  for (const pattern of [IMPORT, SIDE_EFFECT])
    for (const m of text.matchAll(pattern)) found.add(resolve(dirname(file), m[1].replace(/\.js$/, '.ts')));
  return [...found];
}

const files = sources(root);
const graph = new Map(files.map((f) => [f, importsOf(f).filter((g) => files.includes(g))]));

// Tarjan's strongly connected components: each component of more than one module (or a self-import) is a cycle
let index = 0;
const stack = [];
const state = new Map();
const cycles = [];
function visit(v) {
  const s = { index, low: index, onStack: true };
  index++;
  state.set(v, s);
  stack.push(v);
  for (const w of graph.get(v)) {
    if (!state.has(w)) {
      visit(w);
      s.low = Math.min(s.low, state.get(w).low);
    } else if (state.get(w).onStack) s.low = Math.min(s.low, state.get(w).index);
  }
  if (s.low === s.index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      state.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v).includes(v)) cycles.push(component);
  }
}
for (const f of files) if (!state.has(f)) visit(f);

const name = (f) => relative(root, f);
if (cycles.length) {
  for (const c of cycles) {
    const members = new Set(c);
    process.stderr.write(`import cycle among ${c.length} modules of ${name(root) || 'lib'}/:\n`);
    for (const f of c.sort())
      process.stderr.write(
        `  ${name(f)} -> ${graph
          .get(f)
          .filter((g) => members.has(g))
          .map(name)
          .join(', ')}\n`,
      );
  }
  process.exit(1);
}
process.stdout.write(
  `check-cycles: ${files.length} modules in ${relative(process.cwd(), root) || '.'}, no import cycle\n`,
);
