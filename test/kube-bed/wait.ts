/** Small helpers for the bed's proof tests: polling for what controllers do asynchronously. */
import { ApiException } from '@kubernetes/client-node';

export { eventually } from '../harness/wait.ts';

/** Polls `probe` until it returns a value other than undefined; fails naming `what` after `timeoutMs`. */

/** The HTTP status a failed API call ended with; fails the test if the call succeeded. */
export async function apiStatus(call: Promise<unknown>): Promise<number> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
  throw new Error('the API call succeeded but was expected to be refused');
}
