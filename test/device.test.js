// One device parser for the loss, the training engine and inference (lib/device.ts).
import test from 'ava';
import { deviceChoices, parseDevice } from 'adcorre-native';

test('each use accepts its spellings, with the CUDA index for the engine only', (t) => {
  t.deepEqual(parseDevice('d', 'auto', 'loss'), { kind: 'auto', index: 0 });
  t.deepEqual(parseDevice('d', 'cpu', 'engine'), { kind: 'cpu', index: 0 });
  t.deepEqual(parseDevice('d', 'cuda', 'engine'), { kind: 'cuda', index: 0 });
  t.deepEqual(parseDevice('d', 'cuda:3', 'engine'), { kind: 'cuda', index: 3 });
  t.deepEqual(parseDevice('d', 'webgpu', 'inference'), { kind: 'webgpu', index: 0 });
  t.deepEqual(deviceChoices('inference'), ['auto', 'cpu', 'cuda', 'webgpu']);
  t.deepEqual(deviceChoices('engine'), ['auto', 'cpu', 'cuda', 'cuda:N']);
});

test('a spelling another use accepts is refused with the list this one takes', (t) => {
  t.throws(() => parseDevice('options.device', 'webgpu', 'engine'), {
    instanceOf: RangeError,
    message: "Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for options.device but received 'webgpu'",
  });
  t.throws(() => parseDevice('options.device', 'cuda:1', 'loss'), {
    instanceOf: RangeError,
    message: "Expected 'auto', 'cpu' or 'cuda' for options.device but received 'cuda:1'",
  });
  t.throws(() => parseDevice('--device', 'cuda:1', 'inference'), {
    message: "Expected 'auto', 'cpu', 'cuda' or 'webgpu' for --device but received 'cuda:1'",
  });
  for (const bad of ['cpu:0', 'CUDA', 'cuda:', 'cuda:x', ' cpu', ''])
    t.throws(() => parseDevice('d', bad, 'engine'), { instanceOf: RangeError }, bad);
});

test('a device that is not a string is a type error naming what it was', (t) => {
  t.throws(() => parseDevice('options.device', 0, 'engine'), {
    instanceOf: TypeError,
    message: "Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for options.device but received 0 of type number",
  });
});
