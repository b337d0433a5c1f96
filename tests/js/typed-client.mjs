// A frontend's typed client, built the way the frontend team builds theirs: TypeScript types
// generated from the API's OpenAPI document with openapi-typescript, then client/client.ts
// (typed calls, and `@ts-expect-error` lines that must stay errors) type-checked with
// `tsc --strict`. Fails when the generator cannot read the document (a dangling $ref, say),
// when the generated types do not compile (duplicate operationIds), or when a parameter's
// type is looser than the server's (a number documented as a string).
//
//   node typed-client.mjs [path/to/openapi.json]
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

const documentPath = process.argv[2] ?? fileURLToPath(new URL("../../functions/platform/openapi.json", import.meta.url));
const document = JSON.parse(await readFile(documentPath, "utf8"));

const generated = fileURLToPath(new URL("./client/api-schema.d.ts", import.meta.url));
await writeFile(generated, astToString(await openapiTS(document)));

const program = ts.createProgram([fileURLToPath(new URL("./client/client.ts", import.meta.url))], {
  strict: true,
  noEmit: true,
  noUnusedLocals: false,
  exactOptionalPropertyTypes: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ES2022,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
  types: [],
});
const diagnostics = ts.getPreEmitDiagnostics(program);
if (diagnostics.length) {
  const host = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => process.cwd(),
    getNewLine: () => "\n",
  };
  const format = process.stderr.isTTY ? ts.formatDiagnosticsWithColorAndContext : ts.formatDiagnostics;
  console.error(format(diagnostics, host));
  console.error(`typed client: ${diagnostics.length} type error(s) against ${documentPath}`);
  process.exit(1);
}
console.log(`typed client: types generated from ${documentPath} and client.ts checked with --strict`);
