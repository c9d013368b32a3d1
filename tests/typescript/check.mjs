// Usage: node check.mjs DIR
// Writes one TypeScript file that assigns every DIR/*.json payload to the MailroomMail type, then runs
// `tsc --strict` on it. Object literals get excess-property checks, so a field we are not allowed to send,
// a null, or a wrong type fails the check.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";

const here = dirname(fileURLToPath(import.meta.url));
const dir = process.argv[2];
if (!dir) {
  console.error("usage: node check.mjs DIR");
  process.exit(2);
}
const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
if (files.length === 0) {
  console.error(`no .json payloads in ${dir}`);
  process.exit(2);
}
let source = 'import type { MailroomMail } from "./mailroom";\n';
files.forEach((file, i) => {
  const payload = readFileSync(join(dir, file), "utf8");
  source += `// ${file}\nexport const payload${i}: MailroomMail = ${payload.trim()};\n`;
});
const generated = join(here, "generated.ts");
writeFileSync(generated, source);
const tsc = join(here, "node_modules", "typescript", "bin", "tsc");
try {
  execFileSync(process.execPath, [tsc, "--strict", "--noEmit", "--skipLibCheck", "--target", "es2020",
    "--module", "nodenext", "--moduleResolution", "nodenext", generated], { cwd: here, stdio: "inherit" });
} catch {
  process.exit(1);
}
console.log(`${files.length} payload(s) type-check against MailroomMail (IncomingMail + documented extensions)`);
