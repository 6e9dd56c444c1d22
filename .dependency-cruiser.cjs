/**
 * The server's layering, checked by `npm run check:layers` (and CI) on the compiled JavaScript, so
 * type-only imports do not count. Lower layers never import higher ones:
 *   util < catalog, config < sql < sql/bind < auth-free storage < jobs < exec < live < http, ws < app
 * and user SQL reaches the engine only through the bind layer.
 */
const src = '^packages/server/dist/src/';
const layer = (name) => `${src}${name}/`;
const forbid = (name, from, to, comment) => ({ name, comment, severity: 'error', from: { path: from }, to: { path: to } });
const higher = (names) => `^packages/server/dist/src/(${names.join('|')})(/|\\.js$)`;

module.exports = {
  forbidden: [
    forbid('util-is-a-leaf', layer('util'), `${src}(?!util/)`, 'util/ imports nothing else of the server'),
    forbid('catalog-on-util-only', layer('catalog'), `${src}(?!(util|catalog)/)`, 'the catalog is plain data over the store interface'),
    forbid('config-on-util-only', layer('config'), `${src}(?!(util|config)/)`, 'configuration depends on nothing'),
    forbid('sql-below-execution', layer('sql'), higher(['storage', 'exec', 'jobs', 'live', 'http', 'ws', 'app', 'main', 'engine-config']), 'parsing and binding never run anything'),
    forbid('auth-below-execution', layer('auth'), higher(['storage', 'exec', 'jobs', 'live', 'http', 'ws', 'app', 'main', 'sql/bind']), 'access rules are pure functions over principals and the catalog'),
    forbid('storage-below-execution', layer('storage'), higher(['exec', 'jobs', 'live', 'http', 'ws', 'app', 'main', 'auth', 'sql/bind']), 'storage knows rows and files, not statements or users'),
    forbid('jobs-below-sessions', layer('jobs'), higher(['live', 'http', 'ws', 'app', 'main']), 'jobs do not talk to clients'),
    forbid('exec-below-transport', layer('exec'), higher(['http', 'ws', 'app', 'main']), 'executors do not know the transport'),
    forbid('live-below-transport', layer('live'), higher(['http', 'ws', 'app', 'main']), 'live matching does not know the transport'),
    forbid('http-and-ws-apart', higher(['http']), higher(['ws', 'live']), 'the HTTP server does not reach into the WebSocket server'),
    {
      name: 'engine-sql-only-from-the-bind-layer',
      comment: 'Only the read path (exec/query.ts) runs bound SQL and the engine check; select-exec binds once for its fast path.',
      severity: 'error',
      from: { path: src, pathNot: `${src}(sql/bind/|exec/query\\.js$|exec/select-exec\\.js$|engine-config\\.js$)` },
      to: { path: `${src}sql/bind/` },
    },
    {
      name: 'engine-check-only-in-the-read-path',
      severity: 'error',
      from: { path: src, pathNot: `${src}(sql/bind/|exec/query\\.js$)` },
      to: { path: `${src}sql/bind/engine-check\\.js$` },
    },
    {
      name: 'no-deparser',
      comment: 'Engine SQL is emitted by sql/bind, never deparsed from a parse tree.',
      severity: 'error',
      from: {},
      to: { path: 'pgsql-deparser' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.map$' },
    moduleSystems: ['es6'],
  },
};
