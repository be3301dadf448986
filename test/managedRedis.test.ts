// A managed Redis as providers run it: TLS with a privately signed certificate (rediss://), a user
// with a password and without the right to CONFIG or INFO, and an eviction policy BullMQ cannot
// live with. A private redis-server (built with TLS) plays it, with certificates made by openssl.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bullConnection, bullPrefix, checkBullConnection, checkRedisForBull, createRedis, type RedisSettings } from "../src/redis/connection.js";
import { freePort } from "../bench/results.js";
import { ensureRedis } from "../src/redis/ensureRedis.js";
import { RedisServer } from "../src/redis/redisServer.js";

const openssl = (dir: string, ...args: string[]) => {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
};

let dir: string;
let server: RedisServer;
let port: number;
let ca: string;
const open: Array<{ quit(): Promise<unknown> } | { close(): Promise<unknown> }> = [];
// The server's own admin connection (the default user), to set the scene.
let admin: Redis;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "managed-redis-"));
  openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test managed redis CA");
  openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
  openssl(dir, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.ext");
  ca = join(dir, "ca.pem");
  port = await freePort();
  server = new RedisServer({
    port: 0,
    dir,
    appendonly: false,
    args: ["--tls-port", String(port), "--tls-cert-file", "server.pem", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"],
    tls: { port, ca: readFileSync(ca, "utf8") },
  });
  await server.start();
  admin = new Redis(`rediss://127.0.0.1:${port}`, { tls: { ca: readFileSync(ca, "utf8") }, maxRetriesPerRequest: 2 });
  await admin.ping();
  // A provider's application user: every data command, but neither CONFIG nor INFO.
  await admin.call("ACL", "SETUSER", "app", "on", ">s3cret-pw", "~*", "&*", "+@all", "-config", "-info");
});

afterAll(async () => {
  for (const c of open.splice(0)) await ("quit" in c ? c.quit() : c.close()).catch(() => {});
  await admin?.quit().catch(() => {});
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a managed Redis", () => {
  it("is reached over TLS with a user and password from a rediss:// URL, keys under the prefix", async () => {
    const settings: RedisSettings = { url: `rediss://app:s3cret-pw@127.0.0.1:${port}`, keyPrefix: "desk1:", tlsCa: ca };
    const found = await ensureRedis({ url: settings.url, autostart: true, dataDir: dir, tlsCa: ca });
    expect(found.started).toBe(false);

    const redis = createRedis(settings);
    open.push(redis);
    await redis.set("ping", "pong");
    expect(await admin.get("desk1:ping")).toBe("pong");
    expect(await admin.acl("WHOAMI")).toBe("default");
    expect(await redis.acl("WHOAMI")).toBe("app");

    // BullMQ on its own connection: the same TLS and user, its prefix instead of ioredis's keyPrefix.
    // This user may not run INFO, which BullMQ's version check needs: the startup check finds that
    // out, and BullMQ's connection is told to skip it.
    const warnings: string[] = [];
    await checkRedisForBull(redis, (m) => warnings.push(m));
    expect(warnings.join()).toMatch(/INFO refused/);
    const queue = new Queue("decisions", { connection: bullConnection(settings), prefix: bullPrefix(settings) });
    open.push(queue);
    await queue.add("decide", { symbol: "BTC/USDT" });
    expect((await queue.getJobCounts("waiting")).waiting).toBe(1);
    expect(await admin.exists("desk1:bull:decisions:meta")).toBe(1);
  });

  it("refuses a certificate it cannot trust, and says what to check", async () => {
    // No REDIS_TLS_CA: the private CA is unknown, so the handshake fails, and no server is started for a rediss:// URL.
    const attempt = ensureRedis({ url: `rediss://app:s3cret-pw@127.0.0.1:${port}`, autostart: true, dataDir: dir });
    await expect(attempt).rejects.toThrow(/rediss:\/\/ \(TLS\) URL.*certificate.*REDIS_TLS_CA/);
    await expect(attempt).rejects.not.toThrow(/s3cret-pw/);
    expect(() => createRedis({ url: `rediss://127.0.0.1:${port}`, keyPrefix: "", tlsCa: join(dir, "missing.pem") })).toThrow(/REDIS_TLS_CA: cannot read .*missing\.pem/);
  });

  it("warns when the eviction policy cannot be read, and stops startup when it evicts", async () => {
    const warnings: string[] = [];
    const app = createRedis({ url: `rediss://app:s3cret-pw@127.0.0.1:${port}`, keyPrefix: "", tlsCa: ca });
    open.push(app);
    await checkRedisForBull(app, (m) => warnings.push(m));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/could not read Redis's maxmemory-policy \(INFO refused: NOPERM.*CONFIG GET refused: NOPERM.*make sure it is noeviction/);

    const owner = createRedis({ url: `rediss://127.0.0.1:${port}`, keyPrefix: "", tlsCa: ca });
    open.push(owner);
    await expect(checkRedisForBull(owner, (m) => warnings.push(m))).resolves.toBeUndefined();
    await admin.config("SET", "maxmemory-policy", "allkeys-lru");
    try {
      await expect(checkRedisForBull(owner, (m) => warnings.push(m))).rejects.toThrow(/maxmemory-policy is allkeys-lru.*need noeviction.*CONFIG SET maxmemory-policy noeviction/);
    } finally {
      await admin.config("SET", "maxmemory-policy", "noeviction");
    }
    expect(warnings).toHaveLength(1);
  });

  it("builds BullMQ's connection the way BullMQ needs it", () => {
    const options = bullConnection({ url: "redis://u:p@127.0.0.1:6379/2", keyPrefix: "desk1:" }) as { maxRetriesPerRequest: unknown; keyPrefix?: string; url: string };
    expect(options.maxRetriesPerRequest).toBeNull();
    expect(options.keyPrefix).toBeUndefined();
    expect(() => checkBullConnection({ maxRetriesPerRequest: 20 })).toThrow(/maxRetriesPerRequest: null/);
    expect(() => checkBullConnection({ maxRetriesPerRequest: null, keyPrefix: "x:" })).toThrow(/BullMQ's own prefix option/);
  });
});
