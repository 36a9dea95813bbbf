// Peer webhook receiver for bench/webhook_ingest.py, started by it.
//
//   node receiver.mjs PORT raw      Probot alone: verifies and routes, stores nothing
//   node receiver.mjs PORT pgboss   Probot + pg-boss: each push becomes a pg-boss job
//                                   (PEER_DB_URL), answered once the job is committed
//
// PEER_WEBHOOK_SECRET is the webhook secret. Prints "ready" once listening.
import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import { Probot, createNodeMiddleware } from "probot";

const [port, mode] = process.argv.slice(2);
const secret = process.env.PEER_WEBHOOK_SECRET;
// Probot wants App credentials even though no GitHub call is made: a throwaway key.
const { privateKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});

let boss = null;
if (mode === "pgboss") {
  const { PgBoss } = await import("pg-boss").then((m) => ({ PgBoss: m.default ?? m.PgBoss }));
  boss = new PgBoss({ connectionString: process.env.PEER_DB_URL, max: 10 });
  boss.on("error", (err) => console.error(err));
  await boss.start();
  await boss.createQueue("push");
} else if (mode !== "raw") {
  throw new Error(`unknown mode ${mode}: raw or pgboss`);
}

const appFn = (app) => {
  app.on("push", async (context) => {
    if (boss) await boss.send("push", { id: context.id, payload: context.payload });
  });
};
const probot = new Probot({ appId: 1, privateKey, secret, logLevel: "warn" });
const middleware = await createNodeMiddleware(appFn, {
  probot,
  webhooksPath: "/api/v1/webhooks/github",
});
const server = createServer((req, res) => {
  middleware(req, res, () => {
    res.writeHead(404).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), "127.0.0.1", () => console.log("ready"));
const stop = async () => {
  server.close();
  if (boss) await boss.stop({ graceful: false, wait: false });
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
