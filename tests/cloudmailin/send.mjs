// Sends with CloudMailin's official client, as an application would: `node send.mjs spec.json`, where the
// spec is {baseURL, username, apiKey, calls: [{raw?: true, message: {...}}]}. Prints a JSON array: per
// call {ok: true, data} (the API's answer) or {ok: false, status, error} (the client's CloudMailinError).
import { readFileSync } from "node:fs";
import cloudmailin from "cloudmailin";

const MessageClient = cloudmailin.MessageClient ?? cloudmailin.default?.MessageClient;
const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const client = new MessageClient({
  username: spec.username,
  apiKey: spec.apiKey,
  baseURL: spec.baseURL,
});
const results = [];
for (const call of spec.calls) {
  try {
    const data = call.raw
      ? await client.sendRawMessage(call.message)
      : await client.sendMessage(call.message);
    results.push({ ok: true, data });
  } catch (error) {
    results.push({
      ok: false,
      name: error.name,
      status: error.status,
      error: error.message,
    });
  }
}
process.stdout.write(JSON.stringify(results));
