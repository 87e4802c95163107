/** The oldest Node major smk runs on. */
export declare const requiredNodeMajor: number;
/** Undefined when `version` (process.versions.node) is new enough, else the message to print. */
export declare function nodeVersionProblem(version: string): string | undefined;
