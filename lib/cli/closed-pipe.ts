// Imported first by every command (bin/): a reader that goes away early (`adcorre-train --help | head -3`,
// `adcorre-predict *.jpg | less` quit before the end) closes our stdout, and Node then throws EPIPE from an
// unhandled 'error' event: a stack trace, and a training run or a prediction loop killed with nothing saved. The
// output is simply dropped instead; the work goes on and ends as it would have (checkpoints, files written).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

export {};
