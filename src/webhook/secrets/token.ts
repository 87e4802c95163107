/**
 * The ClientRequestToken of a write: an HMAC of the Secrets Manager name and the stored
 * document. Equal content gives the equal token, so a retried request (or the same content
 * applied again) makes no new version. It becomes the version id, which the stored Secret shows
 * in an annotation: a plain hash would let anyone who can read that annotation test guesses of a
 * short value, so the hash is keyed with material only the webhook holds.
 */
import { createHash, createHmac } from 'node:crypto';
import type { TokenOf } from './review.ts';

const context = 'smk write-through token v1';

/** A token function keyed with `keyMaterial` (any secret bytes the webhook replicas share, e.g. the serving key). */
export function tokenFunction(keyMaterial: Uint8Array): TokenOf {
  const key = createHash('sha256').update(context).update(keyMaterial).digest();
  return (secretName, document) =>
    createHmac('sha256', key).update(secretName).update('\0').update(document).digest('hex');
}
