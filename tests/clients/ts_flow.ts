// The manual flow through openapi-fetch with the types openapi-typescript generated from
// openapi/openapi.json: `tsc` type-checks every request and response against the
// contract, then node runs it against a live credgate and a test sshd (whose
// authorized_keys this script may append to, as an operator would). Run by
// tests/api/clients.rs. Then the semi-automatic setup against a second instance B that
// serves pairing for the same sshd, and the audit trail of it. Environment:
// CREDGATE_URL, CREDGATE_KEY, SSHD_PORT, SSH_USER, AUTHORIZED_KEYS, REMOTE_URL,
// REMOTE_PAIRING_KEY, REMOTE_ADMIN_KEY.
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

  // Semi-automatic: A pairs with B, which authorizes A's new key and hands over its
  // host keys.
  const remoteAdmin = createClient<paths>({
    baseUrl: env("REMOTE_URL"),
    headers: { Authorization: `Bearer ${env("REMOTE_ADMIN_KEY")}` },
  });
  const paired = await client.POST("/api/v1/ssh-connections/semi-automatic", {
    body: {
      name: "typescript paired",
      url: env("REMOTE_URL"),
      remote_api_key: env("REMOTE_PAIRING_KEY"),
      username: env("SSH_USER"),
      generate_keypair: {},
    },
  });
  step("semi-automatic setup with B", paired.response, 201);
  const connection = paired.data!;
  if (connection.setup !== "semi_automatic") throw new Error(`setup ${connection.setup}`);
  if (!connection.host_keys.every((key) => key.provenance === "paired")) {
    throw new Error("a host key is not marked paired");
  }
  const pairingId = connection.remote!.pairing_id;

  const listed = await remoteAdmin.GET("/api/v1/authorized-keys");
  step("B's admin lists the pairing", listed.response, 200);
  const onB = listed.data!.items.filter((key) => key.id === pairingId);
  if (onB.length !== 1 || onB[0].present !== true || onB[0].revoked_at) {
    throw new Error(`B's pairing ${JSON.stringify(onB)}`);
  }

  const pairedTest = await client.POST("/api/v1/ssh-connections/{id}/test", {
    params: { path: { id: connection.id } },
  });
  step("test the paired connection", pairedTest.response, 200);
  if (!pairedTest.data!.ok) throw new Error("the paired connection's test failed");

  const pairedBundle = await client.POST("/api/v1/ssh-connections/{id}/credentials", {
    params: { path: { id: connection.id } },
  });
  step("fetch its credentials", pairedBundle.response, 200);

  const removed = await client.DELETE("/api/v1/ssh-connections/{id}", {
    params: { path: { id: connection.id } },
  });
  step("delete it (revokes B's line)", removed.response, 200);
  const outcome = (removed.data as { remote_revocation?: { outcome: string } } | undefined)
    ?.remote_revocation?.outcome;
  if (outcome !== "revoked") throw new Error(`remote revocation ${outcome}`);

  const relisted = await remoteAdmin.GET("/api/v1/authorized-keys");
  step("B shows the pairing revoked", relisted.response, 200);
  const revoked = relisted.data!.items.filter((key) => key.id === pairingId);
  if (revoked.length !== 1 || !revoked[0].revoked_at) {
    throw new Error(`B's pairing after delete ${JSON.stringify(revoked)}`);
  }

  const connectionHistory = await client.GET("/api/v1/ssh-connections/{id}/history", {
    params: { path: { id: connection.id } },
  });
  step("the connection's history", connectionHistory.response, 200);
  const events = connectionHistory.data!.items.map((record) => record.event_type).join(",");
  const expected =
    "ConnectionCreated,ConnectionTested,CredentialsIssued,RemotePairingRevoked,ConnectionDeleted";
  if (events !== expected) throw new Error(`connection history ${events}`);

  const attempts = await client.GET("/api/v1/audit-events", {
    params: { query: { event_type: "PairingAttemptCompleted" } },
  });
  step("the audit trail holds the pairing attempt", attempts.response, 200);
  if (attempts.data!.items.length !== 1) {
    throw new Error(`pairing attempts ${attempts.data!.items.length}`);
  }

  console.log(`typescript client flow: ${steps} steps passed`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
