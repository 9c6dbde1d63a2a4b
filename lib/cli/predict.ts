// adcorre-predict <files, folders or globs...>: expressions of the faces in
// photos. Exit status 0 when every input was processed, 1 when some failed
// (each reported with its reason; the rest still processed), 2 for usage
// errors (including no model to use).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import fg from 'fast-glob';
import { annotate, annotatedName, annotatedNames } from '../infer/annotate.js';
import { PREDICTION_DEFAULTS } from '../infer/defaults.js';
import { DETECTOR_MODELS } from '../infer/detect.js';
import { FER, type PredictResult } from '../infer/fer.js';
import { InputError, MAX_WORKING_SIDE } from '../infer/image.js';
import { ModelError } from '../infer/model-check.js';
import { errnoText } from '../errno.js';
import { notUtf8Hint } from '../input-file.js';
import { printable } from '../terminal.js';
import { deviceChoices } from '../device.js';
import { ensureDir } from '../io.js';
import { describeMemory, formatBytes, memoryLimit } from '../memory.js';
import { OptionError, parseDecimal, parseDigits } from '../validate.js';
import { cropMargin, describeError } from './args.js';
import { addVideoOptions, planVideos, predictVideos, type VideoPlan } from './predict-video.js';
import { isVideoOutputName } from '../video/encode.js';
import { isVideoFile } from '../video/probe.js';

const IMAGE_GLOB = '**/*.{jpg,jpeg,png,webp,gif,tif,tiff,avif,heic,heif,JPG,JPEG,PNG,WEBP}';

function positive(value: string): number {
  const n = parseDigits(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/**
 * Files from paths, folders (their images, recursively) and globs; missing ones come back in `missing`, folders
 * or patterns that cannot be listed (one nested deeper than a path may be long) with the reason in `unlisted`:
 * either costs that argument only.
 */
export async function expandInputs(
  args: string[],
): Promise<{ files: string[]; missing: string[]; unlisted: { arg: string; reason: string }[] }> {
  const files: string[] = [];
  const missing: string[] = [];
  const unlisted: { arg: string; reason: string }[] = [];
  for (const arg of args) {
    let stat;
    try {
      stat = statSync(arg);
    } catch {
      stat = undefined;
    }
    try {
      // (no push(...list): a folder of some 100,000 photos would overflow the stack with arguments)
      if (stat?.isDirectory())
        for (const f of (await fg(IMAGE_GLOB, { cwd: arg, absolute: false })).sort()) files.push(join(arg, f));
      else if (stat)
        files.push(arg); // anything else than a regular file is refused, named, when it is read
      else if (fg.isDynamicPattern(arg)) {
        const found = (await fg(arg, { onlyFiles: true })).sort();
        if (found.length) for (const f of found) files.push(f);
        else missing.push(arg);
      } else missing.push(arg);
    } catch (err) {
      const deep = (err as NodeJS.ErrnoException).code === 'ENAMETOOLONG';
      const why = deep ? 'it holds folders nested deeper than a path may be long (ENAMETOOLONG)' : errnoText(err);
      unlisted.push({ arg, reason: `cannot list ${stat?.isDirectory() ? 'the folder' : 'the pattern'}: ${why}` });
    }
  }
  return { files, missing, unlisted };
}

/** A result's tab-separated rows; names (the file's, the labels) through printable(): a tab or newline in one would forge columns or rows. */
function formatRow(result: PredictResult, top: number): string[] {
  const source = printable(result.source);
  if (result.faces.length === 0) return [`${source}\t-\tno face found`];
  return result.faces.map((f, i) => {
    const b = f.box;
    const others = f.top
      .slice(1, top)
      .map((t) => `${printable(t.label)} ${(t.probability * 100).toFixed(1)}%`)
      .join(', ');
    const where = result.detected
      ? `face ${i + 1} at ${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.width)}x${Math.round(b.height)}`
      : 'whole image';
    return `${source}\t${where}${result.wholeImage ? ' (no face found)' : ''}\t${printable(f.label)} ${(f.confidence * 100).toFixed(1)}%${others ? `\t(${others})` : ''}`;
  });
}

/**
 * The command. An error no input explains (a model that answers NaN, a failure inside ONNX Runtime)
 * ends it with its message and no stack trace: exit 2 when the model is broken (it cannot be used),
 * else 1.
 */
export async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (err) {
    process.stderr.write(`adcorre-predict: ${printable(describeError(err).message)}\n`);
    return err instanceof ModelError ? 2 : 1;
  }
}

async function run(argv: string[]): Promise<number> {
  const program = new Command('adcorre-predict')
    .description('Facial expressions of the faces in images, with a model trained by adcorre-native')
    .argument('<inputs...>', 'image files, folders or glob patterns')
    .option(
      '--model <file|name>',
      "ONNX model exported by adcorre-native, or a bundled model: 'fer2013' (the default, 7 classes) or 'ferplus' " +
        '(8 classes, contempt included)',
    )
    .addOption(
      new Option('--device <device>', 'execution provider').choices([...deviceChoices('inference')]).default('auto'),
    )
    .addOption(
      new Option(
        '--detector <set-up>',
        'face detector: multi (both BlazeFace models, tiles on large photos), or one model alone: full range, short range (close-ups)',
      )
        .choices([...DETECTOR_MODELS])
        .default(PREDICTION_DEFAULTS.detector),
    )
    .option('--json', 'one JSON object per input, per line')
    .option('--top <n>', 'labels listed per face', positive, PREDICTION_DEFAULTS.top)
    .option(
      '--batch <n>',
      `images decoded and predicted together (their faces are classified ${PREDICTION_DEFAULTS.faceBatch} per run)`,
      positive,
      PREDICTION_DEFAULTS.imageBatch,
    )
    .option('--no-detect', 'treat each input as a face crop')
    .option(
      '--threshold <p>',
      'face detector score threshold',
      (v) => {
        const n = parseDecimal(v);
        if (!(n > 0 && n < 1)) throw new InvalidArgumentError('expected a number between 0 and 1');
        return n;
      },
      PREDICTION_DEFAULTS.threshold,
    )
    .option('--no-align', "crop the detector's box instead of aligning each face by its eyes and mouth")
    .option(
      '--margin <m>',
      `crop side per detected box side, without alignment (implies --no-align; default ${PREDICTION_DEFAULTS.margin})`,
      cropMargin,
    )
    .option('--whole-image', 'classify the whole image when no face is found (flagged)')
    .option('--embeddings', 'include the embeddings in --json output')
    .option(
      '--annotate <dir|file>',
      'write a copy of each image with its faces boxed and labelled (videos: a .mp4/.mkv/.mov file, or the folder)',
    )
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  addVideoOptions(program);
  let opts: Record<string, unknown>;
  let inputs: string[];
  try {
    program.parse(argv, { from: 'user' });
    opts = program.opts();
    inputs = program.args;
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code === 'commander.helpDisplayed' || code === 'commander.version' ? 0 : 2;
  }
  const { files, missing, unlisted } = await expandInputs(inputs);
  // videos recognised by their content, whatever their names
  const isVideo = files.map((f) => isVideoFile(f));
  const videos = files.filter((_, i) => isVideo[i]);
  const photos = files.filter((_, i) => !isVideo[i]);
  let fer: FER;
  let plan: VideoPlan | undefined;
  try {
    // usage errors before the model is loaded: an output folder that cannot be used, a batch that cannot fit
    plan = planVideos(videos, photos, opts);
    if (opts.annotate && !(plan && isVideoOutputName(opts.annotate as string)))
      ensureDir(opts.annotate as string, '--annotate');
    // each image of a batch is held decoded (up to MAX_WORKING_SIDE on its longer side, RGB) with its copies;
    // the default always runs
    const perImage = MAX_WORKING_SIDE * MAX_WORKING_SIDE * 3 * 2;
    const usable = memoryLimit() * 0.5;
    const images = opts.batch as number;
    if (images > PREDICTION_DEFAULTS.imageBatch && images * perImage > usable)
      throw new OptionError(
        '--batch',
        `at most ${Math.floor(usable / perImage)} images per batch here`,
        String(opts.batch),
        `a batch may hold ${formatBytes(perImage)} per image (large photos decoded at up to ${MAX_WORKING_SIDE} px); ${describeMemory()}`,
      );
    fer = await FER.load({
      model: opts.model as string | undefined,
      device: opts.device as never,
      detector: opts.detector as never,
    });
  } catch (err) {
    process.stderr.write(`adcorre-predict: ${printable(describeError(err).message)}\n`);
    return 2; // nothing can run without a model: a set-up (usage) error
  }
  const info = fer.info();
  if (!info.training)
    process.stderr.write(
      `adcorre-predict: warning: ${printable(info.model)} has no training summary; it may be untrained\n`,
    );
  let failed = 0;
  for (const { arg, reason } of unlisted) {
    failed++;
    process.stderr.write(`adcorre-predict: ${printable(arg)}: ${printable(reason)}\n`);
  }
  for (const m of missing) {
    failed++;
    process.stderr.write(`adcorre-predict: ${printable(m)}: no such file, folder or matching files${notUtf8Hint(m)}\n`);
  }
  const bar =
    process.stderr.isTTY && photos.length > 1
      ? new SingleBar({
          format: 'predict [{bar}] {value}/{total} images | {eta_formatted} left',
          stream: process.stderr,
          clearOnComplete: true,
        })
      : null;
  bar?.start(photos.length, 0);
  const batch = opts.batch as number;
  const top = opts.top as number;
  // one annotated copy per input: a/x.jpg and b/x.jpg would otherwise both write x.annotated.jpg
  const annotated = opts.annotate && photos.length ? annotatedNames(photos, opts.annotate as string) : [];
  for (let i = 0; i < photos.length; i += batch) {
    const part = photos.slice(i, i + batch);
    const results = await fer.predictBatch(part, {
      detect: opts.detect === false ? false : 'auto',
      top,
      threshold: opts.threshold as number,
      align: (opts.align as boolean) && opts.margin === undefined,
      ...(opts.margin !== undefined ? { margin: opts.margin as number } : {}),
      wholeImageFallback: Boolean(opts.wholeImage),
      embeddings: Boolean(opts.embeddings),
    });
    for (const [j, r] of results.entries()) {
      if (r instanceof InputError) {
        failed++;
        bar?.stop();
        process.stderr.write(`adcorre-predict: ${r.message}\n`); // the name through printable()
        if (opts.json)
          process.stdout.write(`${JSON.stringify({ source: part[j], error: `${part[j]}: ${r.reason}` })}\n`);
        continue;
      }
      let annotatedPath: string | undefined;
      if (opts.annotate) {
        const name = annotated[i + j];
        try {
          annotatedPath = await annotate(part[j], r, opts.annotate as string, 0, {
            runnersUp: Math.min(2, top - 1),
            name,
          });
          if (name !== annotatedName(part[j]))
            process.stderr.write(
              `adcorre-predict: ${printable(part[j])}: annotated copy written as ${printable(annotatedPath)} ` +
                `(${printable(annotatedName(part[j]))} goes to another input, or is one)\n`,
            );
        } catch (err) {
          failed++;
          process.stderr.write(
            `adcorre-predict: ${printable(part[j])}: cannot write the annotated copy (${printable(describeError(err).message)})\n`,
          );
        }
      }
      if (opts.json) {
        const faces = r.faces.map((f) => ({
          ...f,
          ...(f.embeddings ? { embeddings: f.embeddings.map((e) => Array.from(e)) } : {}),
        }));
        process.stdout.write(
          `${JSON.stringify({ ...r, faces, ...(annotatedPath ? { annotated: annotatedPath } : {}) })}\n`,
        );
      } else {
        process.stdout.write(`${formatRow(r, top).join('\n')}\n`);
      }
    }
    bar?.update(Math.min(photos.length, i + batch));
  }
  bar?.stop();
  if (plan) {
    const done = await predictVideos(fer, plan, opts);
    failed += done.failed;
    if (done.interrupted) {
      await fer.close();
      return 130;
    }
  }
  await fer.close();
  return failed > 0 ? 1 : 0;
}
