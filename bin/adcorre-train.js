#!/usr/bin/env node
import '../dist/cli/closed-pipe.js';
import { main } from '../dist/cli/train.js';

// A safety net: should a promise on the way out ever wait on nothing that keeps the event loop alive, Node would
// end the process with code 13 and print nothing. Say so and exit 1 (a training failure) instead.
let settled = false;
process.on('exit', (code) => {
  // process.exit(130) from a second Ctrl-C is not this case; Node reports the lost promise as 0 or 13
  if (settled || (code !== 0 && code !== 13)) return;
  process.stderr.write(
    'adcorre-train: stopped before finishing: an internal operation was lost (please report this)\n',
  );
  process.exitCode = 1;
});
try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  // main reports every error it expects; anything else still gets one line, not a stack trace
  process.stderr.write(`adcorre-train: ${err?.message ?? String(err)}\n`);
  process.exitCode = 1;
}
settled = true;
