// make bench --peer elizaos: start ElizaOS's AgentServer (@elizaos/server 1.7.2) under bun.
//
//   bun bench/node/eliza_server.mjs        (bench/peer.py sets the environment below)
//
// ELIZA_SERVER_ENTRY  absolute path of node_modules/@elizaos/server/dist/index.js under
//                     var/peers/elizaos (imported by path: this file lives outside that tree)
// SERVER_HOST, SERVER_PORT, PGLITE_DATA_DIR, SENTRY_DSN, LOG_LEVEL: ElizaOS's own settings.
//
// This is what `elizaos start` does minus the CLI: construct the server, initialize it (PGlite
// database, migrations, Express app, Socket.IO) and listen. No agent is started here: the
// harness creates and starts one through the REST API, as a user would. Prints one line
// "BENCH_READY <port>" once the HTTP server listens.

const entry = process.env.ELIZA_SERVER_ENTRY;
if (!entry) {
  console.error("ELIZA_SERVER_ENTRY is not set");
  process.exit(2);
}
const { AgentServer } = await import(entry);

const port = Number(process.env.SERVER_PORT);
const server = new AgentServer();
try {
  await server.start({ port, dataDir: process.env.PGLITE_DATA_DIR });
} catch (error) {
  console.error("ElizaOS failed to start:", error);
  process.exit(1);
}
// AgentServer.start() sets SERVER_PORT to the port it actually bound.
console.log(`BENCH_READY ${process.env.SERVER_PORT}`);
