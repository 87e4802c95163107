/** The line that starts a section of a capture file: the process header, or a captured HTTP body. */
export const captureMarker = '\u241esmk-leak-capture:';
