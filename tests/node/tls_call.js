// A Node.js client of cptrules over TLS with a bearer token: calls GetRuleset, then reads the
// ExportFaqs stream of one code, and prints a JSON summary (or the failed call's status).
// Usage: node tls_call.js HOST:PORT PROTO_DIR CA_FILE [TOKEN]
// CA_FILE "-" means plaintext; TOKEN is sent as `authorization: Bearer TOKEN` when given.
"use strict";
const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [address, protoDir, caFile, token] = process.argv.slice(2);
const definition = protoLoader.loadSync(
  path.join(protoDir, "cptrules/v1/code_rules_service.proto"),
  { includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true },
);
const { CodeRulesService } = grpc.loadPackageDefinition(definition).cptrules.v1;
const credentials = caFile === "-"
  ? grpc.credentials.createInsecure()
  : grpc.credentials.createSsl(fs.readFileSync(caFile));
const client = new CodeRulesService(address, credentials);
const metadata = new grpc.Metadata();
if (token) metadata.set("authorization", `Bearer ${token}`);
const deadline = () => new Date(Date.now() + 20000);

function finish(result) {
  console.log(JSON.stringify(result));
  client.close();
}

function failed(err) {
  finish({ ok: false, code: grpc.status[err.code], details: err.details });
}

client.GetRuleset({}, metadata, { deadline: deadline() }, (err, ruleset) => {
  if (err) return failed(err);
  const codes = [];
  const call = client.ExportFaqs({ codes: ["0556T"] }, metadata, { deadline: deadline() });
  call.on("data", (set) => codes.push(set.code));
  call.on("error", failed);
  call.on("end", () => finish({ ok: true, revision: ruleset.revision, exported: codes }));
});
