/**
 * Writes an export's ZIP archive to disk, one entry at a time, streaming: entries are copied from
 * their files in chunks and every chunk fflate produces is written (and awaited) before the next is
 * read, so memory stays at one chunk whatever the archive's size. Entries are stored, not deflated:
 * they are zstd Parquet files already (and a small JSON manifest). The archive is written to
 * `<final>.tmp`, fsynced and renamed, so a crash leaves no half archive under the final name.
 */
import { createReadStream } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Zip, ZipPassThrough } from 'fflate';
import { failpoint } from '../util/failpoints.js';

export type ArchiveEntry =
  | { readonly name: string; readonly file: string }
  | { readonly name: string; readonly data: Uint8Array };

/** Writes the archive; returns its size in bytes. */
export async function writeArchive(finalPath: string, entries: readonly ArchiveEntry[], mtime: Date): Promise<number> {
  const tmpPath = `${finalPath}.tmp`;
  const out = await open(tmpPath, 'w', 0o600);
  let size = 0;
  try {
    const pending: Uint8Array[] = [];
    let failure: Error | null = null;
    const zip = new Zip((error, chunk) => {
      if (error !== null) failure = error;
      else pending.push(chunk);
    });
    const drain = async (): Promise<void> => {
      if (failure !== null) throw failure;
      for (const chunk of pending.splice(0)) size += await writeAll(out, chunk);
    };
    for (const entry of entries) {
      const stream = new ZipPassThrough(entry.name);
      stream.mtime = mtime;
      zip.add(stream);
      if ('data' in entry) {
        stream.push(entry.data, true);
      } else {
        for await (const chunk of createReadStream(entry.file, { highWaterMark: 1 << 20 })) {
          stream.push(chunk as Buffer);
          await drain();
        }
        stream.push(new Uint8Array(0), true);
      }
      await drain();
    }
    zip.end();
    await drain();
    await out.sync();
  } catch (error) {
    await out.close();
    await rm(tmpPath, { force: true });
    throw error;
  }
  await out.close();
  failpoint('export:before-rename');
  await rename(tmpPath, finalPath);
  await syncDir(dirname(finalPath));
  return size;
}

async function writeAll(out: FileHandle, chunk: Uint8Array): Promise<number> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await out.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
  return chunk.length;
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
