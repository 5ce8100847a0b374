// The manual flow through openapi-fetch with the types openapi-typescript generated from
// openapi/openapi.json: `tsc` type-checks every request and response against the
// contract, then node runs it against a live credgate and a test sshd (whose
// authorized_keys this script may append to, as an operator would). Run by
// tests/api/clients.rs. Environment: CREDGATE_URL, CREDGATE_KEY, SSHD_PORT, SSH_USER,
// AUTHORIZED_KEYS.
import { appendFileSync } from "node:fs";
import createClient from "openapi-fetch";
import type { paths } from "./schema";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

let steps = 0;
function step(name: string, response: Response, status: number): void {
  if (response.status !== status) {
    throw new Error(`${name}: expected ${status}, got ${response.status}`);
  }
  steps += 1;
  console.log(`step ${steps}: ${name}: ${status}`);
}

async function main(): Promise<void> {
  const client = createClient<paths>({
    baseUrl: env("CREDGATE_URL"),
    headers: { Authorization: `Bearer ${env("CREDGATE_KEY")}` },
  });
  const port = Number(env("SSHD_PORT"));

  const generated = await client.POST("/api/v1/ssh-keypairs/generate", {
    body: { name: "typescript job key" },
  });
  step("generate a keypair", generated.response, 201);
  const keypair = generated.data!;
  appendFileSync(env("AUTHORIZED_KEYS"), `${keypair.public_key}\n`);

  const scanned = await client.POST("/api/v1/ssh/host-key-scan", {
    body: { host: "127.0.0.1", port },
  });
  step("scan the host keys", scanned.response, 200);

  const created = await client.POST("/api/v1/ssh-connections", {
    body: {
      name: "typescript offsite",
      host: "127.0.0.1",
      port,
      username: env("SSH_USER"),
      keypair_id: keypair.id,
      remote_host_key: scanned.data!.remote_host_key,
    },
  });
  step("create a manual connection", created.response, 201);
  const id = created.data!.id;

  const tested = await client.POST("/api/v1/ssh-connections/{id}/test", {
    params: { path: { id } },
  });
  step("test it", tested.response, 200);
  if (!tested.data!.ok) throw new Error("the connection test failed");

  const read = await client.GET("/api/v1/ssh-connections/{id}", { params: { path: { id } } });
  step("read it (ETag)", read.response, 200);
  const etag = read.response.headers.get("etag")!;

  const renamed = await client.PATCH("/api/v1/ssh-connections/{id}", {
    params: { path: { id }, header: { "If-Match": etag } },
    body: { name: "typescript offsite renamed" },
  });
  step("rename it with If-Match", renamed.response, 200);

  const stale = await client.PATCH("/api/v1/ssh-connections/{id}", {
    params: { path: { id }, header: { "If-Match": etag } },
    body: { name: "never" },
  });
  step("a stale If-Match is refused", stale.response, 412);
  if (stale.error?.code !== "stale_version") throw new Error(`code ${stale.error?.code}`);

  const bundle = await client.POST("/api/v1/ssh-connections/{id}/credentials", {
    params: { path: { id } },
  });
  step("fetch the credentials bundle", bundle.response, 200);
  if (!bundle.data!.private_key.includes("PRIVATE KEY")) throw new Error("no private key");

  const deleted = await client.DELETE("/api/v1/ssh-keypairs/{id}", {
    params: { path: { id: keypair.id }, query: { cascade: true } },
  });
  step("delete the keypair with cascade", deleted.response, 204);

  const gone = await client.GET("/api/v1/ssh-connections/{id}", { params: { path: { id } } });
  step("the connection went with it", gone.response, 404);

  const history = await client.GET("/api/v1/ssh-keypairs/{id}/history", {
    params: { path: { id: keypair.id } },
  });
  step("the keypair's history", history.response, 200);
  const types = history.data!.items.map((record) => record.event_type);
  if (types.join(",") !== "KeypairGenerated,KeypairDeleted") throw new Error(`history ${types}`);

  console.log(`typescript client flow: ${steps} steps passed`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
