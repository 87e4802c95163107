// The Node version smk runs on, checked by smk.mjs before anything else is loaded. Plain JavaScript
// (types in node-version.d.mts) so that an old Node can run it. package.json's engines says the
// same; src/cli/node-version.test.ts holds the two together.

/** The oldest Node major smk runs on. */
export const requiredNodeMajor = 24;

/**
 * Undefined when `version` (process.versions.node, e.g. "20.20.2") is new enough, else the message.
 * @param {string} version
 * @returns {string | undefined}
 */
export function nodeVersionProblem(version) {
  const major = Number.parseInt(String(version).split('.')[0], 10);
  if (major >= requiredNodeMajor) return undefined;
  return `smk needs Node ${requiredNodeMajor} or later (found v${version})`;
}
