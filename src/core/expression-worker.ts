/**
 * The thread that runs full JMESPath expressions (./expressions.ts starts it; the bundle builds it
 * as its own entry, dist/expression-worker.mjs). Its only job: JSON text + expressions → each
 * expression's string, or nothing. It says nothing about which expression failed or why, so
 * nothing value-dependent can cross back beyond "every expression gave a string".
 */
import { parentPort } from 'node:worker_threads';
import { type JSONValue, search } from '@jmespath-community/jmespath';
import type { EvaluationReply, EvaluationRequest } from './expressions.ts';

const port = parentPort;
if (port === null) throw new Error('expression-worker runs as a worker thread only');

function evaluate(request: EvaluationRequest): readonly string[] | undefined {
  const results: string[] = [];
  try {
    const data = JSON.parse(request.json) as JSONValue;
    for (const expression of request.expressions) {
      const result = search(data, expression);
      if (typeof result !== 'string' || Buffer.byteLength(result) > request.maxResultBytes) return undefined;
      results.push(result);
    }
  } catch {
    return undefined;
  }
  return results;
}

port.on('message', (request: EvaluationRequest) => {
  const reply: EvaluationReply = { id: request.id, results: evaluate(request) };
  port.postMessage(reply);
});
port.postMessage('ready');
