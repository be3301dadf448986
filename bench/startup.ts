// Startup and idle memory of the agent process, on the offline default, per role (all, worker,
// frontend): the time from spawning `node` to the banner's last line on stdout, and the resident
// memory (VmRSS) after it has idled a few seconds with its schedules running. Two ways to run it:
// under tsx (what `npm start` does, TypeScript compiled at load) and precompiled (`npm run build`,
// then `npm run start:prod`; the build is made fresh for each run of the bench).
// Each run gets its own Redis (a private redis-server) so earlier runs' schedules do not pile up.
// The process is spawned as `node ...` itself (as the package scripts exec it), so the pid
// measured is the agent's. Targets: idle RSS at most 150 MB under tsx and 110 MB precompiled, the
// banner within 2 s on a quiet machine.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { ensureRedis } from "../src/redis/ensureRedis.js";
import { projectRoot } from "../src/paths.js";
import { freePort, percentile, saveResults } from "./results.js";

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 3);
const IDLE_MS = Number(process.env.BENCH_STARTUP_IDLE_MS ?? 5_000);
const BANNER_END = "\nReady: ";

interface Variant {
  name: string;
  args: string[];
  /** all, worker or frontend. */
  role: string;
  /** The most idle RSS it may take (MB). */
  rssTargetMb: number;
}

const TARGETS = { tsxRssMb: 150, precompiledRssMb: 110, bannerMs: 2_000 };
const ROLES = ["all", "worker", "frontend"];

/** node's arguments as a package script runs it (`... exec node ARGS`): the bench measures what npm starts. */
function nodeArgs(script: string): string[] {
  const scripts = (JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  const m = /exec node (.+)$/.exec(scripts[script] ?? "");
  if (!m) throw new Error(`package.json's ${script} script does not exec node`);
  return m[1]!.trim().split(/\s+/);
}

const VARIANTS: Variant[] = [
  ...ROLES.map((role) => ({ name: `tsx ${role}`, role, args: [...nodeArgs("start"), `--role=${role}`], rssTargetMb: TARGETS.tsxRssMb })),
  ...ROLES.map((role) => ({ name: `precompiled ${role}`, role, args: [...nodeArgs("start:prod"), `--role=${role}`], rssTargetMb: TARGETS.precompiledRssMb })),
];

/** CPU time (user + system) the process has used so far: less disturbed by other load on a shared machine than wall time. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return Math.round(kb / 1024);
}

interface Run {
  startupMs: number;
  startupCpuMs: number;
  idleRssMb: number;
  stopMs: number;
}

async function once(v: Variant): Promise<Run> {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-startup-"));
  const redis = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  try {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      REDIS_URL: redis.url,
      REDIS_AUTOSTART: "false",
      DATA_DIR: dataDir,
      LOG_LEVEL: "warn",
    };
    const t0 = performance.now();
    const child = spawn(process.execPath, v.args, { cwd: projectRoot, env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
    let startupCpuMs = 0;
    const startupMs = await new Promise<number>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes(BANNER_END) && startupCpuMs === 0) {
          startupCpuMs = cpuMs(child.pid!);
          resolve(performance.now() - t0);
        }
      });
      void exited.then((code) => reject(new Error(`${v.name} exited (${code}) before the banner:\n${err.slice(-2000)}`)));
    });
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleRssMb = rssMb(child.pid!);
    // Where there is a console, it answers; then SIGTERM stops it, as systemd or docker would.
    if (v.role !== "worker") {
      child.stdin.write("/help\n");
      await new Promise<void>((resolve, reject) => {
        const seen = () => out.includes("/decide SYMBOL") && resolve();
        child.stdout.on("data", seen);
        seen();
        void exited.then(() => reject(new Error(`${v.name} exited before answering /help:\n${err.slice(-2000)}`)));
      });
    }
    const s0 = performance.now();
    child.kill("SIGTERM");
    const code = await exited;
    if (code !== 0) throw new Error(`${v.name} exited with ${code} on SIGTERM:\n${err.slice(-2000)}`);
    return { startupMs, startupCpuMs, idleRssMb, stopMs: performance.now() - s0 };
  } finally {
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function benchStartup(): Promise<Record<string, unknown>> {
  // Always a fresh build: a dist/ left from an older tree would measure other code.
  process.stdout.write("startup: building dist/ (npm run build)\n");
  const r = spawnSync("npm", ["run", "build"], { cwd: projectRoot, stdio: "inherit" });
  if (r.status !== 0 || !existsSync(join(projectRoot, "dist/src/main.js"))) throw new Error("npm run build failed");
  // How busy the machine was: the banner's wall time depends on it, the memory hardly.
  const figures: Record<string, unknown> = { runs: RUNS, idleMs: IDLE_MS, targets: TARGETS, loadAverageAtStart: Number(loadavg()[0]!.toFixed(2)), cores: cpus().length };
  for (const v of VARIANTS) {
    const rows: Run[] = [];
    for (let i = 0; i < RUNS; i++) rows.push(await once(v));
    const sorted = (k: keyof Run) => rows.map((r) => r[k]).sort((a, b) => a - b);
    const startup = sorted("startupMs");
    const rss = sorted("idleRssMb");
    const cpu = sorted("startupCpuMs");
    figures[v.name] = {
      startupMsMin: Math.round(startup[0]!),
      startupMsMedian: Math.round(percentile(startup, 50)),
      startupMsMax: Math.round(startup.at(-1)!),
      startupCpuMsMedian: percentile(cpu, 50),
      idleRssMbMedian: percentile(rss, 50),
      idleRssMbMax: rss.at(-1),
      stopMsMedian: Math.round(percentile(sorted("stopMs"), 50)),
      meetsRssTarget: rss.at(-1)! <= v.rssTargetMb,
      meetsBannerTarget: percentile(startup, 50) <= TARGETS.bannerMs,
    };
    process.stdout.write(
      `startup ${v.name}: banner after ${startup.map((m) => Math.round(m)).join(", ")} ms (CPU ${cpu.join(", ")} ms) [target ${TARGETS.bannerMs} ms]; ` +
        `idle RSS ${rss.join(", ")} MB [target ${v.rssTargetMb} MB${rss.at(-1)! <= v.rssTargetMb ? ", met" : ", MISSED"}]; ` +
        `stop on SIGTERM ${Math.round(percentile(sorted("stopMs"), 50))} ms (median)\n`,
    );
  }
  saveResults("startup", figures);
  return figures;
}

