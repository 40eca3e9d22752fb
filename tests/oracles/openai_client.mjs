// The official OpenAI client (npm `openai`, pinned in package.json) against a worker's
// OpenAI-compatible API: completions and chat completions, whole and streamed. The streamed
// text must equal the whole answer (greedy decoding), usage must add up, and an unknown
// model must surface as the client's NotFoundError. Run by tests/openai_client_test.sh.
// Usage: node openai_client.mjs BASE_URL [API_KEY]
//   BASE_URL alone: a worker (e.g. http://127.0.0.1:8300/v1), this test playing the router.
//   With API_KEY: a cluster's global endpoint, exactly as a tenant's program would call it.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.argv[2];
const apiKey = process.argv[3];
// The worker serves plaintext only to a tenant a router vouches for; against a worker this
// test plays the router by sending the tenant header itself.
const client = apiKey
  ? new OpenAI({ baseURL, apiKey, maxRetries: 0 })
  : new OpenAI({
      baseURL,
      apiKey: 'not-checked-by-the-worker',
      defaultHeaders: { 'X-Supercluster-Tenant': 'open' },
      maxRetries: 0,
    });

function checkUsage(usage, maxTokens) {
  assert.ok(usage, 'usage is missing');
  assert.ok(usage.prompt_tokens > 0, `prompt_tokens ${usage.prompt_tokens}`);
  assert.ok(usage.completion_tokens > 0 && usage.completion_tokens <= maxTokens,
            `completion_tokens ${usage.completion_tokens}`);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
}

const common = { model: 'kjv', max_tokens: 8, temperature: 0 };

const completion = await client.completions.create({ ...common, prompt: 'And God said' });
assert.equal(completion.object, 'text_completion');
assert.equal(completion.model, 'kjv');
const text = completion.choices[0].text;
assert.ok(typeof text === 'string' && text.length > 0, 'empty completion');
checkUsage(completion.usage, 8);

let streamed = '';
let streamUsage = null;
let finish = null;
// Usage is streamed (as its own last chunk) only when asked for, as OpenAI does.
const withUsage = { stream: true, stream_options: { include_usage: true } };
for await (const chunk of await client.completions.create({ ...common, prompt: 'And God said', ...withUsage })) {
  streamed += chunk.choices[0]?.text ?? '';
  if (chunk.usage) streamUsage = chunk.usage;
  if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
}
assert.equal(streamed, text, 'the streamed completion differs from the whole one');
assert.equal(finish, completion.choices[0].finish_reason);
assert.deepEqual(streamUsage, completion.usage);

const messages = [{ role: 'user', content: 'Who was the father of Methuselah?' }];
// The neutral values of fields the worker does not implement are accepted.
const neutral = { logprobs: false, presence_penalty: 0, frequency_penalty: 0,
                  response_format: { type: 'text' } };
const chat = await client.chat.completions.create({ ...common, ...neutral, messages });
assert.equal(chat.object, 'chat.completion');
assert.equal(chat.choices[0].message.role, 'assistant');
const reply = chat.choices[0].message.content;
assert.ok(typeof reply === 'string' && reply.length > 0, 'empty chat reply');
checkUsage(chat.usage, 8);

let streamedReply = '';
let role = null;
let chatUsage = null;
for await (const chunk of await client.chat.completions.create({ ...common, messages, ...withUsage })) {
  const delta = chunk.choices[0]?.delta ?? {};
  if (delta.role) role = delta.role;
  streamedReply += delta.content ?? '';
  if (chunk.usage) chatUsage = chunk.usage;
}
assert.equal(role, 'assistant');
assert.equal(streamedReply, reply, 'the streamed chat reply differs from the whole one');
assert.deepEqual(chatUsage, chat.usage);
for await (const chunk of await client.chat.completions.create({ ...common, messages, stream: true })) {
  assert.equal(chunk.usage, undefined, 'usage streamed without stream_options.include_usage');
}

const models = await client.models.list();
assert.deepEqual(models.data.map((model) => model.id), ['kjv']);

await assert.rejects(client.completions.create({ ...common, model: 'no-such-model', prompt: 'x' }),
                     (error) => error instanceof OpenAI.NotFoundError);
await assert.rejects(client.completions.create({ ...common, prompt: 'x', top_p: 7 }),
                     (error) => error instanceof OpenAI.BadRequestError && /top_p/.test(error.message));
// A field that would change the answer, which the worker does not implement, is refused.
await assert.rejects(client.chat.completions.create({ ...common, messages, logprobs: true }),
                     (error) => error instanceof OpenAI.BadRequestError &&
                                /logprobs is not supported/.test(error.message));

console.log('openai_client: ok');
