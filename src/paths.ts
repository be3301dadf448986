// Where the project's own files (data/, package.json) are, whether this code runs from src/ under
// tsx or compiled under dist/src/: a path relative to a module's own URL differs between the two.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/** The folder holding package.json. */
export const projectRoot = findRoot(dirname(fileURLToPath(import.meta.url)));

/** A path inside the project, e.g. projectPath("data", "ohlcv"). */
export const projectPath = (...parts: string[]): string => join(projectRoot, ...parts);
