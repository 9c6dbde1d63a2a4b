import test from 'ava';
import {
  affectnetLabel,
  fer2013Label,
  folderLabel,
  labelNames,
  nameOrIndexLabel,
  rafdbLabel,
} from 'adcorre-native/internal';
import { ferPlusLabel } from 'adcorre-native/internal';

const name = (mapped, classes = 8) => ('label' in mapped ? labelNames(classes)[mapped.label] : mapped);

test("canonical order: the reference tester's, contempt last", (t) => {
  t.deepEqual(labelNames(7), ['neutral', 'happy', 'sad', 'surprise', 'fear', 'disgust', 'anger']);
  t.deepEqual(labelNames(8), [...labelNames(7), 'contempt']);
});

test('FER-2013 codes 0..6 = angry, disgust, fear, happy, sad, surprise, neutral', (t) => {
  t.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map((c) => name(fer2013Label(c))),
    ['anger', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'],
  );
  t.deepEqual(fer2013Label('7'), { unknown: 'FER-2013 code 7' });
  t.true('unknown' in fer2013Label('x'));
  t.true('unknown' in fer2013Label(''));
});

test('RAF-DB codes 1..7 = surprise, fear, disgust, happiness, sadness, anger, neutral', (t) => {
  t.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((c) => name(rafdbLabel(c))),
    ['surprise', 'fear', 'disgust', 'happy', 'sad', 'anger', 'neutral'],
  );
  t.true('unknown' in rafdbLabel(0));
  t.true('unknown' in rafdbLabel(8));
});

test('AffectNet codes 0..10; 8..10 dropped; contempt only with 8 classes', (t) => {
  t.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map((c) => name(affectnetLabel(c, 7), 7)),
    labelNames(7),
  );
  t.is(name(affectnetLabel(7, 8)), 'contempt');
  t.true('excluded' in affectnetLabel(7, 7));
  for (const c of [8, 9, 10]) t.true('excluded' in affectnetLabel(c, 8));
  t.true('unknown' in affectnetLabel(11, 8));
  t.true('unknown' in affectnetLabel(-1, 8));
});

test('folder names: usual spellings, any case; others undefined', (t) => {
  const spellings = {
    angry: 'anger',
    Anger: 'anger',
    HAPPY: 'happy',
    happiness: 'happy',
    sad: 'sad',
    Sadness: 'sad',
    fear: 'fear',
    fearful: 'fear',
    disgust: 'disgust',
    disgusted: 'disgust',
    surprise: 'surprise',
    Surprised: 'surprise',
    neutral: 'neutral',
  };
  for (const [folder, expected] of Object.entries(spellings)) t.is(name(folderLabel(folder, 7), 7), expected, folder);
  t.is(name(folderLabel('contempt', 8)), 'contempt');
  t.true('excluded' in folderLabel('contempt', 7));
  t.is(folderLabel('joy'), undefined);
});

test('manifest labels by name or canonical index', (t) => {
  t.is(name(nameOrIndexLabel('Happiness')), 'happy');
  t.is(name(nameOrIndexLabel('6')), 'anger');
  t.true('unknown' in nameOrIndexLabel('7', 7));
  t.true('unknown' in nameOrIndexLabel('smile'));
});

test('FER+ majority vote: ties, unknown and not-a-face left out', (t) => {
  //               neu hap sur sad ang dis fea con unk NF
  t.is(name(ferPlusLabel([0, 8, 2, 0, 0, 0, 0, 0, 0, 0], 8)), 'happy');
  t.is(name(ferPlusLabel([1, 0, 0, 6, 3, 0, 0, 0, 0, 0], 8)), 'sad');
  t.deepEqual(ferPlusLabel([4, 4, 2, 0, 0, 0, 0, 0, 0, 0], 8), { excluded: 'FER+ tie' });
  t.deepEqual(ferPlusLabel([1, 0, 0, 0, 0, 0, 0, 0, 9, 0], 8), { excluded: 'FER+ majority unknown' });
  t.deepEqual(ferPlusLabel([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], 8), { excluded: 'FER+ majority NF' });
  t.is(name(ferPlusLabel([0, 0, 0, 0, 0, 0, 0, 7, 3, 0], 8)), 'contempt');
  t.true('excluded' in ferPlusLabel([0, 0, 0, 0, 0, 0, 0, 7, 3, 0], 7));
  t.deepEqual(ferPlusLabel([0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8), { excluded: 'FER+ no votes' });
});
