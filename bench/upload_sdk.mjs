// The peer of bench/bench_upload.c in bench/upload.sh: the official
// @azure/storage-blob SDK uploading the same extents (every other extent-sized
// slot of a page blob twice the total, random data generated before timing) with
// uploadPages, the same number in flight (a simple promise pool), no MD5.
//   node bench/upload_sdk.mjs URL [TOTAL_MIB [EXTENT_KIB [INFLIGHT [KEY]]]]
// URL is the container, path style: http://127.0.0.1:PORT/devstoreaccount1/bench.
// Prints one line: "WALL_S CPU_S BYTES MB_PER_S USER_S", CPU being process.cpuUsage()
// user + system around the uploads only.
import { randomFillSync } from "node:crypto";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";

const AZURITE_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const [url, mibArg, kibArg, nArg, keyArg] = process.argv.slice(2);
if (!url) {
  console.error("usage: upload_sdk.mjs URL [TOTAL_MIB [EXTENT_KIB [INFLIGHT [KEY]]]]");
  process.exit(2);
}
const total = Number(mibArg ?? 1024) * 1024 * 1024;
const ext = Number(kibArg ?? 4096) * 1024;
const inflight = Number(nArg ?? 8);
const POOL = 64 * 1024 * 1024;

const u = new URL(url);
const [account, container] = u.pathname.split("/").filter(Boolean);
const service = new BlobServiceClient(
  `${u.protocol}//${u.host}/${account}`,
  new StorageSharedKeyCredential(account, keyArg ?? AZURITE_KEY),
);
const cont = service.getContainerClient(container);
await cont.createIfNotExists();
const blob = cont.getPageBlobClient(`bench-upload-sdk-${process.pid}-${Date.now()}`);
await blob.create(total * 2);

const pool = randomFillSync(Buffer.allocUnsafe(POOL));
const perPool = Math.floor(POOL / ext);
const n = total / ext;

const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
let next = 0;
async function worker() {
  while (next < n) {
    const i = next++;
    const off = (i % perPool) * ext;
    await blob.uploadPages(pool.subarray(off, off + ext), i * 2 * ext, ext);
  }
}
await Promise.all(Array.from({ length: inflight }, worker));
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const c = process.cpuUsage(c0);
const cpu = (c.user + c.system) / 1e6;

await blob.delete({ deleteSnapshots: "include" }).catch(() => {});
console.log(`${wall.toFixed(4)} ${cpu.toFixed(4)} ${total} ${(total / wall / 1e6).toFixed(1)} ${(c.user / 1e6).toFixed(4)}`);
