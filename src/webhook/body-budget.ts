/**
 * The webhook's memory budget for review bodies: the largest body the API server can send, and
 * the bytes and reviews held at once across all requests. Every smk webhook is failurePolicy Fail,
 * so a flood must be refused quickly (429) rather than let the process be OOM-killed.
 */
import type { IncomingMessage } from 'node:http';

/**
 * What the API server can send. It decodes no write body over 3 MiB (MaxRequestBodyBytes: etcd's
 * 1.5 MiB request limit, doubled for JSON), so a CREATE review carries an object of at most that,
 * plus the review's own fields; an UPDATE carries the object and the old one.
 */
export const apiServerLimits = {
  maxObjectBytes: 3 * 1024 * 1024,
  reviewEnvelopeBytes: 64 * 1024,
} as const;
export const defaultMaxBodyBytes = apiServerLimits.maxObjectBytes + apiServerLimits.reviewEnvelopeBytes;

/**
 * Review bodies held at once. Parsing and reviewing a body costs several times its size (many
 * small objects cost most: ~10× for a pod of 60,000 env entries), and the chart gives the webhook
 * 256Mi of which the idle process uses about half: 8 MiB of bodies stays well inside. It holds
 * one body of the largest kind (an UPDATE Secret review) at least, so no valid request is refused forever.
 */
export const defaultInFlightBytes = 8 * 1024 * 1024;

export class RequestTooLarge extends Error {}
export class OverBudget extends Error {}

/**
 * Bytes of review bodies and reviews in progress, across all requests. A request reserves what it
 * declares (Content-Length) before a byte is read, or chunk by chunk when it declares nothing,
 * and gives it back when its answer is sent.
 */
export class AdmissionBudget {
  readonly maxBytes: number;
  readonly maxReviews: number;
  #bytes = 0;
  #reviews = 0;

  constructor(maxBytes: number, maxReviews: number) {
    this.maxBytes = maxBytes;
    this.maxReviews = maxReviews;
  }

  /** A review slot, or false when `maxReviews` are in progress. */
  enter(): boolean {
    if (this.#reviews >= this.maxReviews) return false;
    this.#reviews += 1;
    return true;
  }

  leave(): void {
    this.#reviews -= 1;
  }

  reserve(bytes: number): boolean {
    if (this.#bytes + bytes > this.maxBytes) return false;
    this.#bytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#bytes -= bytes;
  }
}

/** Stops reading a body: no more data is taken, and the read fails with `error`. */
function stopReading(request: IncomingMessage, reject: (error: Error) => void, error: Error): void {
  request.removeAllListeners('data');
  request.pause();
  reject(error);
}

/**
 * A body being read of at most `limit` bytes, reserving them in `budget` as it goes (all of a
 * declared length up front). Stops reading at the first byte too many: RequestTooLarge, or
 * OverBudget when the budget has no room. `reserved()` says how much to give back once the
 * answer is sent. (A class, not closures: this runs for every admission request.)
 */
class BodyReading {
  readonly body: Promise<Buffer>;
  #reserved = 0;

  constructor(request: IncomingMessage, limit: number, budget: AdmissionBudget) {
    this.body = new Promise<Buffer>((resolve, reject) => {
      const header = request.headers['content-length'];
      const declared = header === undefined ? undefined : Number(header);
      if (declared !== undefined && (!Number.isSafeInteger(declared) || declared > limit)) {
        reject(new RequestTooLarge());
        return;
      }
      if (declared !== undefined) {
        if (!budget.reserve(declared)) {
          reject(new OverBudget());
          return;
        }
        this.#reserved = declared;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      request.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) return stopReading(request, reject, new RequestTooLarge());
        if (size > this.#reserved) {
          if (declared !== undefined) return stopReading(request, reject, new RequestTooLarge());
          if (!budget.reserve(size - this.#reserved)) return stopReading(request, reject, new OverBudget());
          this.#reserved = size;
        }
        chunks.push(chunk);
      });
      request.on('end', () => resolve(Buffer.concat(chunks, size)));
      request.on('error', reject);
    });
  }

  reserved(): number {
    return this.#reserved;
  }
}

export function readBody(
  request: IncomingMessage,
  limit: number,
  budget: AdmissionBudget,
): { readonly body: Promise<Buffer>; reserved(): number } {
  return new BodyReading(request, limit, budget);
}
