/** The server's version: /health reports it and backups record it (one place for both). */
export const SERVER_VERSION = '0.1.0';
