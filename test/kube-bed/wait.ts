/** Small helpers for the bed's proof tests: polling for what controllers do asynchronously. */
import { ApiException } from '@kubernetes/client-node';

/** Polls `probe` until it returns a value other than undefined; fails naming `what` after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const detail =
    last === undefined ? '' : ` (last error: ${last instanceof Error ? last.message : String(last)})`;
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${detail}`);
}

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
