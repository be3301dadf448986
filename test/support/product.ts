// The product started as a user starts it (`npm start`'s command), with a pipe for stdin.
import { spawn } from "node:child_process";

/** Starts the product as a user does (`npm start`'s command), with a pipe for stdin. */
export function startProduct(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const io = { out: "", err: "" };
  child.stdout.on("data", (d: Buffer) => (io.out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (io.err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  return { child, io, exited };
}

/** Runs the product with `input` on stdin until it exits at the end of input. */
export async function runProduct(input: string, env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  const p = startProduct(env);
  p.child.stdin.end(input);
  const code = await p.exited;
  return { code, ...p.io };
}

