// Drives steer serve with the npm `openai` client the way Python/JS scripts do; prints one JSON
// summary for the .NET test to check. Usage: STEER_BASE_URL=http://127.0.0.1:PORT/v1 node client.mjs
import OpenAI, { toFile } from 'openai';

const client = new OpenAI({ baseURL: process.env.STEER_BASE_URL, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
const messages = [{ role: 'user', content: 'the cat' }];
const summary = {};

const steered = await client.chat.completions.create({
  model: 'demo', messages, max_tokens: 8, temperature: 0,
  steering: [{ vector: 'mood', layer: 2, multiplier: 6 }],
});
summary.steered = steered.choices[0].message.content;

const baseline = await client.chat.completions.create({ model: 'demo-moody', messages, max_tokens: 8, temperature: 0, steering: false });
summary.baseline = baseline.choices[0].message.content;
summary.preset = (await client.chat.completions.create({ model: 'demo-moody', messages, max_tokens: 8, temperature: 0 })).choices[0].message.content;

const sampled = { model: 'demo', messages, max_tokens: 10, temperature: 0.9, seed: 5, logprobs: true, top_logprobs: 20 };
const whole = await client.chat.completions.create(sampled);
summary.whole = whole.choices[0].message.content;
summary.topCount = whole.choices[0].logprobs.content[0].top_logprobs.length;
const stream = await client.chat.completions.create({ ...sampled, stream: true, stream_options: { include_usage: true } });
let streamed = '';
for await (const chunk of stream) {
  if (chunk.choices.length > 0) streamed += chunk.choices[0].delta.content ?? '';
  if (chunk.usage) summary.streamUsage = chunk.usage.completion_tokens;
}
summary.streamed = streamed;

const scored = await client.completions.create({ model: 'demo', prompt: 'the cat is', max_tokens: 0, echo: true, logprobs: 0 });
summary.promptLogprobs = scored.choices[0].logprobs.token_logprobs;

try {
  await client.chat.completions.create({ model: 'demo', messages, steering: [{ vector: 'mood', layer: 99 }] });
  summary.badRequest = 'accepted';
} catch (e) {
  summary.badRequest = `${e.status} ${e.error?.param}`;
}

const lines = [0, 1, 2, 3].map(i => JSON.stringify({
  custom_id: `n-${i}`, method: 'POST', url: '/v1/chat/completions',
  body: { model: 'demo', messages: [{ role: 'user', content: i % 2 ? 'my dog' : 'the cat' }], max_tokens: 4, temperature: 0, steering: { vector: 'mood', layer: 1, multiplier: i } },
})).join('\n') + '\n';
const file = await client.files.create({ file: await toFile(Buffer.from(lines), 'requests.jsonl'), purpose: 'batch' });
let batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
for (let i = 0; i < 600 && !['completed', 'failed', 'cancelled'].includes(batch.status); i++) {
  await new Promise(r => setTimeout(r, 100));
  batch = await client.batches.retrieve(batch.id);
}
summary.batchStatus = batch.status;
const output = await (await client.files.content(batch.output_file_id)).text();
summary.batch = Object.fromEntries(output.trim().split('\n').map(l => JSON.parse(l)).map(l => [l.custom_id, l.response.body.choices[0].message.content]));

console.log(JSON.stringify(summary));
