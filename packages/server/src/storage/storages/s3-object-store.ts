/**
 * ObjectStore over S3 or an S3-compatible service (@aws-sdk/client-s3). Large files go up as
 * multipart uploads (@aws-sdk/lib-storage); every request has a timeout and the SDK's standard
 * retries with exponential backoff. The SDK is imported on first use, so a server without S3
 * storages never loads it.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { invalidSql } from '../../util/errors.js';
import { StorageUnreachableError, type ObjectInfo, type ObjectStore } from './object-store.js';

/** CONFIG (and CREDENTIALS) of an S3 storage, upstream's field names. */
export interface S3Settings {
  readonly bucket: string;
  /** Key prefix inside the bucket ('' or ending in '/'). */
  readonly prefix: string;
  readonly region: string;
  readonly endpoint: string | null;
  readonly allowHttp: boolean;
  readonly accessKeyId: string | null;
  readonly secretAccessKey: string | null;
  readonly sessionToken: string | null;
}

const MULTIPART_PART_BYTES = 8 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 5_000;
const MAX_ATTEMPTS = 3;

/** `s3://bucket[/prefix]` plus CONFIG/CREDENTIALS JSON → settings; a bad combination is INVALID_SQL. */
export function s3Settings(baseDirectory: string, config: Readonly<Record<string, unknown>> | null, credentials: Readonly<Record<string, unknown>> | null): S3Settings {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(baseDirectory);
  if (match === null) throw invalidSql(`S3 storage BASE_DIRECTORY must be 's3://bucket[/prefix]', got '${baseDirectory}'`);
  const prefixRaw = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefixRaw.split('/').some((s) => s === '..' || s === '.')) throw invalidSql('S3 prefix must not contain \'.\' or \'..\' segments');
  const merged: Record<string, unknown> = { ...(config ?? {}), ...(credentials ?? {}) };
  const text = (name: string): string | null => {
    const v = merged[name];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw invalidSql(`S3 storage setting '${name}' must be a string`);
    return v;
  };
  const endpoint = text('endpoint');
  const allowHttp = merged.allow_http === true;
  if (endpoint !== null) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw invalidSql(`S3 endpoint '${endpoint}' is not a URL`);
    }
    if (url.protocol === 'http:' && !allowHttp) throw invalidSql(`S3 endpoint '${endpoint}' is plain HTTP: set "allow_http": true in CONFIG to allow it`);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidSql(`S3 endpoint '${endpoint}' must be http(s)`);
  }
  const accessKeyId = text('access_key_id') ?? text('aws_access_key_id');
  const secretAccessKey = text('secret_access_key') ?? text('aws_secret_access_key');
  if ((accessKeyId === null) !== (secretAccessKey === null)) throw invalidSql('S3 storage needs both access_key_id and secret_access_key, or neither (then the environment\'s AWS credentials are used)');
  return {
    bucket: match[1]!,
    prefix: prefixRaw === '' ? '' : `${prefixRaw}/`,
    region: text('region') ?? 'us-east-1',
    endpoint,
    allowHttp,
    accessKeyId,
    secretAccessKey,
    sessionToken: text('session_token'),
  };
}

export class S3ObjectStore implements ObjectStore {
  private client: Promise<S3Client> | null = null;

  /** `maxAttempts`: 1 for health probes (they report a failure rather than ride it out). */
  constructor(private readonly storageId: string, private readonly s: S3Settings, private readonly maxAttempts = MAX_ATTEMPTS) {}

  private async s3(): Promise<S3Client> {
    this.client ??= (async () => {
      const { S3Client } = await import('@aws-sdk/client-s3');
      const { NodeHttpHandler } = await import('@smithy/node-http-handler');
      return new S3Client({
        region: this.s.region,
        // A custom endpoint (MinIO, s3rver, R2...) implies path-style addressing, as upstream.
        ...(this.s.endpoint === null ? {} : { endpoint: this.s.endpoint, forcePathStyle: true }),
        ...(this.s.accessKeyId === null ? {} : {
          credentials: { accessKeyId: this.s.accessKeyId, secretAccessKey: this.s.secretAccessKey!, ...(this.s.sessionToken === null ? {} : { sessionToken: this.s.sessionToken }) },
        }),
        maxAttempts: this.maxAttempts,
        retryMode: 'standard',
        requestHandler: new NodeHttpHandler({ connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }),
      });
    })();
    return this.client;
  }

  private key(key: string): string {
    return this.s.prefix + key;
  }

  private async run<T>(operation: string, fn: (client: S3Client) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.s3());
    } catch (error) {
      throw new StorageUnreachableError(this.storageId, operation, describe(error));
    }
  }

  async putFile(key: string, path: string, onProgress?: () => void): Promise<void> {
    await this.run(`upload of ${key}`, async (client) => {
      const { Upload } = await import('@aws-sdk/lib-storage');
      const upload = new Upload({
        client, partSize: MULTIPART_PART_BYTES, queueSize: 2, leavePartsOnError: false,
        params: { Bucket: this.s.bucket, Key: this.key(key), Body: createReadStream(path) },
      });
      if (onProgress !== undefined) upload.on('httpUploadProgress', onProgress);
      await upload.done();
    });
  }

  async putBytes(key: string, bytes: Uint8Array): Promise<void> {
    await this.run(`upload of ${key}`, async (client) => {
      const { PutObjectCommand } = await import('@aws-sdk/client-s3');
      await client.send(new PutObjectCommand({ Bucket: this.s.bucket, Key: this.key(key), Body: bytes }));
    });
  }

  async getFile(key: string, path: string): Promise<void> {
    await this.run(`download of ${key}`, async (client) => {
      const { GetObjectCommand } = await import('@aws-sdk/client-s3');
      const out = await client.send(new GetObjectCommand({ Bucket: this.s.bucket, Key: this.key(key) }));
      await pipeline(out.Body as Readable, createWriteStream(path));
    });
  }

  async getBytes(key: string): Promise<Uint8Array> {
    return this.run(`download of ${key}`, async (client) => {
      const { GetObjectCommand } = await import('@aws-sdk/client-s3');
      const out = await client.send(new GetObjectCommand({ Bucket: this.s.bucket, Key: this.key(key) }));
      return out.Body!.transformToByteArray();
    });
  }

  async list(prefix: string, limit = Number.POSITIVE_INFINITY): Promise<ObjectInfo[]> {
    return this.run(`listing of ${prefix || '/'}`, async (client) => {
      const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
      const found: ObjectInfo[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({
          Bucket: this.s.bucket, Prefix: this.key(prefix), ContinuationToken: token, MaxKeys: Math.min(1000, limit - found.length),
        }));
        for (const o of page.Contents ?? []) found.push({ key: o.Key!.slice(this.s.prefix.length), size: o.Size ?? 0 });
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined && found.length < limit);
      return found;
    });
  }

  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.run(`delete of ${keys.length} object(s)`, async (client) => {
      const { DeleteObjectsCommand } = await import('@aws-sdk/client-s3');
      for (let i = 0; i < keys.length; i += 1000) {
        const out = await client.send(new DeleteObjectsCommand({
          Bucket: this.s.bucket, Delete: { Objects: keys.slice(i, i + 1000).map((k) => ({ Key: this.key(k) })), Quiet: true },
        }));
        const failed = out.Errors?.[0];
        if (failed !== undefined) throw new Error(`${failed.Key ?? ''}: ${failed.Code ?? ''} ${failed.Message ?? ''}`.trim());
      }
    });
  }

  close(): void {
    void this.client?.then((c) => c.destroy()).catch(() => undefined);
    this.client = null;
  }
}

/** An SDK or network error as one line: the service's code and message, or the socket error. */
function describe(error: unknown): string {
  const e = error as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const parts = [e.code ?? e.name, status === undefined ? undefined : `HTTP ${status}`, e.message].filter((p) => p !== undefined && p !== '' && p !== 'Error');
  return parts.join(': ') || String(error);
}
