/** The release version, kept in one place (the image tag and `smk version` use it). */
export const smkVersion = '0.1.0';
