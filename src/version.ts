/** fragmend's version, as package.json gives it (a test keeps the two the same). */
export const FRAGMEND_VERSION = '0.1.0';
