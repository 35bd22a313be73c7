// A Node.js client of cptrules: reads ExportFaqs for one category and prints a JSON summary.
// Usage: node export_faqs.js HOST:PORT PROTO_DIR CATEGORY [CODE]
// PROTO_DIR is what `cptrules protos DIR` writes: our protos and google/type/date.proto.
"use strict";
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [address, protoDir, category, watched = "0556T"] = process.argv.slice(2);
const definition = protoLoader.loadSync(
  path.join(protoDir, "cptrules/v1/code_rules_service.proto"),
  { includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true },
);
const { CodeRulesService } = grpc.loadPackageDefinition(definition).cptrules.v1;
const client = new CodeRulesService(address, grpc.credentials.createInsecure());

const codes = [];
let watchedSet = null;
let last = null;
const call = client.ExportFaqs({ category });
call.on("data", (set) => {
  codes.push(set.code);
  last = set;
  if (set.code === watched) {
    watchedSet = {
      code: set.code,
      content_hash: set.content_hash,
      entries: set.entries.map((e) => ({ intent: e.intent, question: e.question, text: e.text })),
      date_of_service: set.entries.length ? set.entries[0].date_of_service : null,
    };
  }
});
call.on("error", (err) => {
  console.error(`ExportFaqs failed: ${err.code} ${err.details}`);
  process.exit(2);
});
call.on("end", () => {
  console.log(JSON.stringify({ count: codes.length, codes, total: last ? last.total : 0, watched: watchedSet }));
  client.close();
});
